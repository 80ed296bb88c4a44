package repository_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openRepo(t *testing.T, root string) *repository.Repository {
	t.Helper()
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(t)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Open(context.Background(), repository.Options{Root: root, Runtime: env})
	if err != nil {
		env.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		env.Close()
	})
	return r
}

func TestOpenTestModels(t *testing.T) {
	r := openRepo(t, runtimetest.Models(t))
	if r.Ready() {
		t.Error("repository with broken models reports ready")
	}
	tests := []struct {
		model    string
		versions []int64
		state    repository.State
		reason   string
		batched  bool
	}{
		{"mlp", []int64{1, 2}, repository.StateReady, "", true},
		{"identity_fp32", []int64{1}, repository.StateReady, "", true},
		{"no_batch", []int64{1}, repository.StateReady, "", false},
		{"scalar", []int64{1}, repository.StateReady, "", false},
		{"pinned", []int64{1}, repository.StateReady, "", true},
		{"corrupt", []int64{1}, repository.StateUnavailable, "read model", false},
		{"bad_operator", []int64{1}, repository.StateUnavailable, "NoSuchOperator", false},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			m, err := r.Model(tt.model)
			if err != nil {
				t.Fatal(err)
			}
			vs := m.Versions()
			if len(vs) != len(tt.versions) {
				t.Fatalf("got %d versions, want %v", len(vs), tt.versions)
			}
			for i, v := range vs {
				if v.Number != tt.versions[i] || v.State != tt.state || !strings.Contains(v.Reason, tt.reason) {
					t.Errorf("got version %d %s %q, want %d %s containing %q", v.Number, v.State, v.Reason, tt.versions[i], tt.state, tt.reason)
				}
				if v.State == repository.StateReady && v.Batched != tt.batched {
					t.Errorf("got batched %v, want %v", v.Batched, tt.batched)
				}
			}
		})
	}
	t.Run("pinned shape", func(t *testing.T) {
		m, _ := r.Model("pinned")
		v, err := m.Version(0)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Inputs[0].Shape; len(got) != 2 || got[0] != -1 || got[1] != 4 || v.MaxBatchSize != 8 {
			t.Errorf("got shape %v max batch %d, want [-1 4] and 8", got, v.MaxBatchSize)
		}
	})
	t.Run("lookups", func(t *testing.T) {
		lookups := []struct {
			name    string
			model   string
			version int64
			kind    errdefs.Kind
			msg     string
		}{
			{"unknown model", "nope", 0, errdefs.NotFound, `unknown model "nope"`},
			{"unknown version", "mlp", 3, errdefs.NotFound, `model "mlp" has no version 3`},
			{"default version", "mlp", 0, errdefs.Internal, ""},
			{"broken default", "corrupt", 0, errdefs.Unavailable, `model "corrupt" is not ready: read model`},
			{"broken version", "bad_operator", 1, errdefs.Unavailable, `model "bad_operator" version 1 is not ready`},
		}
		for _, l := range lookups {
			t.Run(l.name, func(t *testing.T) {
				m, err := r.Model(l.model)
				var v *repository.Version
				if err == nil {
					v, err = m.Version(l.version)
				}
				if l.msg == "" {
					if err != nil || v.Number != 2 {
						t.Fatalf("got %v, %v; want version 2", v, err)
					}
					return
				}
				re, ok := err.(*errdefs.Error)
				if !ok || re.Kind != l.kind || !strings.Contains(re.Msg, l.msg) {
					t.Fatalf("got %v, want %v %q", err, l.kind, l.msg)
				}
			})
		}
	})
}

func copyModel(t *testing.T, dst, model string) {
	t.Helper()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), model), dst)
}

// TestPathsStayInside builds a repository with entries that must be skipped
// or refused: bad names, non-numeric versions, symlinks out of the root.
func TestPathsStayInside(t *testing.T) {
	outside := t.TempDir()
	copyModel(t, filepath.Join(outside, "secret"), "mlp")
	root := t.TempDir()
	copyModel(t, filepath.Join(root, "good"), "identity_fp32")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")))
	copyModel(t, filepath.Join(root, "linkedfile"), "identity_fp32")
	must(os.Remove(filepath.Join(root, "linkedfile", "1", "model.onnx")))
	must(os.Symlink(filepath.Join(outside, "secret", "1", "model.onnx"), filepath.Join(root, "linkedfile", "1", "model.onnx")))
	copyModel(t, filepath.Join(root, "inner"), "identity_fp32")
	must(os.Symlink(filepath.Join(root, "inner"), filepath.Join(root, "alias"))) // inside: allowed
	must(os.MkdirAll(filepath.Join(root, "bad name!", "1"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "good", "v2"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "good", "0"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "good", "007"), 0o755))
	must(os.WriteFile(filepath.Join(root, "README.md"), []byte("not a model"), 0o644))

	r := openRepo(t, root)
	var names []string
	for _, m := range r.Models() {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "alias,good,inner,linkedfile" {
		t.Errorf("got models %s, want alias,good,inner,linkedfile", got)
	}
	m, _ := r.Model("good")
	if vs := m.Versions(); len(vs) != 1 || vs[0].Number != 1 || vs[0].State != repository.StateReady {
		t.Errorf("good: got versions %+v, want only a ready 1", vs)
	}
	m, _ = r.Model("linkedfile")
	if vs := m.Versions(); len(vs) != 1 || vs[0].State != repository.StateUnavailable || !strings.Contains(vs[0].Reason, "points outside the model repository") {
		t.Errorf("linkedfile: got %+v, want unavailable, outside the repository", vs[0])
	}
}

// TestExecutorConfig loads models whose config asks for dynamic batching,
// a response cache or coalescing, with and without what they need.
func TestExecutorConfig(t *testing.T) {
	root := t.TempDir()
	write := func(model, src, config string) {
		copyModel(t, filepath.Join(root, model), src)
		if err := os.WriteFile(filepath.Join(root, model, "config.yaml"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("batched", "identity_fp32", "max_batch_size: 8\ndynamic_batching: {}\nrequest_coalescing: {enable: true}\n")
	write("unbatchable", "no_batch", "dynamic_batching: {}\n")
	write("inferred_unbounded", "identity_fp32", "dynamic_batching: {}\n")
	write("cached", "identity_fp32", "response_cache: {enable: true}\n")
	r := openRepo(t, root)
	tests := []struct {
		model  string
		reason string
	}{
		{"batched", ""},
		{"unbatchable", "dynamic_batching needs max_batch_size > 0"},
		{"inferred_unbounded", "dynamic_batching needs max_batch_size > 0"},
		{"cached", "response_cache is enabled, but the gateway has no response cache"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			m, err := r.Model(tt.model)
			if err != nil {
				t.Fatal(err)
			}
			v := m.Versions()[0]
			if tt.reason == "" {
				if v.State != repository.StateReady || !v.Executor.Batching() {
					t.Fatalf("got %s %q, batching %v", v.State, v.Reason, v.Executor != nil && v.Executor.Batching())
				}
				return
			}
			if v.State != repository.StateUnavailable || !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("got %s %q, want unavailable: %q", v.State, v.Reason, tt.reason)
			}
		})
	}
}

// TestSwapDrainsHeldVersion holds a reference on a version while a reload
// replaces it: the old version keeps working until released, new requests
// get the new version, and the old one closes after its release.
func TestSwapDrainsHeldVersion(t *testing.T) {
	root := t.TempDir()
	copyModel(t, filepath.Join(root, "m"), "mlp")
	r := openRepo(t, root)
	ctx := context.Background()
	old, err := r.Acquire(ctx, "m", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	// A new file for version 1 (same bytes, new stamp): the reload swaps it.
	path := filepath.Join(root, "m", "1", "model.onnx")
	b, _ := os.ReadFile(path)
	os.WriteFile(path+".tmp", b, 0o644)
	future := time.Now().Add(time.Minute)
	os.Chtimes(path+".tmp", future, future)
	os.Rename(path+".tmp", path)
	if err := r.LoadModel(ctx, "m", repository.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	in := []runtime.Tensor{{Name: "input", DataType: runtime.FP32, Shape: []int64{1, 16}, Data: make([]byte, 64)}}
	// Give a (wrong) immediate close the time to happen: only the held
	// reference may keep the old session open now.
	time.Sleep(100 * time.Millisecond)
	if _, err := old.Session.Run(ctx, in); err != nil {
		t.Fatalf("the held version stopped working during the swap: %v", err)
	}
	fresh, err := r.Acquire(ctx, "m", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old {
		t.Fatal("a new request got the version being swapped out")
	}
	fresh.Release()
	old.Release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := old.Session.Run(ctx, in)
		if errors.Is(err, runtime.ErrClosed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the released old version was never closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rssKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// TestLoadUnloadMemory loads and unloads a model 50 times and logs the
// process RSS before and after (a figure, not an assertion: ONNX Runtime
// keeps allocator arenas, see onnxruntime_go issue 113).
func TestLoadUnloadMemory(t *testing.T) {
	root := t.TempDir()
	model := "mlp"
	if src := filepath.Join(runtimetest.Root(t), ".cache", "models", "ppocr_cls"); dirExists(src) {
		model = "ppocr_cls"
		runtimetest.CopyDir(t, src, filepath.Join(root, model))
	} else {
		copyModel(t, filepath.Join(root, model), "mlp")
	}
	r := openRepo(t, root)
	ctx := context.Background()
	cycle := func() {
		if err := r.UnloadModel(ctx, model); err != nil {
			t.Fatal(err)
		}
		if err := r.LoadModel(ctx, model, repository.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // warm up allocators
		cycle()
	}
	goruntime.GC()
	before := rssKiB(t)
	for range 50 {
		cycle()
	}
	goruntime.GC()
	after := rssKiB(t)
	t.Logf("%s: RSS %d KiB before 50 load/unload cycles, %d KiB after (%+d KiB, %+.1f KiB a cycle)", model, before, after, after-before, float64(after-before)/50)
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

type recorder struct {
	mu     sync.Mutex
	events []string
	res    int
}

func (o *recorder) Loaded(m string, v int64, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf("load %s/%d ok=%v", m, v, err == nil))
}

func (o *recorder) Unloaded(m string, v int64, why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, fmt.Sprintf("unload %s/%d %s", m, v, why))
}

func (o *recorder) Attach(repository.VersionInfo) (repository.VersionObserver, error) {
	return nil, nil
}

func (o *recorder) Resident(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.res = n
}

// TestObserverCounts checks the lifecycle events the monitoring package
// counts: loads with their outcome, unloads with their reason, the
// resident count.
func TestObserverCounts(t *testing.T) {
	root := t.TempDir()
	copyModel(t, filepath.Join(root, "a"), "identity_fp32")
	copyModel(t, filepath.Join(root, "b"), "identity_fp32")
	copyModel(t, filepath.Join(root, "bad"), "corrupt")
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	obs := &recorder{}
	r, err := repository.Open(context.Background(), repository.Options{Root: root, Runtime: env, Observer: obs, MaxResidentVersions: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := r.Acquire(ctx, "a", 0, "") // evicted at start: loads on demand, evicts b
	if err != nil {
		t.Fatal(err)
	}
	v.Release()
	if err := r.UnloadModel(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	want := []string{
		"load a/1 ok=true", "load b/1 ok=true", "unload a/1 evicted", "load bad/1 ok=false",
		"load a/1 ok=true", "unload b/1 evicted", "unload a/1 unload",
		"unload b/1 unload", // the evicted version, unloaded at Close
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// Unloads run when their requests are done, on their own goroutines:
	// compare without order.
	got := slices.Sorted(slices.Values(obs.events))
	slices.Sort(want)
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
	if obs.res != 0 {
		t.Errorf("resident after close: %d", obs.res)
	}
}

func TestLifecycleEdges(t *testing.T) {
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()

	t.Run("loaded on demand, held before any eviction", func(t *testing.T) {
		root := t.TempDir()
		copyModel(t, filepath.Join(root, "a"), "identity_fp32")
		copyModel(t, filepath.Join(root, "b"), "identity_fp32")
		r, err := repository.Open(ctx, repository.Options{Root: root, Runtime: env, MaxResidentVersions: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for i := range 20 {
			name := []string{"a", "b"}[i%2]
			v, err := r.Acquire(ctx, name, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if v.Session == nil || v.Executor == nil {
				t.Fatalf("%s: got a version that is not loaded", name)
			}
			v.Release()
		}
	})

	t.Run("on-demand loads are bounded per minute", func(t *testing.T) {
		// Issue 11, defect 5: a client alternating versions past
		// max_resident_versions must not drive loads without bound.
		root := t.TempDir()
		copyModel(t, filepath.Join(root, "a"), "identity_fp32")
		copyModel(t, filepath.Join(root, "b"), "identity_fp32")
		r, err := repository.Open(ctx, repository.Options{Root: root, Runtime: env, MaxResidentVersions: 1, MaxOnDemandLoadsPerMinute: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var refused error
		loads := 0
		for i := range 6 {
			v, err := r.Acquire(ctx, []string{"a", "b"}[i%2], 0, "")
			if err != nil {
				refused = err
				break
			}
			loads++
			v.Release()
		}
		// After Open only b is resident: a and b load on demand, then the
		// third load in the minute is refused.
		var re *errdefs.Error
		if loads != 2 || !errors.As(refused, &re) || re.Kind != errdefs.Overloaded ||
			!strings.Contains(re.Msg, "max_on_demand_loads_per_minute") || re.RetryAfter <= 0 || re.RetryAfter > time.Minute {
			t.Fatalf("served %d requests, then %v; want 2, then a 503 naming the limit, with a Retry-After within the minute", loads, refused)
		}
	})

	t.Run("no lifecycle call after Close", func(t *testing.T) {
		root := t.TempDir()
		copyModel(t, filepath.Join(root, "a"), "identity_fp32")
		r, err := repository.Open(ctx, repository.Options{Root: root, Runtime: env})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		r.Close() // twice is fine
		err = r.LoadModel(ctx, "a", repository.LoadOptions{})
		if errdefs.KindOf(err) != errdefs.Unavailable {
			t.Errorf("load after close: got %v, want unavailable", err)
		}
	})

	t.Run("the load API retries failed versions", func(t *testing.T) {
		root := t.TempDir()
		copyModel(t, filepath.Join(root, "a"), "identity_fp32")
		os.WriteFile(filepath.Join(root, "a", "config.yaml"), []byte("response_cache: {enable: true}\n"), 0o644)
		obs := &recorder{}
		r, err := repository.Open(ctx, repository.Options{Root: root, Runtime: env, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for range 2 {
			if err := r.LoadModel(ctx, "a", repository.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "response_cache") {
				t.Errorf("got %v, want the load's failure", err)
			}
		}
		obs.mu.Lock()
		defer obs.mu.Unlock()
		if len(obs.events) != 3 {
			t.Errorf("got %d load attempts (%v), want 3: at open and at each API load", len(obs.events), obs.events)
		}
	})

	t.Run("a failed API config is not replaced by the poller", func(t *testing.T) {
		root := t.TempDir()
		copyModel(t, filepath.Join(root, "a"), "identity_fp32")
		r, err := repository.Open(ctx, repository.Options{Root: root, Runtime: env, PollInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.UnloadModel(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		bad, err := repository.ParseConfigJSON([]byte(`{"version_labels":{"x":9}}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.LoadModel(ctx, "a", repository.LoadOptions{Config: bad}); err == nil {
			t.Fatal("want the label error")
		}
		time.Sleep(50 * time.Millisecond) // ten polls
		m, _ := r.Model("a")
		if _, err := m.Version(0); err == nil {
			t.Errorf("the poller loaded the model from disk after the API's config failed")
		}
	})

	t.Run("the poller leaves a load's files alone; unload and Close remove them", func(t *testing.T) {
		root, overrides := t.TempDir(), t.TempDir()
		copyModel(t, filepath.Join(root, "a"), "identity_fp32")
		r, err := repository.Open(ctx, repository.Options{Root: root, Runtime: env, PollInterval: 5 * time.Millisecond, OverrideDir: overrides})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		file, err := os.ReadFile(filepath.Join(root, "a", "1", repository.ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := repository.ParseConfigJSON([]byte(`{"backend": "onnxruntime"}`))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{"4/model.onnx": file}
		for _, name := range []string{"a", "elsewhere"} { // in the repository, and not
			if err := r.LoadModel(ctx, name, repository.LoadOptions{Config: cfg, Files: files}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond) // ten polls
		for _, name := range []string{"a", "elsewhere"} {
			m, err := r.Model(name)
			if err != nil {
				t.Fatalf("%s after polls: %v", name, err)
			}
			if v, err := m.Version(0); err != nil || v.Number != 4 {
				t.Errorf("%s after polls: %v, want version 4 of the files", name, err)
			}
		}
		count := func() int {
			entries, _ := os.ReadDir(overrides)
			return len(entries)
		}
		if n := count(); n != 2 {
			t.Fatalf("%d override directories, want 2", n)
		}
		if err := r.UnloadModel(ctx, "elsewhere"); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 1 {
			t.Errorf("after an unload, %d override directories, want 1", n)
		}
		r.Close()
		if n := count(); n != 0 {
			t.Errorf("after Close, %d override directories, want 0", n)
		}
	})
}
