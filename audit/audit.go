// Package audit keeps infergate's audit trail: one JSON line per admin
// action (a load, an unload, a label, a routing document, a rollout
// decision, whether an operator or the rollout controller took it),
// appended and fsynced before the action's answer, so that who changed
// what survives a crash.
//
// The file rotates at Options.MaxBytes into FILE.1 … FILE.N (the
// highest the oldest), keeping Options.MaxFiles of them. A crash in the
// middle of a write can leave a torn last line; the reader skips any
// line that is not a whole entry, and the writer, opening a file whose
// last byte is not a newline, ends that line first, so that it goes on
// after it. Without a file the trail is kept in memory only, the last
// MemoryEntries entries.
//
// The package is a leaf: the gateway, the gRPC server and the router
// append to it. Rotation by size is a few lines; lumberjack, the usual
// library, neither fsyncs an entry nor reads the files back, and both
// are what an audit trail is for.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Entry is one admin action.
type Entry struct {
	Time time.Time `json:"time"`
	// Actor is who took the action: an admin token's name, "loopback",
	// "admin-listener", a client address, or "rollout-controller" for
	// the decisions the controller takes by itself.
	Actor string `json:"actor"`
	// Action is what was done: "load", "unload", "upload", "label.set",
	// "label.delete", "routing.set", "routing.delete", or "rollout." and
	// the controller's decision ("rollout.advance", "rollout.hold",
	// "rollout.fail", "rollout.promote", "rollout.rollback",
	// "rollout.abort", "rollout.pause", "rollout.resume").
	Action  string `json:"action"`
	Model   string `json:"model,omitempty"`
	Version int64  `json:"version,omitempty"`
	// Before and After are the documents the action changed, as JSON:
	// the model's versions and labels, its routing document, or the
	// rollout's phase, step and weight.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// Reason is the rollout controller's reason, or any other detail.
	Reason string `json:"reason,omitempty"`
	// Error is set when the action was refused or failed: the attempt
	// is part of the trail too.
	Error     string `json:"error,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Protocol  string `json:"protocol,omitempty"`
}

// Doc marshals v for Entry.Before or After; nil when v is nil or does
// not marshal.
func Doc(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return b
}

// Defaults of Options.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxFiles = 5
	// MemoryEntries is how many entries a trail without a file keeps.
	MemoryEntries = 10000
	// DefaultLimit is how many entries Query returns at most by default.
	DefaultLimit = 1000
)

// Options configure a Log.
type Options struct {
	// File is the trail's file (audit.file). Empty: in memory only.
	File string
	// MaxBytes rotates the file before an entry would take it past this
	// size (audit.max_bytes). Default DefaultMaxBytes.
	MaxBytes int64
	// MaxFiles is how many rotated files are kept (audit.max_files).
	// Default DefaultMaxFiles.
	MaxFiles int
	// Logger receives write failures. Default: discard.
	Logger *slog.Logger
	// Now stamps entries that come without a time. Default time.Now.
	Now func() time.Time
}

// Log is an audit trail. Its methods are safe for concurrent use, and
// a nil *Log records nothing.
type Log struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
	// mem is the last MemoryEntries entries appended since Open: all
	// there is without a file, and with one what Query answers from
	// when they are enough.
	mem []Entry
	// failed counts entries that could not be written.
	failed int64
}

// Open opens (creating it) the trail of opts.
func Open(opts Options) (*Log, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{opts: opts, log: opts.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if opts.File == "" {
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(opts.File), 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// open opens the current file for appending; a torn last line (a crash
// in a write) is ended with a newline, so that the next entry starts a
// line of its own.
func (l *Log) open() error {
	f, err := os.OpenFile(l.opts.File, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	l.f, l.size = f, st.Size()
	if l.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, l.size-1); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			l.size++
			l.log.Warn("audit file ended in a torn line (a crash in a write?): the reader skips it", "file", l.opts.File)
		}
	}
	return nil
}

// Append records e, stamped with the time when it has none, and syncs
// it to disk before it returns. A failure is logged and returned; the
// action it records has happened all the same.
func (l *Log) Append(e Entry) error {
	if l == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("audit: the trail is closed")
	}
	if len(l.mem) >= MemoryEntries {
		l.mem = slices.Delete(l.mem, 0, len(l.mem)-MemoryEntries+1)
	}
	l.mem = append(l.mem, e)
	if l.opts.File == "" {
		return nil
	}
	if err := l.write(line); err != nil {
		l.failed++
		l.log.Error("audit entry not written", "action", e.Action, "model", e.Model, "err", err)
		// The write may have left part of a line: the next open ends it,
		// so that the next entry is a line of its own.
		if l.f != nil {
			l.f.Close()
			l.f = nil
		}
		return err
	}
	return nil
}

func (l *Log) write(line []byte) error {
	if l.f == nil {
		if err := l.open(); err != nil {
			return err
		}
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxBytes {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// rotate moves FILE to FILE.1, FILE.1 to FILE.2 and so on, drops the
// file past MaxFiles, and opens a new FILE.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		l.log.Warn("audit file close", "err", err)
	}
	l.f = nil
	name := l.opts.File
	if err := os.Remove(rotated(name, l.opts.MaxFiles)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: %w", err)
	}
	for i := l.opts.MaxFiles - 1; i >= 1; i-- {
		if err := os.Rename(rotated(name, i), rotated(name, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if err := os.Rename(name, rotated(name, 1)); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	syncDir(filepath.Dir(name))
	return l.open()
}

func rotated(name string, i int) string { return name + "." + strconv.Itoa(i) }

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Query selects entries.
type Query struct {
	// Since keeps the entries at or after it. Zero: all.
	Since time.Time
	// Model keeps one model's entries. Empty: every model's.
	Model string
	// Limit keeps the newest Limit entries. Default DefaultLimit.
	Limit int
}

// Query returns the entries that q selects, oldest first: from the
// entries kept in memory when they hold the answer (the newest Limit
// matches, or everything since Since), else from the rotated files and
// the current one, read without holding up Append. Lines that are not
// whole entries (a torn write) are skipped.
func (l *Log) Query(q Query) ([]Entry, error) {
	if l == nil {
		return []Entry{}, nil
	}
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	keep := func(e *Entry) bool {
		return (q.Model == "" || e.Model == q.Model) && !e.Time.Before(q.Since)
	}
	out := []Entry{}
	add := func(e Entry) {
		if keep(&e) {
			out = append(out, e)
			if len(out) > 2*q.Limit {
				out = slices.Delete(out, 0, len(out)-q.Limit)
			}
		}
	}
	l.mu.Lock()
	for _, e := range l.mem {
		add(e)
	}
	covered := len(l.mem) > 0 && !q.Since.IsZero() && l.mem[0].Time.Before(q.Since)
	if l.opts.File == "" || len(out) >= q.Limit || covered {
		l.mu.Unlock()
		return trim(out, q.Limit), nil
	}
	// Open the files under the lock, so that a rotation cannot move them
	// between two opens; read them after.
	var files []*os.File
	for i := l.opts.MaxFiles; i >= 0; i-- {
		name := l.opts.File
		if i > 0 {
			name = rotated(l.opts.File, i)
		}
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			l.mu.Unlock()
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("audit: %w", err)
		}
		files = append(files, f)
	}
	l.mu.Unlock()
	out = out[:0]
	var err error
	for _, f := range files {
		if err == nil {
			err = scan(f, add)
		}
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	return trim(out, q.Limit), nil
}

func trim(es []Entry, limit int) []Entry {
	if len(es) > limit {
		return es[len(es)-limit:]
	}
	return es
}

// scan reads entries from r, one a line, skipping the lines that are
// not whole entries.
func scan(r io.Reader, add func(Entry)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var e Entry
			if json.Unmarshal(bytes.TrimSpace(line), &e) == nil && e.Action != "" {
				add(e)
			}
		}
		// A last line without its newline is torn: skipped.
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
}

// Record appends e, with err's text as its Error when the action it
// records was refused or failed (err nil: it succeeded).
func (l *Log) Record(e Entry, err error) {
	if err != nil {
		e.Error = err.Error()
	}
	l.Append(e)
}

// Failed returns how many entries could not be written.
func (l *Log) Failed() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
