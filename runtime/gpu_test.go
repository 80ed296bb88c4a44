package runtime_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestGPU runs the MLP (and PaddleOCR's classifier when fetched) on CUDA
// and on TensorRT, and compares the outputs with the CPU's. It runs only
// with INFERGATE_GPU=1, on a machine with an NVIDIA GPU, CUDA 13 and
// cuDNN 9, and the provider libraries beside libonnxruntime
// (scripts/fetch-onnxruntime.sh --gpu); scripts/gpu-check.sh sets it up.
func TestGPU(t *testing.T) {
	if os.Getenv("INFERGATE_GPU") != "1" {
		t.Skip("set INFERGATE_GPU=1 on a machine with an NVIDIA GPU (scripts/gpu-check.sh)")
	}
	env := openEnv(t)
	models := []struct {
		path  string
		shape []int64
	}{
		{filepath.Join(runtimetest.Models(t), "mlp", "1", "model.onnx"), []int64{8, 16}},
		{filepath.Join(runtimetest.Root(t), ".cache", "models", "ppocr_cls", "1", "model.onnx"), []int64{4, 3, 48, 192}},
	}
	for _, m := range models {
		if _, err := os.Stat(m.path); err != nil {
			t.Logf("skipping %s: %v", m.path, err)
			continue
		}
		n := int64(1)
		for _, d := range m.shape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(math.Sin(float64(i))) * 0.5
		}
		in := []runtime.Tensor{{DataType: runtime.FP32, Shape: m.shape, Data: fp32(vals...)}}
		cpu, err := env.NewSession(m.path, runtime.SessionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := cpu.Run(context.Background(), in)
		cpu.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []runtime.Provider{
			{Name: "cuda", Options: map[string]string{"device_id": "0"}},
			{Name: "tensorrt", Options: map[string]string{"device_id": "0"}},
		} {
			t.Run(filepath.Base(filepath.Dir(filepath.Dir(m.path)))+"/"+p.Name, func(t *testing.T) {
				s, err := env.NewSession(m.path, runtime.SessionOptions{Providers: []runtime.Provider{p}})
				if err != nil {
					t.Fatalf("%s: %v", p.Name, err)
				}
				defer s.Close()
				if got := s.Providers()[0]; got != p.Name {
					t.Fatalf("providers %v", s.Providers())
				}
				var got []runtime.Tensor
				for range 3 { // the first TensorRT run builds its engine
					if got, err = s.Run(context.Background(), in); err != nil {
						t.Fatal(err)
					}
				}
				g, w := toFP32(got[0].Data), toFP32(want[0].Data)
				worst := 0.0
				for i := range w {
					worst = math.Max(worst, math.Abs(float64(g[i]-w[i])))
				}
				t.Logf("%s on %s: largest difference from the CPU %.2g over %d outputs", filepath.Base(m.path), p.Name, worst, len(w))
				if worst > 1e-3 {
					t.Errorf("outputs differ from the CPU's by up to %g", worst)
				}
			})
		}
	}
}
