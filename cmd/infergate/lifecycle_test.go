package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// writeFile writes then renames, as a deployment should.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readModel(t *testing.T, model string, version int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runtimetest.Models(t), model, strconv.Itoa(version), "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func index(t *testing.T, c *client.Client) []repository.IndexEntry {
	t.Helper()
	status, body, _, err := c.Do(context.Background(), http.MethodPost, "/v2/repository/index", nil, nil)
	if err != nil || status != 200 {
		t.Fatalf("index: %d %s %v", status, body, err)
	}
	var out []repository.IndexEntry
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// readyVersions lists the READY versions of a model in the index.
func readyVersions(t *testing.T, c *client.Client, model string) []int64 {
	var out []int64
	for _, e := range index(t, c) {
		if e.Name == model && e.State == repository.StateReady {
			n, _ := strconv.ParseInt(e.Version, 10, 64)
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// repeat calls f on n goroutines, each again and again until stop is
// closed or f returns false; the function it returns waits for them.
func repeat(stop <-chan struct{}, n int, f func() bool) (wait func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !f() {
					return
				}
			}
		})
	}
	return wg.Wait
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func post(t *testing.T, c *client.Client, path, body string) (int, string) {
	t.Helper()
	status, b, _, err := c.Do(context.Background(), http.MethodPost, path, []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	return status, string(b)
}

// TestZeroDowntimeSwaps runs concurrent requests while versions are
// added, removed and reloaded 20 times, by the poller and by the
// repository API: no request may fail, and every response must come from
// a version that was live when the request was sent.
func TestZeroDowntimeSwaps(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	// The slow test model (400 chained MatMuls) keeps requests in flight
	// while versions swap.
	weights := [][]byte{readModel(t, "slow", 1), readModel(t, "slow", 2)}
	config := "version_policy: {latest: {num_versions: 2}}\nmax_batch_size: 16\ndynamic_batching: {}\n"
	writeFile(t, filepath.Join(dir, "config.yaml"), []byte(config))
	writeFile(t, filepath.Join(dir, "1", "model.onnx"), weights[0])
	writeFile(t, filepath.Join(dir, "2", "model.onnx"), weights[1])
	c := startServer(t, root, func(c *Config) {
		c.ModelControl = "poll"
		c.pollInterval = 20 * time.Millisecond
	})

	// Liveness intervals, from the test's point of view: a version may
	// serve from just before its files appear until the index stops
	// showing it.
	var mu sync.Mutex
	added := map[int64]time.Time{1: time.Now().Add(-time.Hour), 2: time.Now().Add(-time.Hour)}
	removed := map[int64]time.Time{}

	type sample struct {
		sent, got time.Time
		version   int64
	}
	var (
		samples []sample
		failed  atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	body := []byte(`{"inputs":[{"name":"x","shape":[4,32],"datatype":"FP32","data":[` + strings.Repeat("0.25,", 127) + `0.5]}]}`)
	for range 6 {
		wg.Go(func() {
			var mine []sample
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				status, b, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/m/infer", body, nil)
				got := time.Now()
				if err != nil || status != 200 {
					failed.Add(1)
					t.Errorf("request failed: %d %s %v", status, b, err)
					continue
				}
				var resp struct {
					ModelVersion string `json:"model_version"`
				}
				json.Unmarshal(b, &resp)
				v, _ := strconv.ParseInt(resp.ModelVersion, 10, 64)
				mine = append(mine, sample{sent, got, v})
			}
		})
	}

	onDisk := []int64{1, 2}
	expect := func() []int64 { // latest 2 of what is on disk
		if len(onDisk) <= 2 {
			return slices.Clone(onDisk)
		}
		return slices.Clone(onDisk[len(onDisk)-2:])
	}
	settle := func(op string, before []int64) {
		want := expect()
		waitFor(t, op, func() bool { return slices.Equal(readyVersions(t, c, "m"), want) })
		now := time.Now()
		mu.Lock()
		for _, v := range before {
			if !slices.Contains(want, v) {
				removed[v] = now
			}
		}
		mu.Unlock()
	}
	next := int64(3)
	for i := range 20 {
		before := expect()
		switch i % 4 {
		case 0: // a new version appears: the poller loads it, the oldest goes
			mu.Lock()
			added[next] = time.Now()
			mu.Unlock()
			writeFile(t, filepath.Join(dir, strconv.FormatInt(next, 10), "model.onnx"), weights[next%2])
			onDisk = append(onDisk, next)
			next++
			settle("a new version", before)
		case 1: // a reload through the API
			if status, b := post(t, c, "/v2/repository/models/m/load", ""); status != 200 {
				t.Fatalf("load: %d %s", status, b)
			}
			settle("an API reload", before)
		case 2: // a changed config.yaml: the poller reloads every version
			writeFile(t, filepath.Join(dir, "config.yaml"), []byte(config+fmt.Sprintf("# change %d\n", i)))
			time.Sleep(60 * time.Millisecond) // let the poller see it
			settle("a config change", before)
		case 3: // the newest version is removed: the one before comes back
			last := onDisk[len(onDisk)-1]
			if err := os.RemoveAll(filepath.Join(dir, strconv.FormatInt(last, 10))); err != nil {
				t.Fatal(err)
			}
			onDisk = onDisk[:len(onDisk)-1]
			back := expect()[0]
			mu.Lock()
			if _, ok := removed[back]; ok {
				added[back] = time.Now()
				delete(removed, back)
			}
			mu.Unlock()
			settle("a removed version", before)
		}
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests failed", n)
	}
	bad := 0
	for _, s := range samples {
		a, ok := added[s.version]
		r, gone := removed[s.version]
		if !ok || a.After(s.got) || (gone && r.Before(s.sent)) {
			bad++
			if bad < 5 {
				t.Errorf("version %d answered a request sent at %s, outside its life [%s, %s]", s.version, s.sent.Format(time.StampMicro), a.Format(time.StampMicro), r.Format(time.StampMicro))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d responses came from versions that were not live", bad, len(samples))
	}
	t.Logf("%d requests, 0 failed, across 20 swaps (versions added, removed, reloaded by poll and API)", len(samples))
}

// TestCorruptModelKeepsServing copies a corrupt file over a serving
// version: the reload fails, the loaded version keeps serving, and the
// index says why. A good file brings the reload back.
func TestCorruptModelKeepsServing(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "m", "1", "model.onnx")
	writeFile(t, path, readModel(t, "mlp", 1))
	c := startServer(t, root, func(c *Config) {
		c.ModelControl = "poll"
		c.pollInterval = 20 * time.Millisecond
	})
	body := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	if status, b := post(t, c, "/v2/models/m/infer", body); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	writeFile(t, path, []byte("not a model at all"))
	reason := func() string {
		for _, e := range index(t, c) {
			if e.Name == "m" {
				return string(e.State) + " " + e.Reason
			}
		}
		return ""
	}
	waitFor(t, "the failed reload in the index", func() bool { return strings.Contains(reason(), "failed") })
	if got := reason(); !strings.HasPrefix(got, "READY reload of version 1 failed, the loaded one keeps serving: ") || !strings.Contains(got, "Protobuf parsing failed") {
		t.Errorf("index: %q", got)
	}
	for range 20 {
		if status, b := post(t, c, "/v2/models/m/infer", body); status != 200 {
			t.Fatalf("after the corrupt copy: %d %s", status, b)
		}
	}
	// Via the API, the failure is the answer.
	if status, b := post(t, c, "/v2/repository/models/m/load", ""); status != 400 || !strings.Contains(b, "Protobuf parsing failed") {
		t.Errorf("API load of the corrupt file: %d %s", status, b)
	}
	writeFile(t, path, readModel(t, "mlp", 2))
	waitFor(t, "the good file to load", func() bool { return reason() == "READY " })
	if status, b := post(t, c, "/v2/models/m/infer", body); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
}

func TestRepositoryAPI(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), func(c *Config) {
		c.ModelControl = "explicit"
		c.LoadModels = []string{"mlp"}
		c.StrictReadiness = true
	})
	ctx := context.Background()
	body := `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`
	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"not loaded yet", "/v2/models/identity_fp32/infer", body, 503, `{"error":"model \"identity_fp32\" is not ready: not loaded: load it through the repository API"}`},
		{"load", "/v2/repository/models/identity_fp32/load", "", 200, `{}`},
		{"loaded", "/v2/models/identity_fp32/infer", body, 200, `{"model_name":"identity_fp32","model_version":"1","outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`},
		{"unload", "/v2/repository/models/identity_fp32/unload", "", 200, `{}`},
		{"unloaded", "/v2/models/identity_fp32/infer", body, 503, `{"error":"model \"identity_fp32\" is not ready: unloaded"}`},
		{"load with a config", "/v2/repository/models/mlp/load", `{"parameters":{"config":"{\"version_policy\":{\"specific\":{\"versions\":[1]}}}"}}`, 200, `{}`},
		{"config in effect", "/v2/models/mlp/versions/2/ready", "", 0, ""},
		{"bad config", "/v2/repository/models/mlp/load", `{"parameters":{"config":"{\"max_batch_size\":-3}"}}`, 400, `{"error":"parameters.config: max_batch_size: must be 0 or more, got -3"}`},
		{"config not a string", "/v2/repository/models/mlp/load", `{"parameters":{"config":{}}}`, 400, `{"error":"parameters.config must be a string holding the model configuration as JSON"}`},
		{"unknown model", "/v2/repository/models/nope/load", "", 404, `{"error":"no model \"nope\" in the repository"}`},
		{"unload unknown", "/v2/repository/models/nope/unload", "", 404, `{"error":"unknown model \"nope\""}`},
		{"failed load", "/v2/repository/models/corrupt/load", "", 400, `{"error":"load corrupt: version 1: read model: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == 0 {
				if ok, err := c.ModelReady(ctx, "mlp", "2"); ok || err == nil {
					t.Errorf("version 2 should be gone: %v %v", ok, err)
				}
				return
			}
			status, b := post(t, c, tt.path, tt.body)
			want, prefix := strings.CutSuffix(tt.want, ": ")
			if status != tt.status || (!prefix && b != want) || (prefix && !strings.HasPrefix(b, tt.want)) {
				t.Errorf("got %d %s, want %d %s", status, b, tt.status, tt.want)
			}
		})
	}
	idx := index(t, c)
	var states []string
	for _, e := range idx {
		if e.Name == "mlp" || e.Name == "identity_fp32" || e.Name == "scalar" {
			states = append(states, fmt.Sprintf("%s/%s:%s:%s", e.Name, e.Version, e.State, e.Reason))
		}
	}
	if got := strings.Join(states, " "); got != "identity_fp32/:UNAVAILABLE:unloaded mlp/1:READY: scalar/:UNAVAILABLE:not loaded: load it through the repository API" {
		t.Errorf("index: %s", got)
	}
	status, b, _, _ := c.Do(ctx, http.MethodPost, "/v2/repository/index", []byte(`{"ready":true}`), nil)
	if status != 200 || string(b) != `[{"name":"mlp","version":"1","state":"READY"}]` {
		t.Errorf("ready index: %d %s", status, b)
	}
}

func TestModelControlNone(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	for _, path := range []string{"/v2/repository/models/mlp/load", "/v2/repository/models/mlp/unload"} {
		if status, b := post(t, c, path, ""); status != 403 || b != `{"error":"model control is disabled: start the server with --model-control-mode=poll or explicit"}` {
			t.Errorf("%s: %d %s", path, status, b)
		}
	}
	if status, _ := post(t, c, "/v2/repository/index", ""); status != 200 {
		t.Errorf("index: %d", status)
	}
}

func TestVersionLabels(t *testing.T) {
	root := t.TempDir()
	for v := 1; v <= 2; v++ {
		writeFile(t, filepath.Join(root, "m", strconv.Itoa(v), "model.onnx"), readModel(t, "mlp", v))
	}
	writeFile(t, filepath.Join(root, "m", "config.yaml"), []byte("version_policy: {all: {}}\nversion_labels: {stable: 1, canary: 2}\n"))
	c := startServer(t, root, func(c *Config) { c.ModelControl = "explicit"; c.LoadModels = []string{"*"} })
	ctx := context.Background()
	served := func(label string) string {
		t.Helper()
		status, b := post(t, c, "/v2/models/m/labels/"+label+"/infer", `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[`+strings.Repeat("1,", 15)+`1]}]}`)
		if status != 200 {
			return fmt.Sprintf("%d %s", status, b)
		}
		var r struct {
			V string `json:"model_version"`
		}
		json.Unmarshal([]byte(b), &r)
		return r.V
	}
	if a, b := served("stable"), served("canary"); a != "1" || b != "2" {
		t.Errorf("stable %s, canary %s", a, b)
	}
	do := func(method, path, body string) (int, string) {
		status, b, _, err := c.Do(ctx, method, path, []byte(body), nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b)
	}
	if status, b := do(http.MethodPut, "/v2/repository/models/m/labels/canary", `{"version":1}`); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	if got := served("canary"); got != "1" {
		t.Errorf("canary after PUT: %s", got)
	}
	if status, b := do(http.MethodPut, "/v2/repository/models/m/labels/beta", `{"version":7}`); status != 400 || b != `{"error":"model \"m\" version 7 is not loaded: a label can only point at a loaded version"}` {
		t.Errorf("label to a missing version: %d %s", status, b)
	}
	if status, b := do(http.MethodGet, "/v2/repository/models/m/labels", ""); status != 200 || b != `{"canary":1,"stable":1}` {
		t.Errorf("labels: %d %s", status, b)
	}
	if status, b := do(http.MethodDelete, "/v2/repository/models/m/labels/canary", ""); status != 200 {
		t.Errorf("delete: %d %s", status, b)
	}
	if got := served("canary"); got != `404 {"error":"model \"m\" has no label \"canary\""}` {
		t.Errorf("deleted label: %s", got)
	}
	if ok, err := c.ModelReady(ctx, "m", ""); !ok || err != nil {
		t.Errorf("ready: %v %v", ok, err)
	}
	// A config label at a version that is not loaded fails the load.
	writeFile(t, filepath.Join(root, "m", "config.yaml"), []byte("version_labels: {stable: 1}\n"))
	if status, b := post(t, c, "/v2/repository/models/m/load", ""); status != 400 || !strings.Contains(b, "version_labels.stable: version 1 is not loaded") {
		t.Errorf("bad label reload: %d %s", status, b)
	}
	if got := served("stable"); got != "1" {
		t.Errorf("after the failed reload the old state serves: %s", got)
	}
}

func TestWarmup(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "good", "1", "model.onnx"), readModel(t, "mlp", 1))
	writeFile(t, filepath.Join(root, "good", "config.yaml"), []byte(`max_batch_size: 8
model_warmup:
  - {name: zeros, batch_size: 8, count: 3, inputs: {input: {data_type: TYPE_FP32, dims: [16], zero_data: true}}}
  - {name: random, batch_size: 1, inputs: {input: {data_type: TYPE_FP32, dims: [16], random_data: true}}}
`))
	writeFile(t, filepath.Join(root, "bad", "1", "model.onnx"), readModel(t, "mlp", 1))
	writeFile(t, filepath.Join(root, "bad", "config.yaml"), []byte(`model_warmup:
  - {name: wrong, inputs: {input: {data_type: TYPE_FP32, dims: [15], zero_data: true}}}
`))
	c := startServer(t, root, nil)
	ctx := context.Background()
	if ok, err := c.ModelReady(ctx, "good", ""); !ok || err != nil {
		t.Errorf("good: %v %v", ok, err)
	}
	status, b, _, _ := c.Do(ctx, http.MethodGet, "/v2/models/bad", nil, nil)
	if status != 503 || !strings.Contains(string(b), `model_warmup[0] \"wrong\"`) {
		t.Errorf("bad warmup: %d %s", status, b)
	}
}

// TestResidency bounds the repository to one loaded version: a request
// for another loads it and evicts the least recently used; labelled
// versions stay.
func TestResidency(t *testing.T) {
	root := t.TempDir()
	for _, m := range []string{"a", "b"} {
		writeFile(t, filepath.Join(root, m, "1", "model.onnx"), readModel(t, "mlp", 1))
	}
	c := startServer(t, root, func(c *Config) { c.MaxResidentVersions = 1; c.ModelControl = "poll" })
	body := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	resident := func() string {
		var out []string
		for _, e := range index(t, c) {
			// Evicted versions stay READY (they serve, loading first);
			// their reason says they are not resident.
			if e.State == repository.StateReady && !strings.HasPrefix(e.Reason, "evicted") {
				out = append(out, e.Name)
			}
		}
		return strings.Join(out, ",")
	}
	if got := resident(); got != "b" {
		t.Fatalf("after start: resident %q, want b (a loaded first, then evicted)", got)
	}
	for _, m := range []string{"a", "b", "a", "a", "b"} {
		if status, b := post(t, c, "/v2/models/"+m+"/infer", body); status != 200 {
			t.Fatalf("%s: %d %s", m, status, b)
		}
		if got := resident(); got != m {
			t.Errorf("after a request to %s: resident %q", m, got)
		}
	}
	for _, e := range index(t, c) {
		if e.Name == "a" && (e.State != repository.StateReady || e.Reason != "evicted: not resident, loads on the next request") {
			t.Errorf("evicted a: %+v", e)
		}
	}
	// A labelled version is pinned: loading another goes over the bound.
	status, b, _, _ := c.Do(context.Background(), http.MethodPut, "/v2/repository/models/b/labels/pinned", []byte(`{"version":1}`), nil)
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	if status, b := post(t, c, "/v2/models/a/infer", body); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	if got := resident(); got != "a,b" {
		t.Errorf("with b pinned: resident %q, want a,b", got)
	}
}

// TestHalfWrittenVersion writes a new version in place, half at first:
// the poller fails to load it, the old version keeps serving, and the
// version loads once the file is complete.
func TestHalfWrittenVersion(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "m", "1", "model.onnx"), readModel(t, "mlp", 1))
	c := startServer(t, root, func(c *Config) {
		c.ModelControl = "poll"
		c.pollInterval = 20 * time.Millisecond
	})
	full := readModel(t, "mlp", 2)
	path := filepath.Join(root, "m", "2", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, full[:len(full)/2], 0o644); err != nil { // not write-then-rename
		t.Fatal(err)
	}
	entry := func() repository.IndexEntry {
		for _, e := range index(t, c) {
			if e.Name == "m" {
				return e
			}
		}
		return repository.IndexEntry{}
	}
	waitFor(t, "the failed load of the half file", func() bool { return strings.Contains(entry().Reason, "version 2") })
	if e := entry(); e.Version != "1" || e.State != repository.StateReady {
		t.Errorf("while version 2 is half written: %+v, want version 1 serving", e)
	}
	body := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	if status, b := post(t, c, "/v2/models/m/infer", body); status != 200 || !strings.Contains(b, `"model_version":"1"`) {
		t.Errorf("%d %s", status, b)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(full[len(full)/2:])
	f.Close()
	waitFor(t, "version 2 once complete", func() bool {
		e := entry()
		return e.Version == "2" && e.State == repository.StateReady && e.Reason == ""
	})
	if status, b := post(t, c, "/v2/models/m/infer", body); status != 200 || !strings.Contains(b, `"model_version":"2"`) {
		t.Errorf("%d %s", status, b)
	}
}
