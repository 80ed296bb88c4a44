package load

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
)

// fastOptions are windows short enough for unit tests.
func fastOptions() Options {
	return Options{Window: 30 * time.Millisecond, StableWindows: 2, MaxWindows: 4, Stability: 0.5}
}

func TestRunFuncClosedLoop(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	seen := make([]atomic.Bool, 3)
	opts := fastOptions()
	opts.Concurrency = 3
	opts.Label = "fake"
	var progress bytes.Buffer
	opts.Progress = &lockedWriter{w: &progress}
	r, err := RunFunc(context.Background(), opts, func(_ context.Context, w int) (int, error) {
		calls.Add(1)
		seen[w].Store(true)
		time.Sleep(100 * time.Microsecond)
		return 200, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Label != "fake" || r.Mode != "closed" || r.Concurrency != 3 || r.Rows != 1 {
		t.Errorf("got label %q, mode %q, concurrency %d, rows %d; want fake, closed, 3, 1", r.Label, r.Mode, r.Concurrency, r.Rows)
	}
	if r.OK == 0 || r.OK != r.Requests || r.OK > calls.Load() || r.Failed() != 0 {
		t.Errorf("got %d ok of %d requests (%d calls, %d failed)", r.OK, r.Requests, calls.Load(), r.Failed())
	}
	if r.Windows < 1+opts.StableWindows || r.Windows > 1+opts.MaxWindows {
		t.Errorf("got %d windows, want %d to %d", r.Windows, 1+opts.StableWindows, 1+opts.MaxWindows)
	}
	if r.Latency.P50 < 100 || r.Throughput <= 0 || r.ItemsPerSec != r.Throughput {
		t.Errorf("got p50 %v µs, throughput %v, items %v", r.Latency.P50, r.Throughput, r.ItemsPerSec)
	}
	for w := range seen {
		if !seen[w].Load() {
			t.Errorf("worker %d never ran", w)
		}
	}
	if s := progress.String(); !strings.Contains(s, "fake") || !strings.Contains(s, "warming up") || !strings.HasSuffix(s, "\n") {
		t.Errorf("progress: got %q", s)
	}
}

// lockedWriter is written by the run's controller only; the lock keeps
// the race detector honest about the test reading it afterwards.
type lockedWriter struct{ w *bytes.Buffer }

func (l *lockedWriter) Write(p []byte) (int, error) { return l.w.Write(p) }

// TestOpenLoopCountsTheBacklog sends at 400 requests/s to a server that
// answers in 10 ms, one at a time: it can answer 100/s, so the requests
// queue up and their latency from the intended send time grows far past
// 10 ms. A closed loop, or an open loop that timed from the actual send,
// would report 10 ms: coordinated omission.
func TestOpenLoopCountsTheBacklog(t *testing.T) {
	t.Parallel()
	opts := fastOptions()
	opts.Window = 50 * time.Millisecond
	opts.Rate = 400
	opts.MaxInFlight = 1
	service := 10 * time.Millisecond
	r, err := RunFunc(context.Background(), opts, func(context.Context, int) (int, error) {
		time.Sleep(service)
		return 200, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "constant" || r.Rate != 400 || r.Concurrency != 0 {
		t.Errorf("got mode %q, rate %v, concurrency %d; want constant, 400, 0", r.Mode, r.Rate, r.Concurrency)
	}
	if r.Latency.Min < float64(service.Microseconds()) || r.Latency.Max < 4*float64(service.Microseconds()) {
		t.Errorf("got latencies %v to %v µs; want the backlog to push the max past %v", r.Latency.Min, r.Latency.Max, 4*service)
	}
	if r.Throughput > 110 {
		t.Errorf("got %v req/s from a server that answers 100/s", r.Throughput)
	}
}

func TestOpenLoopKeepsTheRate(t *testing.T) {
	t.Parallel()
	for _, poisson := range []bool{false, true} {
		t.Run(fmt.Sprint("poisson=", poisson), func(t *testing.T) {
			t.Parallel()
			opts := fastOptions()
			opts.Window = 100 * time.Millisecond
			opts.Rate = 2000
			opts.Poisson = poisson
			r, err := RunFunc(context.Background(), opts, func(context.Context, int) (int, error) { return 200, nil })
			if err != nil {
				t.Fatal(err)
			}
			// Loose bounds: the machine is shared and the windows short.
			if r.Throughput < 500 || r.Throughput > 4000 {
				t.Errorf("got %v req/s, want about 2000", r.Throughput)
			}
			if r.SendLag == nil || r.SendLag.Max <= 0 || r.SendLag.Max > r.Latency.Max {
				t.Errorf("got send lag %+v for latencies up to %v µs", r.SendLag, r.Latency.Max)
			}
		})
	}
}

func TestRunFuncCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	opts := fastOptions()
	opts.Window = time.Hour
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := RunFunc(ctx, opts, func(context.Context, int) (int, error) { return 200, nil })
	if err != context.Canceled {
		t.Errorf("got %v, want %v", err, context.Canceled)
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		opts Options
	}{
		{"negative rate", Options{Rate: -1}},
		{"fewer max windows than stable ones", Options{StableWindows: 5, MaxWindows: 2}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if _, err := RunFunc(context.Background(), tc.opts, nil); err == nil {
				t.Error("got no error")
			}
		})
	}
}

// kserveServer answers inference with a valid KServe v2 response, except
// that after the first request every fourth answer is 503 and every
// seventh 429.
func kserveServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		switch {
		case r.Method == http.MethodGet:
			fmt.Fprint(w, `{"name":"m","versions":["1"],"platform":"x","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1,1]}]}`)
		case r.URL.Path != "/v2/models/m/infer":
			w.WriteHeader(http.StatusNotFound)
		case i > 1 && i%4 == 0:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"busy"}`)
		case i > 1 && i%7 == 0:
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"slow down"}`)
		default:
			fmt.Fprint(w, `{"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[1,1],"data":[0.5]}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRunCountsNon2xxApart(t *testing.T) {
	t.Parallel()
	srv, _ := kserveServer(t)
	md := &client.ModelMetadata{Name: "m", Inputs: []client.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}}}
	p, err := RandomPayload(md, PayloadOptions{Rows: 2})
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.Concurrency = 4
	r, err := Run(context.Background(), Target{URL: srv.URL, Model: "m"}, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Non2xx["503"] == 0 || r.Non2xx["429"] == 0 || len(r.Non2xx) != 2 {
		t.Errorf("got non-2xx %v, want 503s and 429s", r.Non2xx)
	}
	if r.OK == 0 || r.OK+r.Failed() != r.Requests || r.Errors != 0 {
		t.Errorf("got %d ok + %d failed of %d requests, %d errors", r.OK, r.Failed(), r.Requests, r.Errors)
	}
	// Throughput counts the 2xx answers only, and each carries 2 rows.
	if want := float64(r.OK) / r.Seconds; r.Throughput < want*0.99 || r.Throughput > want*1.01 || r.ItemsPerSec != 2*r.Throughput {
		t.Errorf("got %v req/s and %v items/s from %d ok in %v s", r.Throughput, r.ItemsPerSec, r.OK, r.Seconds)
	}
	if r.URL != srv.URL || r.Model != "m" || r.Protocol != "json" || r.Rows != 2 {
		t.Errorf("got url %q, model %q, protocol %q, rows %d", r.URL, r.Model, r.Protocol, r.Rows)
	}
	if got := r.StatusSummary(); !strings.Contains(got, "503×") || !strings.Contains(got, "429×") {
		t.Errorf("status summary: got %q", got)
	}
}

func TestRunFailsFastOnABadTarget(t *testing.T) {
	t.Parallel()
	srv, _ := kserveServer(t)
	p := &Payload{Bodies: [][]byte{[]byte(`{"inputs":[]}`)}, HeaderLens: []int{-1}, Rows: 1}
	for _, tc := range []struct {
		desc   string
		target Target
		want   string
	}{
		{"unknown model", Target{URL: srv.URL, Model: "nope"}, "answers 404"},
		{"not a url", Target{URL: "ftp://x", Model: "m"}, "unsupported protocol"},
		{"nobody there", Target{URL: "http://127.0.0.1:1", Model: "m"}, "connection refused"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Run(context.Background(), tc.target, p, fastOptions())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestWriteJSONAndCSV(t *testing.T) {
	t.Parallel()
	results := []*Result{
		{Label: "a", Scenario: "s", Mode: "closed", Concurrency: 4, Rows: 1, Requests: 10, OK: 7, Non2xx: map[string]int64{"503": 2, "429": 1}, Throughput: 70.04, ItemsPerSec: 70.04, Latency: Latency{P50: 12.5, P99: 99}, Stable: true, Windows: 4},
		{Label: "b, with a comma", Mode: "poisson", Rate: 100, Rows: 8, OK: 5, Requests: 5, Throughput: 50, ItemsPerSec: 400},
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, results); err != nil {
		t.Fatal(err)
	}
	var back []*Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0].Non2xx["503"] != 2 || back[0].Latency.P99 != 99 || back[1].Rate != 100 {
		t.Errorf("json round trip: got %s", js.Bytes())
	}
	var c bytes.Buffer
	if err := WriteCSV(&c, results); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv: got %q", rows)
	}
	col := func(name string) int {
		for i, h := range CSVHeader {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %q", name)
		return -1
	}
	if got := rows[1][col("non_2xx")]; got != "503×2 429×1" {
		t.Errorf("non_2xx: got %q, want %q", got, "503×2 429×1")
	}
	if got := rows[1][col("throughput")]; got != "70" {
		t.Errorf("throughput: got %q, want 70", got)
	}
	if got := rows[2][col("label")]; got != "b, with a comma" {
		t.Errorf("label: got %q", got)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, results); err != nil {
		t.Fatal(err)
	}
	if s := table.String(); !strings.Contains(s, "poisson 100/s") || !strings.Contains(s, "3 (503×2 429×1)") {
		t.Errorf("table: got\n%s", s)
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, want string
	}{
		{SI(11600), "11.6k"}, {SI(950), "950"}, {SI(1.5e6), "1.50M"}, {SI(3.14159), "3.14"},
		{Micros(42.13), "42.1µs"}, {Micros(1234), "1.23ms"}, {Micros(2.5e6), "2.50s"}, {Micros(512), "512µs"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestOpenLoopRunsBesideThePacer: with one P (a generator pinned to one
// core), the pacer's locked thread held the P through its sleeps and the
// answers waited unread; an open loop runs with a second P, and gives
// the setting back afterwards. Not parallel: GOMAXPROCS is the process's.
func TestOpenLoopRunsBesideThePacer(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	opts := fastOptions()
	opts.Window = 20 * time.Millisecond
	opts.Rate = 500
	var seen atomic.Int64
	_, err := RunFunc(context.Background(), opts, func(context.Context, int) (int, error) {
		seen.Store(int64(runtime.GOMAXPROCS(0)))
		return 200, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := seen.Load(); got < 2 {
		t.Errorf("the open loop ran with GOMAXPROCS %d; want 2 or more", got)
	}
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("after the run GOMAXPROCS is %d; want the caller's 1", got)
	}
}
