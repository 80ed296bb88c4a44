package monitoring

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergate/infergate/monitoring/drift"

	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

// hookVersion attaches a 256 -> 10 version, with or without drift on its
// input and output.
func hookVersion(tb testing.TB, m *Monitor, withDrift bool) (repository.VersionObserver, *repository.Version, []runtime.Tensor, []runtime.Tensor) {
	tb.Helper()
	info := repository.VersionInfo{
		Model: "mlp", Version: 1, Batched: true, QueueCapacity: 1024,
		Inputs:  []runtime.TensorInfo{{Name: "input", DataType: runtime.FP32, Shape: []int64{-1, 256}}},
		Outputs: []runtime.TensorInfo{{Name: "output", DataType: runtime.FP32, Shape: []int64{-1, 10}}},
	}
	if withDrift {
		info.Drift = &repository.DriftConfig{Inputs: []string{"input"}, Reference: repository.DriftReference{First: 100}}
	}
	obs, err := m.Attach(info)
	if err != nil {
		tb.Fatal(err)
	}
	in := runtime.Tensor{Name: "input", DataType: runtime.FP32, Shape: []int64{1, 256}, Data: make([]byte, 256*4)}
	out := runtime.Tensor{Name: "output", DataType: runtime.FP32, Shape: []int64{1, 10}, Data: make([]byte, 10*4)}
	for i := range 256 {
		binary.LittleEndian.PutUint32(in.Data[i*4:], math.Float32bits(float32(i%7)/7))
	}
	return obs, &repository.Version{Model: "mlp", Number: 1, Observer: obs}, []runtime.Tensor{in}, []runtime.Tensor{out}
}

// oneRequest makes the hook calls of one request through the dynamic
// batcher, as the gateway, executor and scheduler make them.
func oneRequest(m *Monitor, obs repository.VersionObserver, v *repository.Version, in, out []runtime.Tensor) {
	obs.Inflight(1)
	obs.QueueDepth(1)
	obs.QueueDepth(0)
	obs.Dispatched(20 * time.Microsecond)
	obs.BatchDone(1, 1, 80*time.Microsecond, nil)
	obs.Served(in, out)
	obs.Inflight(-1)
	m.ObserveRequest("mlp", v, "http", 200, 150*time.Microsecond, 1400, 120)
}

// BenchmarkRequestHooks is the per-request cost of monitoring: every hook
// one request through the batcher calls, with metrics only and with drift
// too (100 % sampling: the copy into the drift queue), beside the bare
// loop.
func BenchmarkRequestHooks(b *testing.B) {
	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
		}
	})
	for _, tc := range []struct {
		name  string
		drift bool
	}{{"metrics", false}, {"metrics+drift", true}} {
		b.Run(tc.name, func(b *testing.B) {
			m := New(Options{})
			obs, v, in, out := hookVersion(b, m, false)
			defer obs.Close(false)
			var t *tracker
			if tc.drift {
				// A tracker without its worker: the loop takes each
				// sample off the queue itself, so that every request
				// pays the copy (with the worker, a loop this tight
				// fills the queue and measures the drop path).
				var err error
				t, err = newWatch(repository.VersionInfo{
					Model: "mlp", Version: 1, Batched: true,
					Inputs:  []runtime.TensorInfo{{Name: "input", DataType: runtime.FP32, Shape: []int64{-1, 256}}},
					Outputs: []runtime.TensorInfo{{Name: "output", DataType: runtime.FP32, Shape: []int64{-1, 10}}},
					Drift:   &repository.DriftConfig{Inputs: []string{"input"}},
				}, 1)
				if err != nil {
					b.Fatal(err)
				}
				t.dropped = m.driftDropped.WithLabelValues("mlp", "1")
				obs.(*versionMetrics).drift = t
				defer func() { obs.(*versionMetrics).drift = nil }()
			}
			b.ReportAllocs()
			for b.Loop() {
				oneRequest(m, obs, v, in, out)
				if t != nil {
					t.pool.Put(<-t.queue)
				}
			}
		})
	}
}

// TestHooksDoNotAllocate: the metrics hooks of a request cost no
// allocation (the drift copy reuses pooled buffers, so it is measured by
// the benchmark, not held to zero here: a pool may be emptied by a GC).
func TestHooksDoNotAllocate(t *testing.T) {
	m := New(Options{})
	obs, v, in, out := hookVersion(t, m, false)
	defer obs.Close(false)
	oneRequest(m, obs, v, in, out) // creates the status counter
	if n := testing.AllocsPerRun(1000, func() { oneRequest(m, obs, v, in, out) }); n != 0 {
		t.Errorf("got %v allocations a request, want 0", n)
	}
}

// BenchmarkDriftWorker is the drift worker's cost of one row of the
// 256 -> 10 version (input, output and predicted class): binning it, and
// the evaluations it triggers, at every tenth of a window and at most
// every DefaultEvaluateEvery (here about never: the loop is too short).
func BenchmarkDriftWorker(b *testing.B) {
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{{"evaluate-every-chunk", -1}, {"evaluate-throttled", DefaultEvaluateEvery}} {
		b.Run(tc.name, func(b *testing.B) {
			info := repository.VersionInfo{
				Model: "mlp", Version: 1, Batched: true,
				Inputs:  []runtime.TensorInfo{{Name: "input", DataType: runtime.FP32, Shape: []int64{-1, 256}}},
				Outputs: []runtime.TensorInfo{{Name: "output", DataType: runtime.FP32, Shape: []int64{-1, 10}}},
				Drift:   &repository.DriftConfig{Inputs: []string{"input"}, Reference: repository.DriftReference{First: 1000}},
			}
			t, err := newWatch(info, 1)
			if err != nil {
				b.Fatal(err)
			}
			t.evalMin = tc.every
			for range t.specs {
				g := func() prometheus.Gauge { return prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}) }
				t.gauges = append(t.gauges, tensorGauges{g(), g(), g(), g(), g(), g()})
			}
			t.builder = drift.NewBuilder(t.specs, 1000)
			rng := rand.New(rand.NewPCG(1, 2))
			row := func() *sample {
				in := runtime.Tensor{Name: "input", DataType: runtime.FP32, Shape: []int64{1, 256}, Data: make([]byte, 256*4)}
				out := runtime.Tensor{Name: "output", DataType: runtime.FP32, Shape: []int64{1, 10}, Data: make([]byte, 10*4)}
				for i := range 256 {
					binary.LittleEndian.PutUint32(in.Data[i*4:], math.Float32bits(rng.Float32()*2-1))
				}
				for i := range 10 {
					binary.LittleEndian.PutUint32(out.Data[i*4:], math.Float32bits(rng.Float32()))
				}
				return t.copySample([]runtime.Tensor{in}, []runtime.Tensor{out}, nil, 1)
			}
			for !t.builder.Full() {
				t.process(row())
			}
			t.finishReference()
			rows := make([]*sample, 1000)
			for i := range rows {
				rows[i] = row()
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				s := rows[i%len(rows)]
				s.at = time.Now()
				t.process(s)
				t.evaluateDue(s.at)
			}
		})
	}
}
