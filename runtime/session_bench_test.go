package runtime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// BenchmarkThreadDefaults runs PaddleOCR's classifier (one image a run,
// from as many goroutines as CPUs) with infergate's default threading
// beside the alternatives, and reports items/s. The default (one instance
// per CPU, one intra-op thread each) should match the best of them.
//
//	go test -run '^$' -bench ThreadDefaults ./runtime/
func BenchmarkThreadDefaults(b *testing.B) {
	path := filepath.Join(runtimetest.Root(b), ".cache", "models", "ppocr_cls", "1", "model.onnx")
	if _, err := os.Stat(path); err != nil {
		b.Skipf("PaddleOCR classifier not fetched: run scripts/fetch-models.sh (%v)", err)
	}
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	in := []runtime.Tensor{{DataType: runtime.FP32, Shape: []int64{1, 3, 48, 192}, Data: make([]byte, 4*3*48*192)}}
	for _, tc := range []struct {
		name string
		opts runtime.SessionOptions
	}{
		{"default", runtime.SessionOptions{}},
		{"1-instance-x-1-thread", runtime.SessionOptions{Instances: 1, IntraOpThreads: 1}},
		{"1-instance-x-2-threads", runtime.SessionOptions{Instances: 1, IntraOpThreads: 2}},
		{"2-instances-x-1-thread", runtime.SessionOptions{Instances: 2, IntraOpThreads: 1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := env.NewSession(path, tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Run(context.Background(), in); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Run(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
		})
	}
}

// BenchmarkBatchedOutputs runs an MLP at batch 1 and 64 with its batched
// outputs preallocated (SetBatchedOutputs) beside ONNX Runtime allocating
// them and onnxruntime_go copying them out. It takes the benchmark MLPs
// (make bench-models) when present, and the small test MLP always.
//
//	go test -run '^$' -bench BatchedOutputs -benchmem ./runtime/
func BenchmarkBatchedOutputs(b *testing.B) {
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	models := []struct{ name, path string }{{"mlp16", filepath.Join(runtimetest.Models(b), "mlp", "1", "model.onnx")}}
	for _, m := range []string{"mlp_256", "mlp_2048"} {
		p := filepath.Join(runtimetest.Root(b), ".cache", "bench-models", m, "1", "model.onnx")
		if _, err := os.Stat(p); err == nil {
			models = append(models, struct{ name, path string }{m, p})
		}
	}
	for _, m := range models {
		for _, rows := range []int64{1, 64} {
			for _, pre := range []bool{false, true} {
				name := fmt.Sprintf("%s/batch%d/ort-allocates", m.name, rows)
				if pre {
					name = fmt.Sprintf("%s/batch%d/preallocated", m.name, rows)
				}
				b.Run(name, func(b *testing.B) {
					s, err := env.NewSession(m.path, runtime.SessionOptions{Instances: 1})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					s.SetBatchedOutputs(pre)
					width := s.Inputs()[0].Shape[1]
					in := []runtime.Tensor{{DataType: runtime.FP32, Shape: []int64{rows, width}, Data: make([]byte, 4*rows*width)}}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := s.Run(context.Background(), in); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkExecutionNice runs the small test MLP at batch 1, one run at a
// time, on the caller's thread (nice 0) beside threads of its own at nice
// 1 and 10 (Options.ExecutionNice): the cost of the hand-off between
// threads that each execution pays with it (nice 1 against 10 tells the
// hand-off from the priority).
//
//	go test -run '^$' -bench ExecutionNice -benchmem ./runtime/
func BenchmarkExecutionNice(b *testing.B) {
	in := []runtime.Tensor{{DataType: runtime.FP32, Shape: []int64{1, 16}, Data: make([]byte, 4*16)}}
	for _, nice := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("nice-%d", nice), func(b *testing.B) {
			s := openSession(b, openEnvWith(b, runtime.Options{ExecutionNice: nice}), "mlp", runtime.SessionOptions{Instances: 1})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
