package deploy_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryPieceGetsItsOwnCertificate checks mutual TLS in the production-like install:
// a cert-manager Certificate per piece naming it spiffe://backplane/<piece>, its Secret
// mounted whole (so rotation reaches the files) where the ConfigMap points the binary.
func TestEveryPieceGetsItsOwnCertificate(t *testing.T) {
	t.Parallel()
	objs := render(t, "ci/prod-values.yaml")
	var cm configMap
	find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
	assert.Equal(t, "/etc/backplane/mtls/tls.crt", cm.Data["BACKPLANE_MTLS_CERT_FILE"])
	assert.Equal(t, "/etc/backplane/mtls/tls.key", cm.Data["BACKPLANE_MTLS_KEY_FILE"])
	assert.Equal(t, "/etc/backplane/mtls/ca.crt", cm.Data["BACKPLANE_MTLS_CA_FILE"])

	type certificate struct {
		Spec struct {
			SecretName string   `yaml:"secretName"`
			URIs       []string `yaml:"uris"`
			Usages     []string `yaml:"usages"`
			IssuerRef  struct {
				Name string `yaml:"name"`
				Kind string `yaml:"kind"`
			} `yaml:"issuerRef"`
		} `yaml:"spec"`
	}
	type secretVolume struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	}
	type podVolumes struct {
		Spec struct {
			Template struct {
				Spec struct {
					Volumes    []secretVolume `yaml:"volumes"`
					Containers []struct {
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
							SubPath   string `yaml:"subPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	require.Len(t, only(objs, "Certificate"), len(pieces))
	for _, piece := range pieces {
		var c certificate
		find(t, objs, "Certificate", "bp-backplane-"+piece+"-mtls").decode(t, &c)
		assert.Equal(t, []string{"spiffe://backplane/" + piece}, c.Spec.URIs, piece)
		assert.Equal(t, "bp-backplane-"+piece+"-mtls", c.Spec.SecretName, piece)
		assert.Subset(t, c.Spec.Usages, []string{"server auth", "client auth"}, piece)
		assert.Equal(t, "backplane-mesh-ca", c.Spec.IssuerRef.Name, piece)

		var d podVolumes
		find(t, objs, "Deployment", "bp-backplane-"+piece).decode(t, &d)
		spec := d.Spec.Template.Spec
		i := slices.IndexFunc(spec.Volumes, func(v secretVolume) bool { return v.Name == "mtls" })
		require.GreaterOrEqual(t, i, 0, "%s mounts its certificate", piece)
		assert.Equal(t, c.Spec.SecretName, spec.Volumes[i].Secret.SecretName, "%s mounts its own Secret", piece)
		mounted := false
		for _, m := range spec.Containers[0].VolumeMounts {
			if m.Name == "mtls" {
				mounted = m.MountPath == "/etc/backplane/mtls" && m.SubPath == ""
			}
		}
		assert.True(t, mounted, "%s mounts the whole Secret at /etc/backplane/mtls (a subPath never sees a rotation)", piece)
	}

	// Off by default; on without cert-manager, the pieces mount Secrets made elsewhere.
	assert.Empty(t, only(render(t, ""), "Certificate"))
	objs = render(t, "", "mtls.enabled=true")
	assert.Empty(t, only(objs, "Certificate"))
	find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
	assert.Equal(t, "/etc/backplane/mtls/ca.crt", cm.Data["BACKPLANE_MTLS_CA_FILE"])
}
