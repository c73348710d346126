package asset

import (
	"encoding/json"

	"google.golang.org/protobuf/types/known/timestamppb"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/services/asset/dbsqlc"
)

// Asset states as stored.
const (
	statePending = "PENDING"
	stateReady   = "READY"
	stateDeleted = "DELETED"
)

var states = map[string]assetv1.AssetState{
	statePending: assetv1.AssetState_ASSET_STATE_PENDING,
	stateReady:   assetv1.AssetState_ASSET_STATE_READY,
	stateDeleted: assetv1.AssetState_ASSET_STATE_DELETED,
}

// stateName is the stored name of a state; "" for UNSPECIFIED.
func stateName(st assetv1.AssetState) string {
	for name, s := range states {
		if s == st {
			return name
		}
	}
	return ""
}

func assetProto(a dbsqlc.Asset) *assetv1.Asset {
	out := &assetv1.Asset{
		Id:          a.ID.String(),
		OwnerUserId: a.OwnerUserID.String(),
		Filename:    a.Filename,
		ContentType: a.ContentType,
		SizeBytes:   a.SizeBytes,
		State:       states[a.State],
		Metadata:    metadataMap(a.Metadata),
		CreateTime:  timestamppb.New(a.CreateTime),
		UpdateTime:  timestamppb.New(a.UpdateTime),
	}
	if a.Sha256 != nil {
		out.Sha256 = *a.Sha256
	}
	return out
}

// metadataJSON is the stored form of an asset's labels.
func metadataJSON(m map[string]string) []byte {
	if m == nil {
		m = map[string]string{}
	}
	// A map of strings always marshals.
	b, _ := json.Marshal(m)
	return b
}

func metadataMap(b []byte) map[string]string {
	m := map[string]string{}
	_ = json.Unmarshal(b, &m) // written by metadataJSON
	return m
}
