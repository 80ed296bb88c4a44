package drift

import (
	"sort"
	"testing"
	"time"
)

// benchSamples are distinct uniform samples, so that the searches do not
// learn one sample's branches.
func benchSamples(elements int) [][]float32 {
	r := newRand(42)
	samples := make([][]float32, 1024)
	for i := range samples {
		samples[i] = make([]float32, elements)
		uniformSample(r, samples[i], 0, 0)
	}
	return samples
}

// BenchmarkWindowAdd is the worker's hot loop: one op is one sample of 256
// elements (11 edges each) added to a window of 1000 rows.
func BenchmarkWindowAdd(b *testing.B) {
	const elements = 256
	ref := uniformReference(elements, 1000, 1)
	w := NewWindow(&ref.Tensors[0], 1000, time.Minute)
	samples := benchSamples(elements)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.Add(samples[i%len(samples)], now)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/elements, "ns/element")
}

// BenchmarkWindowAddBaseline is the plain way, for comparison in the same
// run: per element, sort.SearchFloat64s over its own edges slice and a
// counter slice of its own.
func BenchmarkWindowAddBaseline(b *testing.B) {
	const elements = 256
	ref := uniformReference(elements, 1000, 1)
	edges := make([][]float64, elements)
	counts := make([][]uint32, elements)
	for e := range edges {
		edges[e] = ref.Tensors[0].Elements[e].Edges
		counts[e] = make([]uint32, len(edges[e])+1)
	}
	samples := benchSamples(elements)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for e, v := range samples[i%len(samples)] {
			x := float64(v)
			if x != x {
				continue
			}
			// SearchFloat64s finds the first edge ≥ x; the bin is the
			// number of edges ≤ x.
			j := sort.SearchFloat64s(edges[e], x)
			if j < len(edges[e]) && edges[e][j] == x {
				j++
			}
			counts[e][j]++
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/elements, "ns/element")
}
