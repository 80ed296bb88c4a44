package monitoring

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// driftVersion attaches version n of a 16-feature model whose input is
// watched, with a reference of the first 200 rows and a window of 200.
func driftVersion(t *testing.T, m *Monitor, n int64, path string) repository.VersionObserver {
	t.Helper()
	obs, err := m.Attach(repository.VersionInfo{
		Model: "m", Version: n, Batched: true, Path: path,
		Inputs:  []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, 16}}},
		Outputs: []runtime.TensorInfo{{Name: "y", DataType: runtime.FP32, Shape: []int64{-1, 4}}},
		Drift: &repository.DriftConfig{Inputs: []string{"x"}, Outputs: &[]string{},
			Reference: repository.DriftReference{First: 200}, Window: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// feed serves rows of uniform features on [-1, 1] (+shift on the first
// four) to obs, ten rows a request, and waits for the worker to take them.
func feed(t *testing.T, m *Monitor, n int64, obs repository.VersionObserver, rng *rand.Rand, rows int, shift float32) {
	t.Helper()
	for range rows / 10 {
		in := runtime.Tensor{Name: "x", DataType: runtime.FP32, Shape: []int64{10, 16}, Data: make([]byte, 10*16*4)}
		for i := range 10 * 16 {
			v := rng.Float32()*2 - 1
			if i%16 < 4 {
				v += shift
			}
			binary.LittleEndian.PutUint32(in.Data[i*4:], math.Float32bits(v))
		}
		tr := m.current("m", n).drift
		sent := tr.processed.Load() + tr.droppedN.Load() + 1
		obs.Served([]runtime.Tensor{in}, nil)
		// One request at a time, so that none is dropped.
		deadline := time.Now().Add(10 * time.Second)
		for tr.processed.Load()+tr.droppedN.Load() < sent {
			if time.Now().After(deadline) {
				t.Fatal("drift worker is stuck")
			}
			time.Sleep(100 * time.Microsecond)
		}
		if tr.droppedN.Load() > 0 {
			t.Fatal("a sample was dropped")
		}
	}
}

// TestCompareVersions is the third reference: a candidate version's live
// window against a baseline's, which the router uses in a rollout.
func TestCompareVersions(t *testing.T) {
	m := New(Options{EvaluateEvery: -1})
	stable := driftVersion(t, m, 1, "")
	defer stable.Close(false)
	canary := driftVersion(t, m, 2, "")
	defer canary.Close(false)
	ctx := context.Background()
	if _, err := m.Compare(ctx, "m", 2, 1); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before any reference: got %v, want ErrNotReady", err)
	}
	if _, err := m.Compare(ctx, "m", 3, 1); !errors.Is(err, ErrNoDrift) {
		t.Fatalf("unknown version: got %v, want ErrNoDrift", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	feed(t, m, 1, stable, rng, 400, 0) // reference, then a window
	feed(t, m, 2, canary, rng, 400, 0)
	c, err := m.Compare(ctx, "m", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Detected || len(c.Tensors) != 1 || c.Tensors[0].Samples == 0 {
		t.Fatalf("same traffic: got %+v, want one tensor compared, no drift", c)
	}
	feed(t, m, 2, canary, rng, 200, 1.5) // the canary's window shifts
	c, err = m.Compare(ctx, "m", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Detected {
		t.Fatalf("shifted canary: got %+v, want drift", c.Tensors)
	}
}

// TestStateDirReference: a reference built from the first rows is saved
// under the state directory and reused by the next load of the same
// model file; a changed file builds a new one.
func TestStateDirReference(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(model, []byte("model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := New(Options{StateDir: dir, EvaluateEvery: -1})
	obs := driftVersion(t, m, 1, model)
	feed(t, m, 1, obs, rand.New(rand.NewPCG(3, 4)), 200, 0)
	rep := m.current("m", 1).drift.currentReport()
	obs.Close(true) // evicted
	if !rep.Reference.Ready || rep.Reference.Source != "first" || rep.Reference.Path == "" {
		t.Fatalf("after 200 rows: reference %+v, want a first reference saved", rep.Reference)
	}
	if _, err := os.Stat(rep.Reference.Path); err != nil {
		t.Fatalf("reference not saved: %v", err)
	}

	obs = driftVersion(t, m, 1, model) // loaded again: same file
	got := m.current("m", 1).drift.currentReport().Reference
	obs.Close(false)
	if got.Source != "state" || !got.Ready || got.Samples != 200 {
		t.Fatalf("reload of the same file: reference %+v, want the saved one", got)
	}

	if err := os.WriteFile(model, []byte("other model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	obs = driftVersion(t, m, 1, model)
	got = m.current("m", 1).drift.currentReport().Reference
	obs.Close(false)
	if got.Source != "first" || got.Ready {
		t.Fatalf("a changed model file: reference %+v, want a new one to build", got)
	}
}

// TestAttachErrors: a drift config that the signature cannot serve fails
// the load with a reason that names the field.
func TestAttachErrors(t *testing.T) {
	sig := repository.VersionInfo{
		Model: "m", Version: 1, Batched: true,
		Inputs:  []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, -1}}, {Name: "s", DataType: runtime.Bytes, Shape: []int64{-1, 1}}},
		Outputs: []runtime.TensorInfo{{Name: "y", DataType: runtime.FP32, Shape: []int64{-1, 4}}},
	}
	tests := []struct {
		name  string
		drift repository.DriftConfig
		want  string
	}{
		{"unknown input", repository.DriftConfig{Inputs: []string{"z"}}, `monitoring.drift.inputs: "z" is not one of the model's inputs (x, s)`},
		{"variable last dim", repository.DriftConfig{Inputs: []string{"x"}}, `monitoring.drift.inputs: "x" has a variable last dimension`},
		{"bytes", repository.DriftConfig{Inputs: []string{"s"}}, `monitoring.drift.inputs: "s" is BYTES: drift needs numbers`},
		{"nothing", repository.DriftConfig{Outputs: &[]string{}}, "monitoring.drift: no tensor to watch"},
		{"missing file", repository.DriftConfig{Reference: repository.DriftReference{File: "reference.json"}}, "monitoring.drift.reference.file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := sig
			d := tt.drift
			info.Drift = &d
			info.Path = filepath.Join(t.TempDir(), "model.onnx")
			_, err := New(Options{}).Attach(info)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
