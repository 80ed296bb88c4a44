package monitoring

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

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
			obs, v, in, out := hookVersion(b, m, tc.drift)
			defer obs.Close(false)
			b.ReportAllocs()
			for b.Loop() {
				oneRequest(m, obs, v, in, out)
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
