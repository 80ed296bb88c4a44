package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openEnv(tb testing.TB) *runtime.Environment { return openEnvWith(tb, runtime.Options{}) }

// openEnvWith opens the test library with opts, closed at cleanup.
func openEnvWith(tb testing.TB, opts runtime.Options) *runtime.Environment {
	tb.Helper()
	opts.LibraryPath = runtimetest.Library(tb)
	env, err := runtime.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := env.Close(); err != nil {
			tb.Error(err)
		}
	})
	return env
}

func openSession(tb testing.TB, env *runtime.Environment, model string, opts runtime.SessionOptions) *runtime.Session {
	tb.Helper()
	s, err := env.NewSession(filepath.Join(runtimetest.Models(tb), model, "1", "model.onnx"), opts)
	if err != nil {
		tb.Fatalf("open %s: %v", model, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestOpenMissingLibrary(t *testing.T) {
	_, err := runtime.Open(runtime.Options{LibraryPath: "/nonexistent/libonnxruntime.so"})
	if !errors.Is(err, runtime.ErrLibraryNotFound) {
		t.Fatalf("got %v, want ErrLibraryNotFound", err)
	}
	for _, want := range []string{"ONNXRUNTIME_LIB", "--onnxruntime-lib", "scripts/fetch-onnxruntime.sh"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestVersion(t *testing.T) {
	env := openEnv(t)
	if got := env.Version(); got != "1.29.0" {
		t.Errorf("got ONNX Runtime %q, want 1.29.0", got)
	}
}

// TestIdentityEveryDatatype runs the identity model of each datatype and
// checks the output equals the input, byte for byte.
func TestIdentityEveryDatatype(t *testing.T) {
	env := openEnv(t)
	tests := []struct {
		name string
		dt   runtime.DataType
	}{
		{"bool", runtime.Bool}, {"uint8", runtime.Uint8}, {"uint16", runtime.Uint16},
		{"uint32", runtime.Uint32}, {"uint64", runtime.Uint64}, {"int8", runtime.Int8},
		{"int16", runtime.Int16}, {"int32", runtime.Int32}, {"int64", runtime.Int64},
		{"fp16", runtime.FP16}, {"fp32", runtime.FP32}, {"fp64", runtime.FP64},
		{"bytes", runtime.Bytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openSession(t, env, "identity_"+tt.name, runtime.SessionOptions{})
			if got := s.Inputs()[0]; got.DataType != tt.dt || len(got.Shape) != 2 || got.Shape[0] != -1 || got.Shape[1] != 4 {
				t.Fatalf("got input %+v, want %s [-1 4]", got, tt.dt)
			}
			in := runtime.Tensor{Name: "INPUT0", DataType: tt.dt, Shape: []int64{2, 4}}
			if tt.dt == runtime.Bytes {
				in.Strings = []string{"a", "", "héllo", "\xff\x01", "e", "f", "g", "h"}
			} else {
				in.Data = make([]byte, 8*tt.dt.Size())
				for i := range in.Data {
					in.Data[i] = byte(i*7 + 1)
				}
				if tt.dt == runtime.Bool {
					for i := range in.Data {
						in.Data[i] = byte(i % 2)
					}
				}
			}
			out, err := s.Run(context.Background(), []runtime.Tensor{in})
			if err != nil {
				t.Fatal(err)
			}
			got := out[0]
			if got.Name != "OUTPUT0" || got.DataType != tt.dt || len(got.Shape) != 2 || got.Shape[0] != 2 {
				t.Fatalf("got output %s %s %v", got.Name, got.DataType, got.Shape)
			}
			if tt.dt == runtime.Bytes {
				for i := range in.Strings {
					if got.Strings[i] != in.Strings[i] {
						t.Errorf("element %d: got %q, want %q", i, got.Strings[i], in.Strings[i])
					}
				}
				return
			}
			if string(got.Data) != string(in.Data) {
				t.Errorf("got %v, want %v", got.Data, in.Data)
			}
		})
	}
}

// TestEmptyTensors runs every datatype's identity model on a tensor with
// no elements, with outputs allocated by ONNX Runtime and preallocated: the
// output has no elements either, and no stray byte (issue 11's first
// defect: a preallocated empty output came back with one).
func TestEmptyTensors(t *testing.T) {
	env := openEnv(t)
	for _, dt := range []runtime.DataType{runtime.Bool, runtime.Uint8, runtime.Uint16, runtime.Uint32, runtime.Uint64,
		runtime.Int8, runtime.Int16, runtime.Int32, runtime.Int64, runtime.FP16, runtime.FP32, runtime.FP64, runtime.Bytes} {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batched=%v", dt, batched), func(t *testing.T) {
				s := openSession(t, env, "identity_"+strings.ToLower(dt.String()), runtime.SessionOptions{})
				s.SetBatchedOutputs(batched)
				in := runtime.Tensor{Name: "INPUT0", DataType: dt, Shape: []int64{0, 4}, Data: []byte{}}
				if dt == runtime.Bytes {
					in.Data, in.Strings = nil, []string{}
				}
				out, err := s.Run(context.Background(), []runtime.Tensor{in})
				if err != nil {
					t.Fatal(err)
				}
				got := out[0]
				if !slices.Equal(got.Shape, []int64{0, 4}) || len(got.Data) != 0 || len(got.Strings) != 0 {
					t.Fatalf("got shape %v, %d bytes, %d strings; want [0 4] and nothing", got.Shape, len(got.Data), len(got.Strings))
				}
				if err := got.Validate(); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func fp32(vals ...float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func toFP32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func TestShapes(t *testing.T) {
	env := openEnv(t)
	t.Run("scalar", func(t *testing.T) {
		s := openSession(t, env, "scalar", runtime.SessionOptions{})
		out, err := s.Run(context.Background(), []runtime.Tensor{{DataType: runtime.FP32, Data: fp32(21)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := toFP32(out[0].Data); len(out[0].Shape) != 0 || len(got) != 1 || got[0] != 42 {
			t.Errorf("got %v shape %v, want 42 shape []", got, out[0].Shape)
		}
	})
	t.Run("no_batch", func(t *testing.T) {
		s := openSession(t, env, "no_batch", runtime.SessionOptions{})
		out, err := s.Run(context.Background(), []runtime.Tensor{{DataType: runtime.FP32, Shape: []int64{2, 3}, Data: fp32(1, 2, 3, 10, 20, 30)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := toFP32(out[0].Data); len(got) != 3 || got[0] != 11 || got[1] != 22 || got[2] != 33 {
			t.Errorf("got %v, want [11 22 33]", got)
		}
	})
	t.Run("multi_io", func(t *testing.T) {
		s := openSession(t, env, "multi_io", runtime.SessionOptions{})
		b := make([]byte, 24)
		for i := range 3 {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(i+1))
		}
		out, err := s.Run(context.Background(), []runtime.Tensor{
			{DataType: runtime.FP32, Shape: []int64{1, 3}, Data: fp32(0.5, 0.5, 0.5)},
			{DataType: runtime.Int64, Shape: []int64{1, 3}, Data: b},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := toFP32(out[0].Data); got[0] != 1.5 || got[2] != 3.5 {
			t.Errorf("sum: got %v", got)
		}
		if got := binary.LittleEndian.Uint64(out[1].Data[16:]); out[1].DataType != runtime.Int64 || got != 6 {
			t.Errorf("double_b[2]: got %d (%s)", got, out[1].DataType)
		}
	})
	t.Run("NUL in BYTES", func(t *testing.T) {
		s := openSession(t, env, "strings", runtime.SessionOptions{})
		_, err := s.Run(context.Background(), []runtime.Tensor{{DataType: runtime.Bytes, Shape: []int64{1}, Strings: []string{"a\x00b"}}})
		if !errors.Is(err, runtime.ErrInvalidInput) || !contains(err.Error(), "NUL byte") {
			t.Errorf("got %v, want an invalid input error about the NUL byte", err)
		}
	})
	t.Run("strings", func(t *testing.T) {
		s := openSession(t, env, "strings", runtime.SessionOptions{})
		out, err := s.Run(context.Background(), []runtime.Tensor{{DataType: runtime.Bytes, Shape: []int64{2}, Strings: []string{"Hello", "WORLD"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].Strings; len(got) != 2 || got[0] != "hello" || got[1] != "world" {
			t.Errorf("got %q", got)
		}
	})
}

func TestLoadFailures(t *testing.T) {
	env := openEnv(t)
	tests := []struct {
		name  string
		model string
		opts  runtime.SessionOptions
		want  string
	}{
		{"corrupt file", "corrupt", runtime.SessionOptions{}, "read model"},
		{"unsupported operator", "bad_operator", runtime.SessionOptions{}, "NoSuchOperator"},
		{"bad optimization level", "mlp", runtime.SessionOptions{GraphOptimization: "max"}, `unknown graph optimization level "max"`},
		{"unknown provider", "mlp", runtime.SessionOptions{Providers: []runtime.Provider{{Name: "rocm"}}}, `unknown execution provider "rocm"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.NewSession(filepath.Join(runtimetest.Models(t), tt.model, "1", "model.onnx"), tt.opts)
			if err == nil || !contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCUDAWithoutGPU checks that a CUDA provider that cannot load fails the
// session with ONNX Runtime's reason, and loads on the CPU only when asked.
func TestCUDAWithoutGPU(t *testing.T) {
	env := openEnv(t)
	path := filepath.Join(runtimetest.Models(t), "mlp", "1", "model.onnx")
	cuda := []runtime.Provider{{Name: "cuda", Options: map[string]string{"device_id": "0"}}}
	s, err := env.NewSession(path, runtime.SessionOptions{Providers: cuda})
	if err == nil {
		// A machine with a GPU and the provider libraries: CUDA is in effect.
		defer s.Close()
		if s.Providers()[0] != "cuda" {
			t.Fatalf("got providers %v", s.Providers())
		}
		t.Skip("this machine runs CUDA; the no-GPU path is not testable here")
	}
	if !contains(err.Error(), "cuda execution provider") {
		t.Fatalf("got %v, want a cuda execution provider error", err)
	}
	t.Logf("without a GPU: %v", err)
	s, err = env.NewSession(path, runtime.SessionOptions{Providers: cuda, AllowCPUFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Providers(); len(got) != 1 || got[0] != "cpu" {
		t.Errorf("got providers %v, want [cpu]", got)
	}
}

func TestConcurrentRunsAndClose(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSession(filepath.Join(runtimetest.Models(t), "mlp", "1", "model.onnx"), runtime.SessionOptions{Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	in := []runtime.Tensor{{DataType: runtime.FP32, Shape: []int64{1, 16}, Data: fp32(make([]float32, 16)...)}}
	want, err := s.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				out, err := s.Run(context.Background(), in)
				if err != nil {
					t.Error(err)
					return
				}
				if string(out[0].Data) != string(want[0].Data) {
					t.Error("concurrent run gave a different output")
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), in); !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("run after close: got %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2 := openSession(t, env, "mlp", runtime.SessionOptions{Instances: 1})
	if _, err := s2.Run(ctx, in); err == nil {
		t.Error("run with a cancelled context succeeded")
	}
}

// TestTerminate: Terminate stops an execution in flight, which fails with
// ErrClosed, as later runs do; a run terminated by its own context leaves
// the slot usable (issue 11, defect 7).
func TestTerminate(t *testing.T) {
	env := openEnv(t)
	// 262,144 rows of the slow model: about 3.6 s of compute on one thread
	// here (16,384 rows took 0.2 s, short enough to end before the cancel).
	const rows = 1 << 18
	big := []runtime.Tensor{{Name: "x", DataType: runtime.FP32, Shape: []int64{rows, 32}, Data: make([]byte, rows*32*4)}}
	small := []runtime.Tensor{{Name: "x", DataType: runtime.FP32, Shape: []int64{1, 32}, Data: make([]byte, 32*4)}}

	t.Run("by its context, then the slot runs again", func(t *testing.T) {
		s := openSession(t, env, "slow", runtime.SessionOptions{Instances: 1})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := s.Run(ctx, big)
			done <- err
		}()
		waitInFlight(t, s, 1)
		cancel()
		if err := <-done; err == nil {
			t.Fatal("a cancelled run succeeded")
		}
		if _, err := s.Run(context.Background(), small); err != nil {
			t.Fatalf("the next run on the slot: %v", err)
		}
	})
	t.Run("the whole session", func(t *testing.T) {
		s := openSession(t, env, "slow", runtime.SessionOptions{Instances: 2})
		done := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := s.Run(context.Background(), big)
				done <- err
			}()
		}
		waitInFlight(t, s, 2)
		s.Terminate()
		for range 2 {
			if err := <-done; !errors.Is(err, runtime.ErrClosed) {
				t.Errorf("a run in flight at Terminate: got %v, want ErrClosed", err)
			}
		}
		if _, err := s.Run(context.Background(), small); !errors.Is(err, runtime.ErrClosed) {
			t.Errorf("a run after Terminate: got %v, want ErrClosed", err)
		}
	})
}

// waitInFlight waits until n executions of s hold a slot, then a little
// more, for them to reach ONNX Runtime (a run terminated just before it
// gets there fails the same way).
func waitInFlight(t *testing.T, s *runtime.Session, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.InFlight() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs in flight, want %d", s.InFlight(), n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}

// TestBatchedGuessWrong: a batched session whose output's variable
// leading dimension is not the batch (a reshape to [2*batch, 1]) still
// runs, with the real shape, and stops guessing.
func TestBatchedGuessWrong(t *testing.T) {
	env := openEnv(t)
	s := openSession(t, env, "unbatched_output", runtime.SessionOptions{})
	s.SetBatchedOutputs(true)
	for _, rows := range []int{1, 3} {
		in := runtime.Tensor{Name: "x", DataType: runtime.FP32, Shape: []int64{int64(rows), 2}, Data: make([]byte, 8*rows)}
		out, err := s.Run(context.Background(), []runtime.Tensor{in})
		if err != nil {
			t.Fatalf("%d rows: %v", rows, err)
		}
		if want := []int64{int64(2 * rows), 1}; !slices.Equal(out[0].Shape, want) {
			t.Fatalf("%d rows: shape %v, want %v", rows, out[0].Shape, want)
		}
	}
}
