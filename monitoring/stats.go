package monitoring

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"
)

// Duration is a count of events and their total time, as Triton's
// statistics extension reports them.
type Duration struct {
	Count uint64 `json:"count"`
	Ns    uint64 `json:"ns"`
}

// VersionStatistics are a loaded version's cumulative figures since it
// loaded: Triton's statistics extension (GET .../stats, the
// ModelStatistics RPC), which perf_analyzer reads.
type VersionStatistics struct {
	Model   string
	Version int64
	// LastInference is the time of the last inference request, in
	// milliseconds since the epoch; 0: none yet.
	LastInference int64
	// InferenceCount counts inferences (batch rows), ExecutionCount
	// model executions (a batch is one).
	InferenceCount, ExecutionCount uint64
	// Success and Fail are inference requests by outcome, with their
	// time from arrival to answer; Queue their time in the dynamic
	// batcher's queue; ComputeInfer the executions' time in ONNX
	// Runtime; CacheHit and CacheMiss the response cache's lookups.
	Success, Fail, Queue, ComputeInfer, CacheHit, CacheMiss Duration
}

// durationCounter is a Duration counted on the request path.
type durationCounter struct{ count, ns atomic.Uint64 }

func (d *durationCounter) add(took time.Duration) {
	d.count.Add(1)
	d.ns.Add(uint64(max(took, 0)))
}

func (d *durationCounter) load() Duration { return Duration{d.count.Load(), d.ns.Load()} }

// versionStats are a version's statistics, atomics only.
type versionStats struct {
	last                   atomic.Int64
	inferences, executions atomic.Uint64
	success, fail, queue   durationCounter
	compute, hit, miss     durationCounter
}

// Statistics returns the statistics of model's loaded versions (version
// 0: all of them), by version; none when it has none loaded.
func (m *Monitor) Statistics(model string, version int64) []VersionStatistics {
	m.mu.Lock()
	var vms []*versionMetrics
	for k, e := range m.versions {
		if k.model == model && (version == 0 || k.version == version) && len(e.live) > 0 {
			vms = append(vms, e.live[len(e.live)-1])
		}
	}
	m.mu.Unlock()
	out := make([]VersionStatistics, 0, len(vms))
	for _, vm := range vms {
		s := &vm.stats
		out = append(out, VersionStatistics{
			Model: vm.key.model, Version: vm.key.version, LastInference: s.last.Load(),
			InferenceCount: s.inferences.Load(), ExecutionCount: s.executions.Load(),
			Success: s.success.load(), Fail: s.fail.load(), Queue: s.queue.load(),
			ComputeInfer: s.compute.load(), CacheHit: s.hit.load(), CacheMiss: s.miss.load(),
		})
	}
	slices.SortFunc(out, func(a, b VersionStatistics) int { return cmp.Compare(a.Version, b.Version) })
	return out
}
