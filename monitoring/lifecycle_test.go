package monitoring

import (
	"path/filepath"
	"testing"

	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

// series counts the gathered series of a model version, and those of
// one drift tensor among them.
func series(t *testing.T, m *Monitor, version, tensor string) (all, ofTensor int) {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] != "m" || labels["version"] != version {
				continue
			}
			all++
			if labels["tensor"] == tensor {
				ofTensor++
			}
		}
	}
	return all, ofTensor
}

// watching attaches version 1 of a model with inputs x and z, watching
// the given inputs and no output.
func watching(t *testing.T, m *Monitor, inputs ...string) repository.VersionObserver {
	t.Helper()
	info := repository.VersionInfo{
		Model: "m", Version: 1, Batched: true, Path: filepath.Join(t.TempDir(), "model.onnx"),
		Inputs: []runtime.TensorInfo{
			{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, 4}},
			{Name: "z", DataType: runtime.FP32, Shape: []int64{-1, 4}},
		},
		Outputs: []runtime.TensorInfo{{Name: "y", DataType: runtime.FP32, Shape: []int64{-1, 2}}},
	}
	if inputs != nil {
		info.Drift = &repository.DriftConfig{Inputs: inputs, Outputs: &[]string{}}
	}
	obs, err := m.Attach(info)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// TestSeriesLifecycle follows the orders in which the repository reports
// a version's instances and unloads, and checks which series stay.
func TestSeriesLifecycle(t *testing.T) {
	t.Run("reload drops the tensors only the old instance watched", func(t *testing.T) {
		m := New(Options{})
		a := watching(t, m, "x")
		b := watching(t, m, "z") // the reload, loaded before a closes
		a.Close(false)
		m.Unloaded("m", 1, "replaced")
		if _, x := series(t, m, "1", "x"); x != 0 {
			t.Errorf("got %d series of x after the reload, want 0", x)
		}
		if _, z := series(t, m, "1", "z"); z != 6 {
			t.Errorf("got %d series of z, want 6 (4 scores, detected, samples)", z)
		}
		b.Close(false)
		m.Unloaded("m", 1, "unload")
		if all, _ := series(t, m, "1", ""); all != 0 {
			t.Errorf("got %d series after the unload, want 0", all)
		}
	})
	t.Run("an abandoned newer instance leaves the serving one's", func(t *testing.T) {
		m := New(Options{})
		a := watching(t, m, "x")
		defer a.Close(false)
		b := watching(t, m, "z")
		b.Close(false) // its load failed after Attach
		if _, x := series(t, m, "1", "x"); x != 6 {
			t.Errorf("got %d series of x, want 6", x)
		}
		if _, z := series(t, m, "1", "z"); z != 0 {
			t.Errorf("got %d series of z, want 0", z)
		}
		if a.(*versionMetrics).drift.superseded.Load() {
			t.Errorf("the serving instance still defers to the abandoned one")
		}
	})
	t.Run("eviction keeps the series, a later unload deletes them", func(t *testing.T) {
		m := New(Options{})
		a := watching(t, m, "x")
		a.Close(true)
		m.Unloaded("m", 1, "evicted")
		if all, _ := series(t, m, "1", ""); all == 0 {
			t.Fatalf("an evicted version lost its series")
		}
		m.Unloaded("m", 1, "unload") // the evicted version, unloaded
		if all, _ := series(t, m, "1", ""); all != 0 {
			t.Errorf("got %d series after the unload, want 0", all)
		}
	})
	t.Run("an unload reported while the version loads again", func(t *testing.T) {
		m := New(Options{})
		a := watching(t, m)
		b := watching(t, m)
		defer b.Close(false)
		a.Close(false)
		m.Unloaded("m", 1, "unload")
		if all, _ := series(t, m, "1", ""); all == 0 {
			t.Errorf("the new instance lost its series")
		}
	})
	t.Run("a failed attach leaves nothing", func(t *testing.T) {
		m := New(Options{})
		_, err := m.Attach(repository.VersionInfo{
			Model: "m", Version: 1, Batched: true, Path: filepath.Join(t.TempDir(), "model.onnx"),
			Inputs: []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, 4}}},
			Drift:  &repository.DriftConfig{Inputs: []string{"x"}, Reference: repository.DriftReference{File: "reference.json"}},
		})
		if err == nil {
			t.Fatal("attach without its reference file succeeded")
		}
		if all, _ := series(t, m, "1", ""); all != 0 {
			t.Errorf("got %d series of a version that never loaded, want 0", all)
		}
	})
}
