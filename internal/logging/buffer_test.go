package logging_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/logging"
)

// lockedWriter is a writer that the Buffer's flushing goroutine and the test may use at
// once; it counts the writes it is given.
type lockedWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *lockedWriter) snapshot() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes
}

func TestBufferHoldsLinesUntilClose(t *testing.T) {
	t.Parallel()
	var out lockedWriter
	b := logging.NewBuffer(&out, logging.BufferOptions{FlushInterval: time.Hour})
	log := logging.New(b, logging.Options{})

	for i := range 100 {
		log.Info("finished call", "n", i)
	}
	got, _ := out.snapshot()
	require.Empty(t, got, "nothing is written before the interval, the size or Close")

	require.NoError(t, b.Close())
	got, writes := out.snapshot()
	require.Equal(t, 1, writes, "the gathered lines leave in one write")
	lines := decodeLines(t, bytes.NewBufferString(got))
	require.Len(t, lines, 100)
	for i, l := range lines {
		require.Equal(t, "finished call", l["msg"])
		require.InDelta(t, i, l["n"], 0, "lines keep their order")
	}

	log.Info("after close")
	got, _ = out.snapshot()
	require.Contains(t, got, `"msg":"after close"`, "a line logged after Close is written through")
	require.Error(t, b.Close(), "a second Close says so")
}

func TestBufferFlushesOnItsInterval(t *testing.T) {
	t.Parallel()
	var out lockedWriter
	b := logging.NewBuffer(&out, logging.BufferOptions{FlushInterval: 10 * time.Millisecond})
	t.Cleanup(func() { _ = b.Close() })
	log := logging.New(b, logging.Options{})

	log.Info("one")
	log.Info("two")
	require.Eventually(t, func() bool {
		got, _ := out.snapshot()
		return strings.Contains(got, `"msg":"two"`)
	}, 5*time.Second, 5*time.Millisecond)
	got, _ := out.snapshot()
	require.Less(t, strings.Index(got, `"msg":"one"`), strings.Index(got, `"msg":"two"`))
}

func TestBufferWritesAtOnceWhenFull(t *testing.T) {
	t.Parallel()
	var out lockedWriter
	b := logging.NewBuffer(&out, logging.BufferOptions{FlushInterval: time.Hour, Size: 1024})
	t.Cleanup(func() { _ = b.Close() })
	log := logging.New(b, logging.Options{})

	for i := range 30 { // about 60 bytes a line: past 1 KiB
		log.Info("finished call", "n", i)
	}
	got, writes := out.snapshot()
	require.Positive(t, writes, "a full buffer is written without waiting for the interval")
	require.Less(t, writes, 30, "but not line by line")
	lines := decodeLines(t, bytes.NewBufferString(got))
	for i, l := range lines {
		require.InDelta(t, i, l["n"], 0, "whole lines, in order")
	}
}

func TestBufferFlushesWarningsAtOnce(t *testing.T) {
	t.Parallel()
	var out lockedWriter
	b := logging.NewBuffer(&out, logging.BufferOptions{FlushInterval: time.Hour})
	t.Cleanup(func() { _ = b.Close() })
	log := logging.New(b, logging.Options{}).With("component", "edge").WithGroup("g")

	log.Info("before")
	got, _ := out.snapshot()
	require.Empty(t, got)

	log.Warn("redis unreachable")
	got, _ = out.snapshot()
	lines := decodeLines(t, bytes.NewBufferString(got))
	require.Len(t, lines, 2, "the warning and every line before it")
	require.Equal(t, "before", lines[0]["msg"])
	require.Equal(t, "redis unreachable", lines[1]["msg"])
	require.Equal(t, "edge", lines[1]["component"])
}

func TestBufferUnderConcurrentLoggers(t *testing.T) {
	t.Parallel()
	var out lockedWriter
	b := logging.NewBuffer(&out, logging.BufferOptions{FlushInterval: time.Millisecond, Size: 512})
	log := logging.New(b, logging.Options{})

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				log.Info("line", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	require.NoError(t, b.Close())

	got, _ := out.snapshot()
	lines := decodeLines(t, bytes.NewBufferString(got))
	require.Len(t, lines, 8*200, "no line lost or torn")
	next := map[string]float64{}
	for _, l := range lines {
		g := fmt.Sprint(l["g"])
		require.InDelta(t, next[g], l["i"], 0, "each goroutine's lines in its order")
		next[g]++
	}
}
