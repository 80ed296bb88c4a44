package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestValidate runs infergate validate on the fixtures in
// testdata/validate: the good ones pass; every problem of the bad ones is
// listed with its file and field path, and the command fails. No ONNX
// Runtime is needed (issue 12).
func TestValidate(t *testing.T) {
	dir := filepath.Join(runtimetest.Root(t), "testdata", "validate")
	t.Run("good", func(t *testing.T) {
		var out bytes.Buffer
		err := run(t.Context(), []string{"validate", "--config", filepath.Join(dir, "good", "gateway.yaml"), "--model-repository", filepath.Join(dir, "good", "models")}, &out, io.Discard)
		if err != nil || strings.TrimSpace(out.String()) != "ok" {
			t.Fatalf("got %v: %s", err, out.String())
		}
	})
	t.Run("bad", func(t *testing.T) {
		var out bytes.Buffer
		err := run(t.Context(), []string{"validate", "--config", filepath.Join(dir, "bad", "gateway.yaml"), "--model-repository", filepath.Join(dir, "bad", "models")}, &out, io.Discard)
		if err == nil || err.Error() != "7 problems" {
			t.Fatalf("got %v, want 7 problems:\n%s", err, out.String())
		}
		text := strings.ReplaceAll(out.String(), dir+"/", "")
		for _, want := range []string{
			"bad/gateway.yaml: http.port: 70000 is not a TCP port",
			"bad/gateway.yaml: inference.tokens: inference token: a name is required",
			"bad/gateway.yaml: tls: stat missing.crt: no such file or directory",
			"bad/models/a/config.yaml: max_batch_size: must be 0 or more, got -1",
			"bad/models/b/config.yaml: routing: invalid routing document: split[0].weight: must be positive, got -5",
			"bad/models/c/routing.yaml: invalid routing document: yaml: unmarshal errors:\n  line 2: field stickyy not found in type router.Document",
			"bad/models/d/config.yaml: yaml: unmarshal errors:\n  line 1: field max_batchsize not found in type repository.Config",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("missing %q in:\n%s", want, text)
			}
		}
	})
	t.Run("the shipped examples", func(t *testing.T) {
		root := runtimetest.Root(t)
		if err := run(t.Context(), []string{"validate", "--config", filepath.Join(root, "configs", "infergate.yaml"), "--model-repository", filepath.Join(root, "configs", "example-repository")}, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
