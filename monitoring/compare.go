package monitoring

import (
	"context"
	"errors"
	"fmt"

	"github.com/infergate/infergate/monitoring/drift"
)

// Errors of Compare.
var (
	// ErrNoDrift: a version is not loaded or has no drift monitoring.
	ErrNoDrift = errors.New("no drift monitoring")
	// ErrNotReady: a version's reference is still being built, so it has
	// no live window yet.
	ErrNotReady = errors.New("drift window not ready")

	errUnloaded = fmt.Errorf("%w: the version was unloaded", ErrNoDrift)
)

// DriftReport returns the drift report of a loaded version; false when
// it has no drift monitoring. It implements the gateway's DriftReporter.
func (m *Monitor) DriftReport(model string, version int64) (any, bool) {
	vm := m.current(model, version)
	if vm == nil || vm.drift == nil {
		return nil, false
	}
	return vm.drift.currentReport(), true
}

// Comparison is a candidate version's live drift windows compared with a
// baseline version's, tensor by tensor: the third reference, which a
// canary rollout uses to ask whether the canary sees and predicts what
// the stable version does.
type Comparison struct {
	Model     string         `json:"model"`
	Candidate int64          `json:"candidate"`
	Baseline  int64          `json:"baseline"`
	Tensors   []TensorReport `json:"tensors"`
	// Detected says the decision rule holds for some tensor.
	Detected bool `json:"detected"`
}

// Compare compares the live windows of two loaded versions of a model,
// for every tensor that both watch (same kind and name), with the same
// statistics and decision rule as against a reference. The candidate's
// counts are mapped onto the baseline's bins where their references
// differ (see drift.CompareWindows). It fails with ErrNoDrift when either
// version has no drift monitoring, and ErrNotReady while either is still
// building its reference.
func (m *Monitor) Compare(ctx context.Context, model string, candidate, baseline int64) (*Comparison, error) {
	trackers := [2]*tracker{}
	for i, n := range []int64{candidate, baseline} {
		vm := m.current(model, n)
		if vm == nil || vm.drift == nil {
			return nil, fmt.Errorf("model %q version %d: %w", model, n, ErrNoDrift)
		}
		trackers[i] = vm.drift
	}
	cand, err := trackers[0].snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("model %q version %d: %w", model, candidate, err)
	}
	base, err := trackers[1].snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("model %q version %d: %w", model, baseline, err)
	}
	switch {
	case cand == nil:
		return nil, fmt.Errorf("model %q version %d: %w", model, candidate, ErrNotReady)
	case base == nil:
		return nil, fmt.Errorf("model %q version %d: %w", model, baseline, ErrNotReady)
	}
	c := &Comparison{Model: model, Candidate: candidate, Baseline: baseline}
	for i, s := range trackers[0].specs {
		for j, b := range trackers[1].specs {
			if s.Kind != b.Kind || s.Name != b.Name || s.Elements != b.Elements || s.Classes != b.Classes {
				continue
			}
			r := drift.CompareWindows(cand[i], base[j])
			c.Tensors = append(c.Tensors, TensorReport{Kind: s.Kind, Name: s.Name, Result: r})
			c.Detected = c.Detected || r.Detected
		}
	}
	return c, nil
}

// CompareDrift is Compare reduced to the figures a rollout's drift check
// reads: the worst PSI and the smallest corrected p-value over the
// outputs and predicted classes both versions watch, and the fewest
// samples behind them. configured is false when either version's config
// has no monitoring.drift section. It implements the router's
// DriftComparer.
func (m *Monitor) CompareDrift(ctx context.Context, model string, candidate, baseline int64) (psi, pValue float64, samples int64, configured bool, err error) {
	for _, n := range []int64{candidate, baseline} {
		if vm := m.current(model, n); vm != nil && vm.drift == nil {
			return 0, 1, 0, false, nil
		}
	}
	c, err := m.Compare(ctx, model, candidate, baseline)
	if err != nil {
		return 0, 1, 0, true, err
	}
	pValue, samples = 1, -1
	for _, t := range c.Tensors {
		if t.Kind == drift.KindInput {
			continue
		}
		psi = max(psi, t.PSI)
		pValue = min(pValue, t.PValue)
		if samples < 0 || t.Samples < samples {
			samples = t.Samples
		}
	}
	if samples < 0 {
		return 0, 1, 0, true, fmt.Errorf("model %q: %w of an output in both versions", model, ErrNoDrift)
	}
	return psi, pValue, samples, true, nil
}
