package logging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of a Buffer.
const (
	// DefaultFlushInterval bounds how long a line waits in a Buffer, and so what a
	// process killed without warning (SIGKILL, an OOM kill) loses: the lines of its last
	// tenth of a second. A panic's trace is written by the runtime, not through the
	// Buffer, and the lines before it that were still waiting are lost with them.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultBufferSize is how many bytes a Buffer gathers before it writes them
	// without waiting for the interval: some 200 access-log lines.
	DefaultBufferSize = 64 << 10
)

// Buffer gathers log lines in memory and writes them to the writer it wraps in one
// write every FlushInterval, or at once when Size bytes are waiting, or on Flush and
// Close. A process under load logs a line per request, and written one system call
// each, those lines cost a serve gateway 1–7 % of its CPU, by profile.
//
// Loggers made by New on a Buffer also flush it after every record at warn level or
// above, so that what went wrong is written before whatever follows it can kill the
// process.
//
// Lines are never split or reordered: each Write is one record, appended whole, and
// writes to the wrapped writer happen one at a time, in order. The wrapped writer's
// errors are returned by the Flush or Close that met them, and otherwise dropped, as
// slog drops them.
type Buffer struct {
	w    io.Writer
	size int

	// mu guards buf, swapped out whole by a flush so that loggers never wait for the
	// wrapped writer.
	mu  sync.Mutex
	buf []byte
	// spare is the buffer written last, reused by the next swap; only the flush that
	// holds flushMu touches it.
	spare []byte

	// flushMu makes flushes one at a time, so that gathered lines leave in order.
	flushMu sync.Mutex

	stop    chan struct{}
	stopped chan struct{}
	close   sync.Once
}

// BufferOptions configures NewBuffer. The zero value means the defaults.
type BufferOptions struct {
	// FlushInterval is the longest a line waits; zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// Size is how many bytes are gathered before a write without waiting; zero means
	// DefaultBufferSize.
	Size int
}

// NewBuffer returns a Buffer writing to w, and starts the goroutine that flushes it on
// its interval. Close it when the process ends, after the last line is logged.
func NewBuffer(w io.Writer, opts BufferOptions) *Buffer {
	interval := opts.FlushInterval
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	size := opts.Size
	if size <= 0 {
		size = DefaultBufferSize
	}
	b := &Buffer{
		w:       w,
		size:    size,
		buf:     make([]byte, 0, size),
		spare:   make([]byte, 0, size),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go b.run(interval)
	return b
}

func (b *Buffer) run(interval time.Duration) {
	defer close(b.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write gathers p, a whole record, and writes what is gathered at once if that reaches
// the Buffer's size. After Close, p goes straight to the wrapped writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.buf == nil { // closed
		b.mu.Unlock()
		b.flushMu.Lock()
		defer b.flushMu.Unlock()
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= b.size
	b.mu.Unlock()
	if full {
		if err := b.Flush(); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush writes every gathered line to the wrapped writer.
func (b *Buffer) Flush() error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	out := b.buf
	b.buf = b.spare[:0]
	b.mu.Unlock()
	_, err := b.w.Write(out)
	// A buffer grown far past the size by one huge record is not kept.
	if cap(out) <= 2*b.size {
		b.spare = out[:0]
	} else {
		b.spare = make([]byte, 0, b.size)
	}
	return err
}

// Close stops the interval's flushes and writes what is gathered. Lines logged after
// Close are written straight through, so that a late line is never lost.
func (b *Buffer) Close() error {
	err := errors.New("logging: buffer already closed")
	b.close.Do(func() {
		close(b.stop)
		<-b.stopped
		b.flushMu.Lock()
		defer b.flushMu.Unlock()
		b.mu.Lock()
		out := b.buf
		b.buf = nil // from here on Write writes through
		b.mu.Unlock()
		err = nil
		if len(out) > 0 {
			_, err = b.w.Write(out)
		}
	})
	return err
}

// flushingHandler flushes a Buffer after each record at warn level or above.
type flushingHandler struct {
	next slog.Handler
	buf  *Buffer
}

// Enabled reports whether the wrapped handler writes records at level.
func (h flushingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle writes r and, if it is a warning or an error, flushes the Buffer.
func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		_ = h.buf.Flush()
	}
	return err
}

// WithAttrs returns a flushingHandler over the wrapped handler with attrs.
func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{next: h.next.WithAttrs(attrs), buf: h.buf}
}

// WithGroup returns a flushingHandler over the wrapped handler with the group.
func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{next: h.next.WithGroup(name), buf: h.buf}
}
