package router_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openRepo serves mlp (versions 1 and 2) with the given routing section
// in its config.yaml ("" none).
func openRepo(tb testing.TB, routing string) *repository.Repository {
	tb.Helper()
	root := tb.TempDir()
	runtimetest.CopyDir(tb, filepath.Join(runtimetest.Models(tb), "mlp"), filepath.Join(root, "mlp"))
	cfg := "version_policy: {all: {}}\nversion_labels: {stable: 1}\n" + routing
	if err := os.WriteFile(filepath.Join(root, "mlp", "config.yaml"), []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { env.Close() })
	r, err := repository.Open(context.Background(), repository.Options{Root: root, Runtime: env})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// headerMap is a request's headers (and cookies, under "cookie:NAME").
type headerMap map[string][]byte

// Peek looks the name up case-insensitively without allocating, as
// fasthttp's does.
func (h headerMap) Peek(name string) []byte {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
func (h headerMap) Cookie(name string) []byte { return h["cookie:"+name] }

func headers(kv ...string) headerMap {
	h := headerMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[strings.ToLower(kv[i])] = []byte(kv[i+1])
	}
	return h
}

// route decides and runs the hold-and-release cycle of one request.
func route(tb testing.TB, rt *router.Router, req router.Request) (int64, string) {
	tb.Helper()
	d, err := rt.Route(&req)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := d.Acquire(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Done(nil)
	return v.Number, d.Reason
}

// TestResolutionOrder: the URL's version or label, then a header
// override, then the document, then the default.
func TestResolutionOrder(t *testing.T) {
	repo := openRepo(t, "routing:\n  split: [{version: 1, weight: 1}]\n")
	rt := router.New(repo, router.Options{})
	defer rt.Close()
	tests := []struct {
		name        string
		req         router.Request
		wantVersion int64
		wantReason  string
	}{
		{"url version", router.Request{Version: 2, Headers: headers("x-model-version", "1")}, 2, router.ReasonURL},
		{"url label", router.Request{Label: "stable"}, 1, router.ReasonURL},
		{"header version", router.Request{Headers: headers("x-model-version", "2")}, 2, router.ReasonHeader},
		{"header label", router.Request{Headers: headers("x-model-label", "stable")}, 1, router.ReasonHeader},
		{"split", router.Request{}, 1, router.ReasonSplit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Model = "mlp"
			n, reason := route(t, rt, tt.req)
			if n != tt.wantVersion || reason != tt.wantReason {
				t.Errorf("got version %d (%s), want %d (%s)", n, reason, tt.wantVersion, tt.wantReason)
			}
		})
	}
	// Without a document: the default, the highest ready version.
	plain := router.New(openRepo(t, ""), router.Options{})
	defer plain.Close()
	if n, reason := route(t, plain, router.Request{Model: "mlp"}); n != 2 || reason != router.ReasonDefault {
		t.Errorf("no document: got version %d (%s), want 2 (default)", n, reason)
	}
	// overrides: false ignores the headers.
	noOverride := router.New(openRepo(t, "routing:\n  split: [{version: 1, weight: 1}]\n  overrides: false\n"), router.Options{})
	defer noOverride.Close()
	if n, reason := route(t, noOverride, router.Request{Model: "mlp", Headers: headers("x-model-version", "2")}); n != 1 || reason != router.ReasonSplit {
		t.Errorf("overrides false: got version %d (%s), want 1 (split)", n, reason)
	}
	// A malformed override is the client's error.
	if _, err := rt.Route(&router.Request{Model: "mlp", Headers: headers("x-model-version", "two")}); !errors.Is(err, router.ErrInvalidRequest) {
		t.Errorf("bad header: got %v, want ErrInvalidRequest", err)
	}
}

// TestSplitAndSticky: 100k random decisions follow the weights within a
// point; a key always lands on the same version; another salt assigns
// independently.
func TestSplitAndSticky(t *testing.T) {
	repo := openRepo(t, "")
	rt := router.New(repo, router.Options{})
	defer rt.Close()
	set := func(doc string) { setDoc(t, rt, doc) }
	set(`{"split": [{"label": "stable", "weight": 90}, {"version": 2, "weight": 10}]}`)
	const n = 100_000
	v2 := 0
	for range n {
		d, err := rt.Route(&router.Request{Model: "mlp"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Version.Number == 2 {
			v2++
		}
	}
	if share := float64(v2) / n; share < 0.09 || share > 0.11 {
		t.Errorf("got %.4f of requests on version 2, want 0.10 ± 0.01", share)
	}

	set(`{"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "sticky": {"header": "x-user-id", "salt": "a"}}`)
	assign := func() map[string]int64 {
		out := map[string]int64{}
		for i := range 2000 {
			key := fmt.Sprintf("user-%d", i)
			d, err := rt.Route(&router.Request{Model: "mlp", Headers: headers("x-user-id", key)})
			if err != nil {
				t.Fatal(err)
			}
			if d.Reason != router.ReasonSticky {
				t.Fatalf("got reason %s, want sticky", d.Reason)
			}
			out[key] = d.Version.Number
		}
		return out
	}
	first, again := assign(), assign()
	for k, v := range first {
		if again[k] != v {
			t.Fatalf("key %s moved from version %d to %d", k, v, again[k])
		}
	}
	set(`{"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "sticky": {"header": "x-user-id", "salt": "b"}}`)
	other := assign()
	same := 0
	for k, v := range first {
		if other[k] == v {
			same++
		}
	}
	if share := float64(same) / float64(len(first)); share < 0.45 || share > 0.55 {
		t.Errorf("another salt keeps %.3f of the keys on their version, want about 0.5 (independent)", share)
	}
}

// TestDocumentErrors: an invalid document is refused with the field path,
// and nothing changes.
func TestDocumentErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", `{"splt": []}`, `unknown field "splt"`},
		{"no weight", `{"split": [{"version": 1}]}`, "split[0].weight: must be positive, got 0"},
		{"both version and label", `{"split": [{"version": 1, "label": "a", "weight": 1}]}`, "split[0]: give one of version or label"},
		{"bad label", `{"split": [{"label": "a b", "weight": 1}]}`, `split[0].label: "a b" is not a label`},
		{"sticky both", `{"sticky": {"header": "h", "cookie": "c"}}`, "sticky: give one of header or cookie"},
		{"fallback without breaker", `{"fallback": {"label": "stable"}}`, "fallback: needs a breaker"},
		{"breaker ratio", `{"breaker": {"failure_ratio": 2}}`, "breaker.failure_ratio: must be in [0, 1], got 2"},
		{"split and rollout", `{"split": [{"version": 1, "weight": 1}], "rollout": {"stable": {"version": 1}, "canary": {"version": 2}}}`, "rollout: a document has split or rollout, never both"},
		{"shadow percent", `{"shadow": {"version": 2, "percent": 0}}`, "shadow.percent: must be in (0, 100], got 0"},
		{"trailing data", `{} {}`, "data after the document"},
		{"rollout steps", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [10, 5]}}`, "rollout.steps[1]: steps are increasing weights in (0, 100]"},
		{"rollout confidence", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "confidence": 0.3}}`, "rollout.confidence: must be in [0.5, 1), got 0.3"},
		{"rollout same target", `{"rollout": {"stable": {"label": "stable"}, "canary": {"label": "stable"}}}`, "rollout.canary: is the stable target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := router.ParseJSON([]byte(tt.doc))
			if err == nil || !errors.Is(err, router.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// TestSetPersists: with Persist a document goes to routing.yaml, which
// a second router over the same repository (another replica) reads; a
// DELETE removes it.
func TestSetPersists(t *testing.T) {
	repo := openRepo(t, "")
	rt := router.New(repo, router.Options{Persist: true})
	defer rt.Close()
	doc, err := router.ParseJSON([]byte(`{"split": [{"version": 1, "weight": 1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rt.Set("mlp", doc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Persisted || got.Source != router.File {
		t.Fatalf("got %+v, want persisted to routing.yaml", got)
	}
	replica := router.New(repo, router.Options{})
	defer replica.Close()
	if n, reason := route(t, replica, router.Request{Model: "mlp"}); n != 1 || reason != router.ReasonSplit {
		t.Errorf("replica: got version %d (%s), want 1 (split) from routing.yaml", n, reason)
	}
	if _, err := rt.Delete("mlp"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo.Root(), "mlp", router.File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("routing.yaml still there after DELETE: %v", err)
	}
	if n, reason := route(t, rt, router.Request{Model: "mlp"}); n != 2 || reason != router.ReasonDefault {
		t.Errorf("after DELETE: got version %d (%s), want 2 (default)", n, reason)
	}
	// In memory only: the answer says why.
	mem := router.New(repo, router.Options{})
	defer mem.Close()
	got, err = mem.Set("mlp", doc)
	if err != nil || got.Persisted || got.Source != "api" || got.Reason == "" {
		t.Errorf("in memory: got %+v %v, want not persisted with a reason", got, err)
	}
}

// BenchmarkRoute is the router's cost of a request: decide, hold,
// release; with no document, and with a split and a sticky key.
func BenchmarkRoute(b *testing.B) {
	b.Run("baseline-repository", func(b *testing.B) {
		// What the gateway did before the router: look up, hold, release.
		repo := openRepo(b, "")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			m, err := repo.Model("mlp")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Lookup(0, ""); err != nil {
				b.Fatal(err)
			}
			v, err := repo.Acquire(ctx, "mlp", 0, "")
			if err != nil {
				b.Fatal(err)
			}
			v.Release()
		}
	})
	for _, tc := range []struct {
		name, routing string
		header        router.Headers
	}{
		{"no-policy", "", nil},
		{"split+sticky", "routing:\n  split: [{version: 1, weight: 90}, {version: 2, weight: 10}]\n  sticky: {header: x-user-id, salt: exp}\n", headers("x-user-id", "user-12345678")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rt := router.New(openRepo(b, tc.routing), router.Options{})
			defer rt.Close()
			req := router.Request{Model: "mlp", Headers: tc.header}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				d, err := rt.Route(&req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Acquire(ctx); err != nil {
					b.Fatal(err)
				}
				d.Done(nil)
			}
		})
	}
}

// waitPhase polls a model's rollout until it is in phase.
func waitPhase(t *testing.T, rt *router.Router, phase string) *router.RolloutStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := rt.RolloutStatus("mlp")
		if err == nil && st.Phase == phase {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not %s: %+v %v", phase, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRolloutControls: pause, resume and abort a running rollout; an
// abort rolls back, rewrites the document to stable's split and keeps the
// outcome in its status. Without traffic, a progress deadline rolls back.
// Each decision is one audit entry: the operator's, then the
// controller's own.
func TestRolloutControls(t *testing.T) {
	repo := openRepo(t, "")
	trail, _ := audit.Open(audit.Options{})
	rt := router.New(repo, router.Options{Audit: trail})
	defer rt.Close()
	set := func(doc string) { setDoc(t, rt, doc) }
	set(`{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [20, 100], "interval_seconds": 3600}}`)
	if st := waitPhase(t, rt, router.PhaseProgressing); st.Weight != 20 {
		t.Errorf("got weight %v at the first step, want 20", st.Weight)
	}
	for _, step := range []struct{ action, phase string }{{"pause", router.PhasePaused}, {"resume", router.PhaseProgressing}} {
		if _, err := rt.Control("mlp", step.action, "test"); err != nil {
			t.Fatal(err)
		}
		waitPhase(t, rt, step.phase)
	}
	if _, err := rt.Control("mlp", "abort", "test"); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, rt, router.PhaseRolledBack)
	if st.Weight != 0 || st.Reason != "aborted by an operator" {
		t.Errorf("after abort: %+v", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := rt.Get("mlp")
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Routing; d != nil && d.Rollout == nil && len(d.Split) == 1 && d.Split[0].Version == 1 && d.Status != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("document after abort: %+v", got.Routing)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := rt.Control("mlp", "abort", "test"); !errors.Is(err, router.ErrNoRollout) {
		t.Errorf("control after the end: got %v, want ErrNoRollout", err)
	}

	set(`{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "interval_seconds": 0.05, "progress_deadline_seconds": 0.2}}`)
	if st := waitPhase(t, rt, router.PhaseRolledBack); !strings.Contains(st.Reason, "progress_deadline_seconds") {
		t.Errorf("got reason %q, want the progress deadline", st.Reason)
	}
	entries, _ := trail.Query(audit.Query{Model: "mlp"})
	var got []string
	for _, e := range entries {
		if e.Action != "rollout.hold" { // one an interval without traffic: as many as the timing makes
			got = append(got, e.Actor+" "+e.Action)
		}
	}
	want := []string{"test rollout.pause", "test rollout.resume", "test rollout.abort", router.AuditActor + " rollout.rollback"}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail %q, want %q", got, want)
	}
	if e := entries[2]; string(e.Before) != `{"phase":"progressing","step":0,"weight":20}` || string(e.After) != `{"phase":"rolled_back","step":0,"weight":0}` || e.Reason != "aborted by an operator" {
		t.Errorf("abort entry %+v", e)
	}
}

// TestReplicasPoll: a second router over the same repository (another
// replica) picks up a document the first one persisted.
func TestReplicasPoll(t *testing.T) {
	repo := openRepo(t, "")
	primary := router.New(repo, router.Options{Persist: true})
	defer primary.Close()
	replica := router.New(repo, router.Options{PollInterval: 10 * time.Millisecond})
	defer replica.Close()
	if n, _ := route(t, replica, router.Request{Model: "mlp"}); n != 2 {
		t.Fatalf("before: got version %d, want the default 2", n)
	}
	doc, _ := router.ParseJSON([]byte(`{"split": [{"version": 1, "weight": 1}]}`))
	if _, err := primary.Set("mlp", doc); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, reason := route(t, replica, router.Request{Model: "mlp"}); n == 1 && reason == router.ReasonSplit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never picked up routing.yaml")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExecutionFailures: only the model's own failures count against a
// breaker; load and the client's errors do not.
func TestExecutionFailures(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"success", nil, false},
		{"queue full", errdefs.New(errdefs.Overloaded, "queue is full"), false},
		{"queue timeout", fmt.Errorf("model m: %w", errdefs.New(errdefs.Timeout, "timed out")), false},
		{"not ready", errdefs.New(errdefs.Unavailable, "model m is not ready"), false},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"invalid input", fmt.Errorf("input x: %w", runtime.ErrInvalidInput), false},
		{"unloading", runtime.ErrClosed, false},
		{"onnx runtime error", errors.New("Error running network: Non-zero status code"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := router.IsExecutionFailure(tt.err); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// setDoc sets mlp's routing document.
func setDoc(t *testing.T, rt *router.Router, doc string) {
	t.Helper()
	d, err := router.ParseJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Set("mlp", d); err != nil {
		t.Fatal(err)
	}
}
