package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestUploadAndRollout is a CI pipeline's deploy over HTTP: upload version
// 2 of a model with PUT /v2/repository/models/{m}/versions/2, start a
// rollout to it, and poll until it is promoted. A corrupt upload, a
// repeated version and an oversized file are refused, leaving the
// serving versions and the disk as they were (issue 12).
func TestUploadAndRollout(t *testing.T) {
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp", "1"), filepath.Join(root, "twin", "1"))
	writeFile(t, filepath.Join(root, "twin", "config.yaml"), []byte("version_policy: {all: {}}\n"))
	model := readModel(t, "mlp", 1)
	cl := startServer(t, root, func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"*"}
		c.Repository.MaxUploadBytes = int64(len(model)) + 1000
	})
	put := func(version int, body []byte) (int, string) {
		t.Helper()
		status, b, _, err := cl.Do(context.Background(), http.MethodPut, fmt.Sprintf("/v2/repository/models/twin/versions/%d", version), body, nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b)
	}
	if status, b := put(2, model); status != 200 {
		t.Fatalf("upload of version 2: %d %s", status, b)
	}
	if got := readyVersions(t, cl, "twin"); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("ready after the upload: %v", got)
	}
	for _, tc := range []struct {
		name    string
		version int
		body    []byte
		want    string
	}{
		{"the same version again", 2, model, `model "twin" already has a version 2 on disk: upload under a new version number`},
		{"a corrupt file", 3, []byte("not a model"), "load twin: version 3: read model: "},
		{"over max_upload_bytes", 4, make([]byte, len(model)+2000), fmt.Sprintf("upload of %d bytes is over repository.max_upload_bytes (%d)", len(model)+2000, len(model)+1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := put(tc.version, tc.body)
			if got := errorBody(t, []byte(b)); status != 400 || !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %d %q, want 400 %q", status, got, tc.want)
			}
			if tc.version != 2 {
				if _, err := os.Stat(filepath.Join(root, "twin", fmt.Sprint(tc.version))); !os.IsNotExist(err) {
					t.Errorf("the refused upload left version %d on disk (%v)", tc.version, err)
				}
			}
			if got := readyVersions(t, cl, "twin"); !slices.Equal(got, []int64{1, 2}) {
				t.Errorf("ready after a refused upload: %v", got)
			}
		})
	}
	st := runRollout(t, cl, "twin", fmt.Sprintf(rolloutDoc, ""), func(rng *rand.Rand) []byte { return randomMLP(rng) })
	if st.Phase != "promoted" || st.Weight != 100 {
		t.Fatalf("rollout to the uploaded version: %s at %v%% (%s)", st.Phase, st.Weight, st.Reason)
	}
}

// TestLoadWithFiles: Triton's load API with the model itself,
// parameters {"config": ..., "file:<version>/model.onnx": <base64>}, as
// Triton's clients send it. The files form an override model directory
// that replaces the model's directory until the next load, which reads
// the repository again; a model absent from the repository can be
// loaded that way. A load with files needs config, and a refused or
// failed one leaves the serving versions and the disk as they were
// (issue 12).
func TestLoadWithFiles(t *testing.T) {
	root, overrides := t.TempDir(), t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp", "1"), filepath.Join(root, "twin", "1"))
	model := base64.StdEncoding.EncodeToString(readModel(t, "mlp", 1))
	cl := startServer(t, root, func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"*"}
		c.Repository.OverrideDir = overrides
	})
	load := func(name string, params map[string]string) (int, string) {
		t.Helper()
		body, err := json.Marshal(map[string]any{"parameters": params})
		if err != nil {
			t.Fatal(err)
		}
		status, b, _, err := cl.Do(context.Background(), http.MethodPost, "/v2/repository/models/"+name+"/load", body, nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b)
	}
	overrideDirs := func() int {
		t.Helper()
		entries, err := os.ReadDir(overrides)
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	repoFiles := func() []string {
		t.Helper()
		var out []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			out = append(out, strings.TrimPrefix(p, root))
			return err
		})
		return out
	}
	before := repoFiles()
	const config = `{"backend": "onnxruntime", "version_policy": {"all": {}}}`
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"files without config", map[string]string{"file:3/model.onnx": model},
			"a load with files needs the model's config too: the files form a new model directory, and the repository's config.yaml is not used (parameters.config, as in Triton)"},
		{"not base64", map[string]string{"config": config, "file:3/model.onnx": "%%%"}, `parameters["file:3/model.onnx"] is not base64: illegal base64 data at input byte 0`},
		{"a path out of the directory", map[string]string{"config": config, "file:3/../../x": model},
			`file "3/../../x": a path must stay inside the version's directory, with no empty, hidden, . or .. parts`},
		{"not under a version", map[string]string{"config": config, "file:model.onnx": model},
			`file "model.onnx": a file's path must be <version>/<file>, such as 1/model.onnx, with a positive version number`},
		{"no model file", map[string]string{"config": config, "file:3/labels.txt": "eA=="}, "the files hold no <version>/model.onnx"},
		{"a corrupt model", map[string]string{"config": config, "file:3/model.onnx": model, "file:4/model.onnx": "bm90IGEgbW9kZWw="}, "load twin: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := load("twin", tc.params)
			if got := errorBody(t, []byte(b)); status != 400 || !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %d %q, want 400 %q", status, got, tc.want)
			}
			if got := readyVersions(t, cl, "twin"); !slices.Equal(got, []int64{1}) {
				t.Errorf("ready after a refused load: %v", got)
			}
			if n := overrideDirs(); n != 0 {
				t.Errorf("the refused load left %d override directories", n)
			}
		})
	}
	infer := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	inferOK := func(path string) {
		t.Helper()
		if status, b := post(t, cl, path, infer); status != 200 {
			t.Errorf("%s: %d %s", path, status, b)
		}
	}
	// The files replace the directory: versions 3 and 5 serve, 1 is gone.
	if status, b := load("twin", map[string]string{"config": config, "file:3/model.onnx": model, "file:5/model.onnx": model}); status != 200 {
		t.Fatalf("load with files: %d %s", status, b)
	}
	if got := readyVersions(t, cl, "twin"); !slices.Equal(got, []int64{3, 5}) {
		t.Errorf("ready after the load with files: %v, want [3 5]", got)
	}
	inferOK("/v2/models/twin/versions/3/infer")
	if n := overrideDirs(); n != 1 {
		t.Errorf("%d override directories, want 1", n)
	}
	// A model that is not in the repository.
	if status, b := load("fresh", map[string]string{"config": `{"backend": "onnxruntime"}`, "file:1/model.onnx": model}); status != 200 {
		t.Fatalf("load of a model absent from the repository: %d %s", status, b)
	}
	inferOK("/v2/models/fresh/infer")
	// A failed load with files keeps the override that serves.
	if status, b := load("twin", map[string]string{"config": config, "file:7/model.onnx": "bm90IGEgbW9kZWw="}); status != 400 {
		t.Errorf("a corrupt model over an override: %d %s", status, b)
	}
	if got := readyVersions(t, cl, "twin"); !slices.Equal(got, []int64{3, 5}) {
		t.Errorf("ready after a failed load over an override: %v, want [3 5]", got)
	}
	// An upload while the override serves would not be seen: refused.
	if status, b, _, _ := cl.Do(context.Background(), http.MethodPut, "/v2/repository/models/twin/versions/2", readModel(t, "mlp", 1), nil); status != 400 ||
		!strings.Contains(errorBody(t, b), "load it without files first") {
		t.Errorf("upload over an override: %d %s", status, b)
	}
	// The next load without files reads the repository again.
	if status, b := load("twin", nil); status != 200 {
		t.Fatalf("load without files: %d %s", status, b)
	}
	if got := readyVersions(t, cl, "twin"); !slices.Equal(got, []int64{1}) {
		t.Errorf("ready after a load without files: %v, want [1]", got)
	}
	inferOK("/v2/models/twin/versions/1/infer")
	if n := overrideDirs(); n != 1 { // fresh's
		t.Errorf("%d override directories after twin's went back to the repository, want 1", n)
	}
	if after := repoFiles(); !slices.Equal(after, before) {
		t.Errorf("the repository changed: %v, was %v", after, before)
	}
}
