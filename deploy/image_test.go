package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No container engine runs on the machines that test Backplane, so the image is checked
// in two halves: the Dockerfile is read here (a small parser: moby's buildkit parser
// would pull its dependency graph into the product's go.mod), and the binary is built
// with the very command the Dockerfile runs and inspected.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// stage is one FROM and the instructions under it.
type stage struct {
	from, name string
	body       []instruction
}

func parseDockerfile(t testing.TB, file string) []stage {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	var (
		stages []stage
		buf    strings.Builder
		start  int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && buf.Len() == 0) {
			continue // comments, also inside continued instructions, as Docker reads them
		}
		if buf.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(buf.String()), " ")
		buf.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " "), line: start}
		if in.cmd == "FROM" {
			var s stage
			for i, f := range strings.Fields(in.args) {
				switch {
				case strings.HasPrefix(f, "--"):
				case strings.EqualFold(f, "AS"):
				case s.from == "":
					s.from = f
				case i > 0 && strings.EqualFold(strings.Fields(in.args)[i-1], "AS"):
					s.name = f
				}
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			require.Contains(t, []string{"ARG"}, in.cmd, "line %d: only ARG may come before the first FROM", in.line)
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	require.NoError(t, sc.Err())
	return stages
}

func TestDockerfileBuildsANonRootImageWithoutShellOrSecrets(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	require.GreaterOrEqual(t, len(stages), 2, "a multi-stage build: the toolchain stays out of the image")
	final := stages[len(stages)-1]
	builders := map[string]bool{}
	for _, s := range stages[:len(stages)-1] {
		builders[s.name] = true
	}

	assert.Regexp(t, `^gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$`, final.from,
		"the final stage is distroless static (no shell, no package manager), pinned by digest")

	var (
		user       string
		entrypoint []string
		copied     = map[string]bool{}
		labels     = map[string]string{}
	)
	for _, in := range final.body {
		switch in.cmd {
		case "RUN":
			t.Errorf("line %d: RUN in the final stage: the image has no shell to run it", in.line)
		case "ADD":
			t.Errorf("line %d: ADD in the final stage; copy from a build stage", in.line)
		case "COPY":
			f := strings.Fields(in.args)
			from, ok := strings.CutPrefix(f[0], "--from=")
			assert.True(t, ok && builders[from], "line %d: the final stage copies only from a build stage, never from the build context", in.line)
			copied[f[len(f)-1]] = true
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(in.args), &entrypoint), "line %d: ENTRYPOINT in exec form (there is no shell)", in.line)
		case "LABEL":
			for _, m := range regexp.MustCompile(`([\w.\-]+)="([^"]*)"`).FindAllStringSubmatch(in.args, -1) {
				labels[m[1]] = m[2]
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER %q must be numeric, so that runAsNonRoot can check it", user)
	assert.NotZero(t, n, "the image must not run as root")
	require.NotEmpty(t, entrypoint)
	assert.True(t, copied[entrypoint[0]], "ENTRYPOINT %s is the binary copied from the build stage", entrypoint[0])
	assert.Equal(t, "$VERSION", labels["org.opencontainers.image.version"])
	assert.Equal(t, "$REVISION", labels["org.opencontainers.image.revision"])
	assert.Equal(t, "backplane", labels["org.opencontainers.image.title"])

	secretish := regexp.MustCompile(`(?i)(secret|password|passwd|token|api_?key|private)`)
	buildsStatic := false
	for _, s := range stages {
		for _, in := range s.body {
			if in.cmd == "ENV" || in.cmd == "ARG" {
				assert.NotRegexp(t, secretish, in.args, "line %d: build arguments and ENV are stored in the image; use a secret mount", in.line)
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "make static") {
				buildsStatic = true
			}
		}
	}
	assert.True(t, buildsStatic, "the build stage runs `make static`, the command TestStaticBinary checks")
}

// dockerignore is the build context's filter, read with Docker's rules: the last
// matching pattern decides, a leading ! lets a path back in, a pattern matching a
// directory covers everything under it.
type dockerignore []string

func (d dockerignore) excluded(p string) bool {
	out := false
	for _, pat := range d {
		keep := strings.HasPrefix(pat, "!")
		pat = strings.TrimSuffix(strings.TrimPrefix(pat, "!"), "/")
		if ignoreMatch(pat, p) {
			out = !keep
		}
	}
	return out
}

// ignoreMatch reports whether pat matches p or one of its parent directories; a
// leading **/ matches at any depth.
func ignoreMatch(pat, p string) bool {
	parts := strings.Split(p, "/")
	for end := 1; end <= len(parts); end++ {
		prefix := strings.Join(parts[:end], "/")
		if ok, _ := path.Match(pat, prefix); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			for i := range end {
				if ok, _ := path.Match(rest, strings.Join(parts[i:end], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

func readDockerignore(t testing.TB) dockerignore {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	var d dockerignore
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			d = append(d, l)
		}
	}
	return d
}

// TestBuildContextHoldsTheBuildAndNoCredentials: the context is an allowlist; it must
// still hold every file `make static` compiles or embeds, and none that looks like a
// credential.
func TestBuildContextHoldsTheBuildAndNoCredentials(t *testing.T) {
	t.Parallel()
	d := readDockerignore(t)
	require.Equal(t, "*", d[0], ".dockerignore starts by excluding everything")

	for _, p := range []string{".env", "services/auth/.env.local", "internal/x/tls.key", "cert.pem", ".git/config", ".data/postgres/PG_VERSION", "bin/backplane", "deploy/helm/backplane/values.yaml", "internal/x/x_test.go"} {
		assert.True(t, d.excluded(p), "%s must stay out of the build context", p)
	}

	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles", "./cmd/backplane")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	files := []string{"go.mod", "go.sum", "Makefile"}
	for dec.More() {
		var pkg struct {
			Dir                 string
			Module              *struct{ Path string }
			GoFiles, EmbedFiles []string
		}
		require.NoError(t, dec.Decode(&pkg))
		if pkg.Module == nil || pkg.Module.Path != "github.com/backplane/backplane" {
			continue
		}
		rel, err := filepath.Rel(repoRoot, pkg.Dir)
		require.NoError(t, err)
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	require.Greater(t, len(files), 50)
	for _, f := range files {
		assert.False(t, d.excluded(f), "%s is needed by `make static` but .dockerignore leaves it out", f)
	}
}

var staticBuild struct {
	once sync.Once
	path string
	out  string
	err  error
}

// staticBinary builds bin/backplane as the image does (`make static`) into a temporary
// directory, once per test run.
func staticBinary(t testing.TB) string {
	t.Helper()
	staticBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "backplane-static")
		if err != nil {
			staticBuild.err = err
			return
		}
		staticBuild.path = filepath.Join(dir, "backplane")
		// Built once for every test, so bound by none of their contexts.
		staticBuild.out, staticBuild.err = runErr(context.Background(), "make", "--no-print-directory", "static", "BIN="+staticBuild.path, "VERSION=v0.0.0-deploytest")
	})
	require.NoError(t, staticBuild.err, staticBuild.out)
	return staticBuild.path
}

func TestStaticBinary(t *testing.T) {
	t.Parallel()
	bin := staticBinary(t)

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamic loader is requested: the binary is not static")
		assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary has a dynamic section")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "the binary links shared libraries, which distroless/static lacks")

	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	assert.Equal(t, "true", settings["-trimpath"])
	assert.Equal(t, "github.com/backplane/backplane/cmd/backplane", info.Path)

	out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "backplane v0.0.0-deploytest\n", string(out), "the version is stamped with -X main.version")
}

// TestTheBinaryAcceptsTheChartsConfiguration starts each piece with the environment the
// chart gives it (the ConfigMap, the piece's own values, stand-in secrets) and checks that
// the binary's configuration check passes. That check comes first and exits 2 at once;
// a piece still running after a few seconds got past it (to its unreachable database or
// Redis). The listen addresses move to free loopback ports, as other processes may hold
// :8080 here.
func TestTheBinaryAcceptsTheChartsConfiguration(t *testing.T) {
	t.Parallel()
	bin := staticBinary(t)
	type started struct {
		name string
		cmd  *exec.Cmd
		out  *bytes.Buffer
		done chan error
	}
	var runs []started
	for _, vs := range []struct{ name, file string }{{"prod", "ci/prod-values.yaml"}, {"every setting", mustAbs("testdata/every-setting-values.yaml")}} {
		objs := render(t, vs.file)
		var cm configMap
		find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
		for piece, pod := range workloads(t, objs) {
			if piece == "migrate" {
				continue
			}
			env := map[string]string{
				"PATH": os.Getenv("PATH"),
				// Stand-ins for the Secret: valid, and pointing nowhere.
				"BACKPLANE_SERVICE_TOKEN_SECRET": "deploy-test-service-token-secret-0123456789",
				"BACKPLANE_DATABASE_URL":         "postgres://backplane@127.0.0.1:1/backplane?connect_timeout=2",
				"BACKPLANE_REDIS_URL":            "redis://127.0.0.1:1/0",
				"BACKPLANE_KEY_ENCRYPTION_KEY":   "ZGVwbG95LXRlc3Qta2V5LWVuY3J5cHRpb24ta2V5LTA=",
			}
			for k, v := range cm.Data {
				env[k] = v
			}
			for _, e := range pod.Spec.Containers[0].Env {
				if e.ValueFrom == nil {
					env[e.Name] = e.Value
				}
			}
			for _, k := range []string{"BACKPLANE_HTTP_ADDR", "BACKPLANE_GRPC_ADDR", "BACKPLANE_ADMIN_ADDR"} {
				env[k] = "127.0.0.1:0"
			}
			env["BACKPLANE_DATA_DIR"] = t.TempDir()
			if _, ok := env["BACKPLANE_CATALOG_FILE"]; ok {
				// The chart mounts its catalogue ConfigMap there; here it is a file
				// with the same content, so the binary validates what the chart ships.
				var cat configMap
				find(t, objs, "ConfigMap", "bp-backplane-catalog").decode(t, &cat)
				path := filepath.Join(t.TempDir(), "catalog.yaml")
				require.NoError(t, os.WriteFile(path, []byte(cat.Data["catalog.yaml"]), 0o600))
				env["BACKPLANE_CATALOG_FILE"] = path
				require.True(t, slices.ContainsFunc(pod.Spec.Volumes, func(v volume) bool {
					return v.ConfigMap != nil && v.ConfigMap.Name == "bp-backplane-catalog"
				}), "%s: the catalogue ConfigMap is mounted", piece)
			}
			r := started{name: vs.name + "/" + piece, cmd: exec.CommandContext(t.Context(), bin, pod.Spec.Containers[0].Args...), out: &bytes.Buffer{}, done: make(chan error, 1)}
			for k, v := range env {
				r.cmd.Env = append(r.cmd.Env, k+"="+v)
			}
			r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
			require.NoError(t, r.cmd.Start())
			go func() { r.done <- r.cmd.Wait() }()
			runs = append(runs, r)
		}
	}
	require.Len(t, runs, 2*len(pieces))
	time.Sleep(3 * time.Second)
	for _, r := range runs {
		select {
		case err := <-r.done:
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				assert.NotEqual(t, 2, exit.ExitCode(), "%s exited 2 (bad configuration):\n%s", r.name, r.out)
			}
			assert.NotContains(t, r.out.String(), "invalid configuration", r.name)
			assert.Contains(t, r.out.String(), "\"msg\":\"backplane failed\"", "%s stopped before reaching its dependencies:\n%s", r.name, r.out)
		default:
			_ = r.cmd.Process.Kill()
			t.Logf("%s still running after 3s, killed: %v", r.name, <-r.done)
		}
	}
}
