package main_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
)

// quickstartCommands are the commands of the README's ```sh quickstart blocks, in
// order: one per line, comments and blank lines left out.
func quickstartCommands(t *testing.T, readme string) []string {
	t.Helper()
	var cmds []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```sh quickstart":
			in = true
		case in && strings.TrimSpace(line) == "```":
			in = false
		case in:
			if cmd := strings.TrimSpace(stripComment(line)); cmd != "" {
				cmds = append(cmds, cmd)
			}
		}
	}
	require.NoError(t, sc.Err())
	require.False(t, in, "a quickstart block is not closed")
	return cmds
}

// stripComment drops a trailing "# ..." comment outside quotes.
func stripComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote == 0 && c == '#' && (i == 0 || line[i-1] == ' '):
			return line[:i]
		}
	}
	return line
}

var (
	accessToken = regexp.MustCompile(`"accessToken"\s*:\s*"([^"]+)"`)
	linkToken   = regexp.MustCompile(`token=([A-Za-z0-9_-]+)`)
	placeholder = regexp.MustCompile(`<[a-zA-Z ]+>`)
)

// The README's quickstart runs as written against a real `backplane dev`: each command
// in a shell from the repository root, with the README's ports and data dir pointed at
// this test's, curl told to fail on an HTTP error status, and the placeholders a reader
// fills in by hand (<accessToken>, <token>, <reset token>) filled from what earlier
// commands printed.
func TestREADMEQuickstartRunsAsWritten(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	cmds := quickstartCommands(t, string(readme))
	require.GreaterOrEqual(t, len(cmds), 10, "the README has its quickstart blocks")

	p := startDevIn(t, dbtest.NewDatabase(t), t.TempDir(), nil)
	rewrite := strings.NewReplacer(
		"localhost:8080", p.http, "localhost:9090", p.grpc, "localhost:8081", p.admin,
		".data/", p.dataDir+"/",
	)
	values := map[string]string{}
	for _, cmd := range cmds {
		run := rewrite.Replace(cmd)
		if strings.HasPrefix(run, "curl ") {
			// The README shows plain curl -s; an HTTP error must fail the step here.
			run = "curl --fail-with-body " + strings.TrimPrefix(run, "curl ")
		}
		run = placeholder.ReplaceAllStringFunc(run, func(name string) string {
			v, ok := values[name]
			require.True(t, ok, "%s: nothing earlier printed a value for %s", cmd, name)
			return v
		})

		// Emails are delivered in the background: a command reading the mailbox is tried
		// again for a while, as a reader would look again.
		var out bytes.Buffer
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; {
			out.Reset()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			sh := exec.CommandContext(ctx, "bash", "-c", run)
			sh.Dir = root
			sh.Stdout, sh.Stderr = &out, &out
			err = sh.Run()
			cancel()
			if err == nil || !strings.HasPrefix(cmd, "grep ") || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, err, "README command failed: %s\n(ran: %s)\n%s\nbackplane dev:\n%s", cmd, run, out.String(), tail(p.out.String()))
		t.Logf("$ %s\n%s", cmd, firstLines(out.String(), 5))

		if m := accessToken.FindStringSubmatch(out.String()); m != nil {
			values["<accessToken>"] = m[1]
		}
		if ms := linkToken.FindAllStringSubmatch(out.String(), -1); ms != nil {
			switch {
			case strings.Contains(cmd, "verify-email"):
				values["<token>"] = ms[len(ms)-1][1]
			case strings.Contains(cmd, "reset-password"):
				values["<reset token>"] = ms[len(ms)-1][1]
			}
		}
	}
	for _, name := range []string{"<accessToken>", "<token>", "<reset token>"} {
		require.Contains(t, values, name, "the quickstart still shows where %s comes from", name)
	}

	// The reset ended the session, and the new password signs in.
	a := api{base: "http://" + p.http}
	code, _ := a.call(t, "GET", "/v1/users/me", values["<accessToken>"], nil)
	require.Equal(t, 401, code)
	code, body := a.call(t, "POST", "/v1/auth/login", "", map[string]any{"email": "ada@example.com", "password": "another horse battery"})
	require.Equal(t, 200, code, "%v", body)
	p.stop(t)
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… (%d more lines)", len(lines)-n)
	}
	return strings.Join(lines, "\n")
}
