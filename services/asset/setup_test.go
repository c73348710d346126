package asset

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"
	"google.golang.org/grpc"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/grpctest/authntest"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
)

// TestMain registers the file codec, as the backplane command does; the tests' downloads
// ask for it (download), as the edge's do.
func TestMain(m *testing.M) {
	grpccodec.Register()
	os.Exit(m.Run())
}

// waitFor and tick bound the polling for what happens after an answer (a canceled
// stream's clean-up, a job's work).
const (
	waitFor = 20 * time.Second
	tick    = 20 * time.Millisecond
)

// testDatabase is a private database migrated as `backplane migrate` leaves it.
func testDatabase(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return dbtest.NewPool(t, "asset", migrations(),
		dbtest.WithStep(fmt.Sprintf("river migration %d", jobs.SchemaVersion()), func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := jobs.Migrate(ctx, pool, "asset", nil)
			return err
		}),
	)
}

// stores are the buckets every behaviour is checked on: a directory, and an
// S3-compatible server (gofakes3, in process) reached through s3blob with path-style
// addressing, an endpoint, static credentials and a region, as MinIO and R2 are.
var stores = map[string]func(t testing.TB) *blob.Bucket{
	"file": fileBucket,
	"s3":   s3Bucket,
}

func fileBucket(t testing.TB) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{NoTempDir: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// s3Server starts gofakes3 with an empty bucket named "assets" and returns its URL.
func s3Server(t testing.TB) string {
	t.Helper()
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket("assets"))
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

func s3Bucket(t testing.TB) *blob.Bucket {
	t.Helper()
	endpoint := s3Server(t)
	client := s3.NewFromConfig(aws.Config{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("test-key", "test-secret", ""),
		BaseEndpoint:               &endpoint,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, func(o *s3.Options) { o.UsePathStyle = true })
	b, err := s3blob.OpenBucket(t.Context(), client, "assets", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// eachStore runs test once per bucket kind, each a subtest named for it.
func eachStore(t *testing.T, test func(t *testing.T, b *bundle), opts ...option) {
	t.Helper()
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, setup(t, open(t), opts...))
		})
	}
}

// bundle is what most tests need: the asset service on a private database and a bucket,
// served through the production interceptor chain.
type bundle struct {
	srv    *Server
	pool   *pgxpool.Pool
	bucket *blob.Bucket
	authn  *authntest.Authn
	cfg    Config
	deps   service.Deps
	api    assetv1.AssetServiceClient
	clock  *clock
}

type option func(*Config, *service.Deps)

// clock is the tests' clock: real time plus a shift a test may add.
type clock struct{ shift time.Duration }

func (c *clock) Now() time.Time { return time.Now().Add(c.shift) }

func setup(t testing.TB, bucket *blob.Bucket, opts ...option) *bundle {
	t.Helper()
	rdb := redistest.Client(t)
	b := &bundle{pool: testDatabase(t), bucket: bucket, authn: authntest.New(t, authntest.Config{Redis: rdb}), clock: &clock{}}
	cfg, err := LoadConfig(configEnv(nil))
	require.NoError(t, err)
	cfg.MaxBytes = 1 << 20
	cfg.SigningKey = []byte("0123456789abcdef0123456789abcdef")
	b.deps = service.Deps{Logger: slog.New(slog.DiscardHandler), DB: b.pool, Redis: rdb, PublicURL: "https://app.backplane.test"}
	for _, o := range opts {
		o(&cfg, &b.deps)
	}
	b.cfg = cfg
	b.srv, err = newServer(t.Context(), cfg, b.deps, wiring{bucket: bucket, now: b.clock.Now})
	require.NoError(t, err)
	s := grpctest.Start(t, func(reg grpc.ServiceRegistrar) { assetv1.RegisterAssetServiceServer(reg, b.srv) },
		b.authn.Option())
	b.api = assetv1.NewAssetServiceClient(s.Conn)
	return b
}

// as is a request context carrying an access token of user, on a live session.
func (b *bundle) as(t testing.TB, user uuid.UUID, roles ...string) context.Context {
	t.Helper()
	return grpctest.Bearer(t.Context(), b.authn.AccessToken(t, user, roles...))
}

// upload sends data as one file through UploadAsset, in chunks of chunk bytes, and
// returns the answer.
func (b *bundle) upload(ctx context.Context, meta *assetv1.UploadAssetMetadata, data []byte, chunk int) (*assetv1.UploadAssetResponse, error) {
	stream, err := b.api.UploadAsset(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Metadata{Metadata: meta}}); err != nil {
		return nil, err
	}
	return sendChunks(stream, data, chunk)
}

// uploadTo sends data as the bytes of the PENDING asset id.
func (b *bundle) uploadTo(ctx context.Context, id string, data []byte, chunk int) (*assetv1.UploadAssetResponse, error) {
	stream, err := b.api.UploadAsset(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_AssetId{AssetId: id}}); err != nil {
		return nil, err
	}
	return sendChunks(stream, data, chunk)
}

func sendChunks(stream grpc.ClientStreamingClient[assetv1.UploadAssetRequest, assetv1.UploadAssetResponse], data []byte, chunk int) (*assetv1.UploadAssetResponse, error) {
	for len(data) > 0 {
		n := min(chunk, len(data))
		err := stream.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Chunk{Chunk: data[:n]}})
		if errors.Is(err, io.EOF) {
			break // the server ended the stream; CloseAndRecv says why
		}
		if err != nil {
			return nil, err
		}
		data = data[n:]
	}
	return stream.CloseAndRecv()
}

// download reads an asset's bytes through DownloadAssetContent.
func (b *bundle) download(ctx context.Context, req *assetv1.DownloadAssetContentRequest) ([]byte, error) {
	stream, err := b.api.DownloadAssetContent(ctx, req, grpccodec.CallOption())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		out.Write(msg.GetData())
	}
}

// objects lists the keys of every object in the bucket.
func (b *bundle) objects(t testing.TB) []string {
	t.Helper()
	var keys []string
	it := b.bucket.List(nil)
	for {
		obj, err := it.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return keys
		}
		require.NoError(t, err)
		keys = append(keys, obj.Key)
	}
}

// count reads a number from the asset schema.
func (b *bundle) count(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.pool.QueryRow(t.Context(), query, args...).Scan(&n))
	return n
}

// pngBytes is a file that sniffs as image/png: its signature, then n bytes of noise.
func pngBytes(n int) []byte {
	data := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, n)...)
	_, _ = rand.Read(data[8:])
	return data
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
