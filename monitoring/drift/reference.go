package drift

import (
	"fmt"
	"math"
	"slices"
)

// Spec names one watched tensor and the size of its samples.
type Spec struct {
	// Kind is KindInput, KindOutput or KindPrediction.
	Kind string
	// Name is the tensor's name in the model's signature.
	Name string
	// Elements is the number of values of an input or output sample: the
	// first ones along the tensor's last axis.
	Elements int
	// Classes is the number of classes of a prediction tensor.
	Classes int
}

// Reference is the reference distribution of a model version's watched
// tensors: what the live windows are compared with. Its JSON form is the
// reference file described in the package doc.
type Reference struct {
	// Format is the file format, always Format.
	Format string `json:"format"`
	// Samples is the number of samples taken per tensor (the fewest, when
	// the tensors got different numbers).
	Samples int64 `json:"samples"`
	// Source says where the samples came from, for people: free text.
	Source string `json:"source,omitempty"`
	// ModelSHA256 is the hex SHA-256 of the model file the reference was
	// taken with, for people and tools: this package does not check it.
	ModelSHA256 string `json:"model_sha256,omitempty"`
	// Tensors holds one entry per watched tensor.
	Tensors []TensorReference `json:"tensors"`
}

// TensorReference is the reference of one tensor.
type TensorReference struct {
	// Kind is KindInput, KindOutput or KindPrediction.
	Kind string `json:"kind"`
	// Name is the tensor's name.
	Name string `json:"name"`
	// Elements holds, for an input or output, one entry per element.
	Elements []ElementReference `json:"elements,omitempty"`
	// Classes holds, for a prediction, the reference count per class.
	Classes []float64 `json:"classes,omitempty"`
}

// ElementReference is the reference of one element of an input or output:
// its bin edges and the reference count in each bin. A value x is in bin
// i when i edges are ≤ x, so len(Counts) == len(Edges)+1.
type ElementReference struct {
	// Edges are strictly increasing and finite.
	Edges []float64 `json:"edges"`
	// Counts are the reference counts per bin, finite and ≥ 0.
	Counts []float64 `json:"counts"`
}

// Tensor returns the reference of the tensor of that kind and name, or nil.
func (r *Reference) Tensor(kind, name string) *TensorReference {
	for i := range r.Tensors {
		if r.Tensors[i].Kind == kind && r.Tensors[i].Name == name {
			return &r.Tensors[i]
		}
	}
	return nil
}

// Check reports whether the reference fits specs: every spec has a tensor
// of its kind and name with the same number of elements (input, output) or
// classes (prediction). The error names the first spec that does not fit.
func (r *Reference) Check(specs []Spec) error {
	for _, s := range specs {
		t := r.Tensor(s.Kind, s.Name)
		switch {
		case t == nil:
			return fmt.Errorf("%s %q: not in the reference", s.Kind, s.Name)
		case s.Kind == KindPrediction && len(t.Classes) != s.Classes:
			return fmt.Errorf("%s %q: the reference has %d classes, want %d", s.Kind, s.Name, len(t.Classes), s.Classes)
		case s.Kind != KindPrediction && len(t.Elements) != s.Elements:
			return fmt.Errorf("%s %q: the reference has %d elements, want %d", s.Kind, s.Name, len(t.Elements), s.Elements)
		}
	}
	return nil
}

// Builder accumulates the reference samples of a set of tensors and builds
// their Reference. It keeps the samples themselves, to take quantiles: its
// memory is bounded by rows × Elements float32 values (4 bytes each) per
// input or output tensor, allocated at the tensor's first sample, and
// Classes counts per prediction tensor.
//
// A Builder is not safe for concurrent use.
type Builder struct {
	specs  []Spec
	rows   int
	values [][]float32 // per input/output tensor: samples one after the other
	counts [][]float64 // per prediction tensor: count per class
	taken  []int       // samples taken per tensor
}

// NewBuilder returns a builder for the tensors of specs that takes the
// first rows samples of each (at least 1).
func NewBuilder(specs []Spec, rows int) *Builder {
	b := &Builder{
		specs:  slices.Clone(specs),
		rows:   max(rows, 1),
		values: make([][]float32, len(specs)),
		counts: make([][]float64, len(specs)),
		taken:  make([]int, len(specs)),
	}
	b.reset()
	return b
}

func (b *Builder) reset() {
	for i, s := range b.specs {
		b.values[i] = nil
		b.counts[i] = nil
		if s.Kind == KindPrediction {
			b.counts[i] = make([]float64, max(s.Classes, 0))
		}
		b.taken[i] = 0
	}
}

// Add adds one sample of the input or output tensor specs[tensor] (an
// index in the specs given to NewBuilder): its first Elements values; an
// element the sample is too short for is missing, like a NaN. It does
// nothing once the tensor has rows samples, or for a prediction tensor.
// NaN and infinite values are kept out of the reference bins (an
// element's reference counts sum to its finite values).
func (b *Builder) Add(tensor int, sample []float32) {
	s := b.specs[tensor]
	if s.Kind == KindPrediction || b.taken[tensor] >= b.rows {
		return
	}
	b.taken[tensor]++
	if s.Elements <= 0 {
		return
	}
	if b.values[tensor] == nil {
		b.values[tensor] = make([]float32, 0, b.rows*s.Elements)
	}
	n := min(len(sample), s.Elements)
	v := append(b.values[tensor], sample[:n]...)
	for range s.Elements - n {
		v = append(v, float32(math.NaN()))
	}
	b.values[tensor] = v
}

// AddClass adds one predicted class of the prediction tensor specs[tensor].
// It ignores a class outside [0, Classes), and does nothing once the
// tensor has rows samples or for a tensor that is not a prediction.
func (b *Builder) AddClass(tensor int, class int) {
	s := b.specs[tensor]
	if s.Kind != KindPrediction || b.taken[tensor] >= b.rows || class < 0 || class >= s.Classes {
		return
	}
	b.counts[tensor][class]++
	b.taken[tensor]++
}

// Full reports whether every tensor has its rows samples.
func (b *Builder) Full() bool {
	for _, n := range b.taken {
		if n < b.rows {
			return false
		}
	}
	return true
}

// Build returns the reference of the samples taken so far (Full or not),
// then releases them: the builder starts over, empty.
func (b *Builder) Build() *Reference {
	r := &Reference{Format: Format, Tensors: make([]TensorReference, len(b.specs))}
	if len(b.taken) > 0 {
		r.Samples = int64(slices.Min(b.taken))
	}
	var keys, tmp []uint32
	var column []float64
	for i, s := range b.specs {
		t := TensorReference{Kind: s.Kind, Name: s.Name}
		switch {
		case s.Kind == KindPrediction:
			if len(b.counts[i]) > 0 {
				t.Classes = b.counts[i]
			}
		case s.Elements > 0:
			t.Elements = make([]ElementReference, s.Elements)
			for e := range t.Elements {
				keys = keys[:0]
				for j := e; j < len(b.values[i]); j += s.Elements {
					if x := b.values[i][j]; x-x == 0 { // finite
						keys = append(keys, sortKey(x))
					}
				}
				tmp = slices.Grow(tmp[:0], len(keys))[:len(keys)]
				radixSort(keys, tmp)
				column = column[:0]
				for _, k := range keys {
					column = append(column, float64(fromSortKey(k)))
				}
				t.Elements[e] = elementReference(column)
			}
		}
		r.Tensors[i] = t
	}
	b.reset()
	return r
}

// elementReference returns the bins of the finite reference values x
// (sorted in place if they are not) and their counts: edges are the sorted
// unique set of the minimum, the k/Bins quantiles (k = 1..Bins-1, type 7),
// and the value just above the maximum.
func elementReference(x []float64) ElementReference {
	if len(x) == 0 {
		return ElementReference{Edges: []float64{}, Counts: []float64{0}}
	}
	if !slices.IsSorted(x) {
		slices.Sort(x)
	}
	edges := make([]float64, 0, Bins+1)
	edges = append(edges, x[0])
	for k := 1; k < Bins; k++ {
		edges = append(edges, quantile(x, float64(k)/Bins))
	}
	edges = append(edges, math.Nextafter(x[len(x)-1], math.Inf(1)))
	slices.Sort(edges)
	edges = slices.Compact(edges)
	counts := make([]float64, len(edges)+1)
	for _, v := range x {
		counts[upperBound(edges, v)]++
	}
	return ElementReference{Edges: edges, Counts: counts}
}

// quantile is the type-7 (linear interpolation) quantile of the sorted
// values x at probability q: with h = (n−1)·q, x[⌊h⌋] + (h−⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
func quantile(x []float64, q float64) float64 {
	h := float64(len(x)-1) * q
	lo := int(math.Floor(h))
	if lo >= len(x)-1 {
		return x[len(x)-1]
	}
	a, b := x[lo], x[lo+1]
	v := a + (h-float64(lo))*(b-a)
	return min(max(v, a), b)
}

// sortKey maps a float32 to a uint32 in the same order (−0 just below +0),
// for radixSort.
func sortKey(x float32) uint32 {
	b := math.Float32bits(x)
	if b>>31 != 0 {
		return ^b
	}
	return b | 1<<31
}

// fromSortKey is the inverse of sortKey.
func fromSortKey(k uint32) float32 {
	if k>>31 != 0 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}

// radixSort sorts keys, using tmp (as long) as scratch: four stable passes
// of one byte each, a few times faster than a comparison sort for the
// columns of a reference.
func radixSort(keys, tmp []uint32) {
	src, dst := keys, tmp
	for shift := 0; shift < 32; shift += 8 {
		var start [257]int
		for _, k := range src {
			start[(k>>shift)&0xff+1]++
		}
		for d := 1; d < len(start); d++ {
			start[d] += start[d-1]
		}
		for _, k := range src {
			d := (k >> shift) & 0xff
			dst[start[d]] = k
			start[d]++
		}
		src, dst = dst, src
	}
	// Four passes: the sorted keys are back in keys.
}
