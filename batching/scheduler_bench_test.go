package batching

import (
	"context"
	"testing"

	"github.com/infergate/infergate/runtime"
)

// echoRunner returns its inputs: a model that costs nothing, so that the
// benchmarks measure the scheduler alone.
type echoRunner struct{}

func (echoRunner) Run(_ context.Context, in []runtime.Tensor) ([]runtime.Tensor, error) {
	return in, nil
}

// BenchmarkSchedulerOverhead measures what the dynamic batcher adds per
// request, against calling the runner directly, one request at a time and
// from many goroutines.
//
//	go test -run '^$' -bench SchedulerOverhead -benchmem ./batching/
func BenchmarkSchedulerOverhead(b *testing.B) {
	req := rowsReq(1, 1, 16)
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			echoRunner{}.Run(ctx, req.Inputs)
		}
	})
	b.Run("scheduler/sequential", func(b *testing.B) {
		s, _ := NewScheduler(echoRunner{}, Options{MaxBatchSize: 64, Instances: 2})
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Infer(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scheduler/sequential-cancelable-ctx", func(b *testing.B) {
		// As a server's requests: their context can end.
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, _ := NewScheduler(echoRunner{}, Options{MaxBatchSize: 64, Instances: 2})
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Infer(cctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scheduler/parallel-64", func(b *testing.B) {
		s, _ := NewScheduler(echoRunner{}, Options{MaxBatchSize: 64, Instances: 2})
		defer s.Close()
		b.ReportAllocs()
		b.SetParallelism(32) // 64 goroutines on 2 CPUs
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Infer(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
