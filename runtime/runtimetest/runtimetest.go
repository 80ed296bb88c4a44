// Package runtimetest finds what infergate's tests need on this machine:
// the ONNX Runtime library and the repository's test models. Tests fail,
// never skip, when ONNX Runtime is missing: `make test` fetches it first.
package runtimetest

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root (the folder holding go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("runtimetest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Library returns the path of libonnxruntime: $ONNXRUNTIME_LIB, else the
// cache that scripts/fetch-onnxruntime.sh fills.
func Library(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p
	}
	p := filepath.Join(Root(tb), ".cache", "onnxruntime", "1.29.0", "libonnxruntime.so")
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("ONNX Runtime not found at %s: run scripts/fetch-onnxruntime.sh (make test does) or set ONNXRUNTIME_LIB", p)
	}
	return p
}

// Models returns the folder of the committed test models.
func Models(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Root(tb), "testdata", "models")
}

// CopyDir copies the tree at src to dst (a model, a repository).
func CopyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}
