package monitoring

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergate/infergate/monitoring/drift"
)

// binExport counts a version's sampled outputs in the bins of a
// reference, as counters that every replica exports, so that a rollout
// judged from Prometheus can compare the canary's output distribution
// with stable's over the same bin edges, summed over the replicas
// (ExportDriftBins). The tracker's worker adds to it.
type binExport struct {
	sources []*sourceBins // per tracker source; nil: not exported
}

// sourceBins are one output's counters.
type sourceBins struct {
	edges    [][]float64            // per exported element
	counters [][]prometheus.Counter // per exported element, per bin
	classes  []prometheus.Counter   // per class of its prediction; nil: none
}

// add counts one sample of source i: its first elements' values, and its
// predicted class (-1: none).
func (b *binExport) add(i int, values []float32, class int) {
	s := b.sources[i]
	if s == nil {
		return
	}
	for e, edges := range s.edges {
		if e >= len(values) {
			break
		}
		x := float64(values[e])
		if math.IsNaN(x) {
			continue
		}
		// Bin j holds the values that j edges are ≤ to.
		s.counters[e][sort.Search(len(edges), func(j int) bool { return edges[j] > x })].Inc()
	}
	if class >= 0 && class < len(s.classes) {
		s.classes[class].Inc()
	}
}

// ExportDriftBins makes the loaded versions of model count their sampled
// outputs (and predicted classes) in the bins of ref, the stable
// version's reference, as infergate_rollout_drift_bins_total, until
// stop, which also deletes the series: bins × elements × versions of
// them, only while a rollout runs. It fails with ErrNoDrift when a
// version has no drift monitoring, or when ref has none of the outputs
// it watches. It implements the router's DriftBinExporter.
func (m *Monitor) ExportDriftBins(model string, versions []int64, ref *drift.Reference) (stop func(), err error) {
	type attached struct {
		t   *tracker
		exp *binExport
	}
	var done []attached
	stop = func() {
		for _, a := range done {
			a.t.export.CompareAndSwap(a.exp, nil)
			m.driftBins.DeletePartialMatch(prometheus.Labels{"model": model, "version": strconv.FormatInt(a.t.version, 10)})
		}
	}
	for _, n := range versions {
		vm := m.current(model, n)
		if vm == nil || vm.drift == nil {
			stop()
			return nil, fmt.Errorf("model %q version %d: %w", model, n, ErrNoDrift)
		}
		t := vm.drift
		exp, err := m.binExportFor(t, ref)
		if err != nil {
			stop()
			return nil, err
		}
		t.export.Store(exp)
		done = append(done, attached{t, exp})
	}
	return stop, nil
}

// binExportFor makes the counters of t's outputs in ref's bins.
func (m *Monitor) binExportFor(t *tracker, ref *drift.Reference) (*binExport, error) {
	version := strconv.FormatInt(t.version, 10)
	exp := &binExport{sources: make([]*sourceBins, len(t.sources))}
	exported := 0
	for i, src := range t.sources {
		if src.input {
			continue
		}
		s := &sourceBins{}
		if tr := ref.Tensor(drift.KindOutput, src.name); tr != nil {
			for e := range min(src.elements, len(tr.Elements)) {
				edges := tr.Elements[e].Edges
				cs := make([]prometheus.Counter, len(edges)+1)
				for b := range cs {
					cs[b] = m.driftBins.WithLabelValues(t.model, version, drift.KindOutput, src.name, strconv.Itoa(e), strconv.Itoa(b))
				}
				s.edges, s.counters = append(s.edges, edges), append(s.counters, cs)
			}
		}
		if tr := ref.Tensor(drift.KindPrediction, src.name); tr != nil && src.classes >= 0 && len(tr.Classes) == src.last {
			for c := range tr.Classes {
				s.classes = append(s.classes, m.driftBins.WithLabelValues(t.model, version, drift.KindPrediction, src.name, "0", strconv.Itoa(c)))
			}
		}
		if len(s.edges) > 0 || len(s.classes) > 0 {
			exp.sources[i] = s
			exported++
		}
	}
	if exported == 0 {
		return nil, fmt.Errorf("model %q version %d: %w: the reference has none of the outputs it watches", t.model, t.version, ErrNoDrift)
	}
	return exp, nil
}
