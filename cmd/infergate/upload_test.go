package main

import (
	"context"
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
