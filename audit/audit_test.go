package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func entry(i int, model string) Entry {
	return Entry{Time: time.Date(2026, 12, 2, 0, 0, i, 0, time.UTC), Actor: "ops", Action: "label.set", Model: model, Version: int64(i),
		Before: Doc(map[string]int{"stable": i}), After: Doc(map[string]int{"stable": i + 1})}
}

func TestAppendQuery(t *testing.T) {
	for _, file := range []bool{true, false} {
		t.Run(fmt.Sprintf("file=%v", file), func(t *testing.T) {
			opts := Options{}
			if file {
				opts.File = filepath.Join(t.TempDir(), "sub", "audit.jsonl")
			}
			l, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := range 10 {
				if err := l.Append(entry(i, []string{"a", "b"}[i%2])); err != nil {
					t.Fatal(err)
				}
			}
			cases := []struct {
				name  string
				q     Query
				first int64
				n     int
			}{
				{"all", Query{}, 0, 10},
				{"model", Query{Model: "b"}, 1, 5},
				{"since", Query{Since: time.Date(2026, 12, 2, 0, 0, 7, 0, time.UTC)}, 7, 3},
				{"limit keeps the newest", Query{Limit: 4}, 6, 4},
				{"model and since", Query{Model: "a", Since: time.Date(2026, 12, 2, 0, 0, 3, 0, time.UTC)}, 4, 3},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					got, err := l.Query(c.q)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != c.n || got[0].Version != c.first {
						t.Fatalf("got %d entries from version %d, want %d from %d", len(got), got[0].Version, c.n, c.first)
					}
					for i := 1; i < len(got); i++ {
						if got[i].Time.Before(got[i-1].Time) {
							t.Fatal("entries out of order")
						}
					}
				})
			}
			got, _ := l.Query(Query{Limit: 1})
			if string(got[0].Before) != `{"stable":9}` || string(got[0].After) != `{"stable":10}` || got[0].Actor != "ops" {
				t.Fatalf("entry %+v", got[0])
			}
		})
	}
}

// TestTornLine: a crash in the middle of a write leaves a torn last
// line; the reader skips it, and a writer opened after it goes on.
func TestTornLine(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Append(entry(i, "m"))
	}
	l.Close()
	b, _ := os.ReadFile(name)
	// The crash: the third entry's line is cut in its middle.
	cut := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1 + 20
	if err := os.WriteFile(name, b[:cut], 0o640); err != nil {
		t.Fatal(err)
	}
	r, _ := Open(Options{File: name})
	got, err := r.Query(Query{})
	if err != nil || len(got) != 2 {
		t.Fatalf("after the crash: %d entries (%v), want the 2 whole ones", len(got), err)
	}
	if err := r.Append(entry(3, "m")); err != nil {
		t.Fatal(err)
	}
	r.Close()
	l2, _ := Open(Options{File: name})
	got, _ = l2.Query(Query{})
	if len(got) != 3 || got[2].Version != 3 {
		t.Fatalf("after the restart: %+v, want versions 0, 1, 3", got)
	}
	// Served from memory once enough is there: the same answer.
	l2.Append(entry(4, "m"))
	if got, _ := l2.Query(Query{Limit: 1}); len(got) != 1 || got[0].Version != 4 {
		t.Fatalf("the newest from memory: %+v", got)
	}
	l2.Close()
	if err := l2.Append(entry(5, "m")); err == nil {
		t.Error("an append after Close succeeded")
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "audit.jsonl")
	line, _ := json.Marshal(entry(5, "m"))
	per := int64(len(line) + 1)
	// Three entries a file, two rotated files kept.
	l, err := Open(Options{File: name, MaxBytes: 3*per + 5, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 20 {
		if err := l.Append(entry(i%10, "m")); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 3 {
		t.Fatalf("files %v, want the current one and 2 rotated", files)
	}
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > 3*per+5 {
			t.Fatalf("%s is %d bytes, past max_bytes", f, st.Size())
		}
	}
	got, _ := l.Query(Query{})
	// 20 entries, 3 a file: 18 in rotated files (6 files, 2 kept), 2 in
	// the current one.
	if len(got) != 8 {
		t.Fatalf("%d entries kept, want 8", len(got))
	}
	if got[len(got)-1].Version != 9 || got[0].Version != 2 {
		t.Fatalf("kept %d..%d, want 2..9 (the newest)", got[0].Version, got[len(got)-1].Version)
	}
}

func TestMemoryBound(t *testing.T) {
	l, _ := Open(Options{})
	for i := range MemoryEntries + 10 {
		l.Append(Entry{Action: "x", Version: int64(i)})
	}
	got, _ := l.Query(Query{Limit: MemoryEntries * 2})
	if len(got) != MemoryEntries || got[0].Version != 10 {
		t.Fatalf("%d entries from %d", len(got), got[0].Version)
	}
	var nilLog *Log
	if nilLog.Append(Entry{}) != nil || nilLog.Close() != nil {
		t.Fatal("a nil log records nothing")
	}
}

// FuzzScan: whatever the file holds, the reader returns its whole
// entries and never fails or panics.
func FuzzScan(f *testing.F) {
	line, _ := json.Marshal(entry(1, "m"))
	f.Add(append(line, '\n'))
	f.Add(append(append(line, '\n'), line[:10]...))
	f.Add([]byte("{\n}\n\x00\xff\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := scan(bytes.NewReader(b), func(e Entry) {
			if e.Action == "" {
				t.Fatal("an entry without an action")
			}
		}); err != nil {
			t.Fatal(err)
		}
	})
}
