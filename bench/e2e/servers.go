package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	_ "github.com/pocketbase/pocketbase/migrations" // its system migrations register themselves on import, as in its own binary
	"github.com/pocketbase/pocketbase/tools/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// echo is the baseline's gRPC service, the bare echo of bench/'s edge benchmark: it
// answers GetCurrentUser with a fixed user, as cheaply as a handler can.
type echo struct {
	authv1.UnimplementedAuthServiceServer
}

func (echo) GetCurrentUser(context.Context, *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	return &authv1.GetCurrentUserResponse{User: &authv1.User{Id: "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11", Email: "ada@example.com", DisplayName: "Ada"}}, nil
}

// serveEcho runs the baseline in this process: a bare grpc-gateway mux in front of a
// bare gRPC server with the echo, over loopback, as bench/'s BenchmarkRESTEdge does. It
// prints "ready <url> <gRPC address>" once both listen.
func serveEcho(ctx context.Context) error {
	var lc net.ListenConfig
	glis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	authv1.RegisterAuthServiceServer(gs, echo{})
	go func() { _ = gs.Serve(glis) }()
	defer gs.Stop()

	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	mux := runtime.NewServeMux()
	if err := authv1.RegisterAuthServiceHandler(ctx, mux, conn); err != nil {
		return err
	}
	hlis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ready http://%s %s\n", hlis.Addr(), glis.Addr())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	if err := hs.Serve(hlis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// servePocketBase runs PocketBase v0.36.8 in this process with a fresh data dir: a
// "notes" collection whose records only their owner may view, one user and one note of
// theirs. It prints "ready <url> <token> <note id>" and serves until killed.
func servePocketBase(ctx context.Context, dataDir string) error {
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dataDir})
	if err := app.Bootstrap(); err != nil {
		return fmt.Errorf("pocketbase bootstrap: %w", err)
	}
	if err := app.RunAllMigrations(); err != nil {
		return fmt.Errorf("pocketbase migrations: %w", err)
	}
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		return err
	}
	notes := core.NewBaseCollection("notes")
	notes.Fields.Add(
		&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1, Required: true},
		&core.TextField{Name: "body"},
	)
	notes.ViewRule = types.Pointer("owner = @request.auth.id")
	notes.ListRule = types.Pointer("owner = @request.auth.id")
	if err := app.Save(notes); err != nil {
		return fmt.Errorf("pocketbase notes collection: %w", err)
	}
	user := core.NewRecord(users)
	user.SetEmail("ada@example.com")
	user.SetPassword("correct horse battery")
	user.Set("name", "Ada")
	if err := app.Save(user); err != nil {
		return fmt.Errorf("pocketbase user: %w", err)
	}
	note := core.NewRecord(notes)
	note.Set("owner", user.Id)
	note.Set("body", "hello")
	if err := app.Save(note); err != nil {
		return fmt.Errorf("pocketbase note: %w", err)
	}
	token, err := user.NewAuthToken()
	if err != nil {
		return err
	}
	addr, err := freeAddr(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("ready http://%s %s %s\n", addr, token, note.Id)
	return apis.Serve(app, apis.ServeConfig{HttpAddr: addr})
}
