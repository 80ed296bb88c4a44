package drift

import (
	"math"
	"slices"
	"time"
)

// Window is the live sliding window of one tensor: the counts of its recent
// samples in the bins of its reference, kept as a ring of Chunks chunks so
// that its memory is fixed whatever the window size (see the package doc).
//
// A Window is owned by one goroutine: it is not safe for concurrent use.
type Window struct {
	ref        *TensorReference
	prediction bool
	elements   int // elements of a sample; 1 for a prediction
	stride     int // bins per element: the most bins of an element (classes for a prediction)
	// edges holds stride-1 edges per element, the element's own followed by
	// NaN padding (no value is ≥ NaN, so padding is never counted).
	edges  []float64
	nedges []int     // the element's own edges
	refs   []float64 // reference counts, stride per element, 0-padded
	refMax int64     // the most finite reference values of an element

	chunkRows int
	maxAge    time.Duration
	counts    []uint32 // Chunks × elements × stride
	nan       []uint32 // Chunks × elements
	rows      [Chunks]int
	newest    [Chunks]time.Time
	first     int   // ring index of the oldest live chunk
	live      int   // live chunks, 0..Chunks
	total     int64 // samples in the live chunks
}

// NewWindow returns an empty window over the bins of ref (not nil, and not
// changed while the window lives) that holds up to rows samples, in Chunks
// chunks of max(rows/Chunks, 1) samples, no older than maxAge (0: no time
// bound; see Expire).
func NewWindow(ref *TensorReference, rows int, maxAge time.Duration) *Window {
	w := &Window{
		ref:        ref,
		prediction: ref.Kind == KindPrediction,
		chunkRows:  max(rows/Chunks, 1),
		maxAge:     maxAge,
	}
	if w.prediction {
		w.elements, w.stride = 1, len(ref.Classes)
		w.refs = slices.Clone(ref.Classes)
		w.refMax = int64(math.Round(sum(ref.Classes)))
	} else {
		w.elements, w.stride = len(ref.Elements), 1
		for _, e := range ref.Elements {
			w.stride = max(w.stride, len(e.Edges)+1, len(e.Counts))
		}
		ne := w.stride - 1
		w.edges = make([]float64, w.elements*ne)
		w.nedges = make([]int, w.elements)
		w.refs = make([]float64, w.elements*w.stride)
		for i, e := range ref.Elements {
			pad := w.edges[i*ne : (i+1)*ne]
			n := copy(pad, e.Edges)
			for j := n; j < ne; j++ {
				pad[j] = math.NaN()
			}
			w.nedges[i] = n
			copy(w.refs[i*w.stride:(i+1)*w.stride], e.Counts)
			w.refMax = max(w.refMax, int64(math.Round(sum(e.Counts))))
		}
	}
	w.counts = make([]uint32, Chunks*w.elements*w.stride)
	w.nan = make([]uint32, Chunks*w.elements)
	return w
}

// next makes room for one more sample at time now and returns the ring
// index of the chunk it goes in.
func (w *Window) next(now time.Time) int {
	var c int
	switch {
	case w.live == 0:
		c = w.first
		w.start(c, now)
	case w.rows[(w.first+w.live-1)%Chunks] >= w.chunkRows:
		if w.live == Chunks {
			w.drop()
		}
		c = (w.first + w.live) % Chunks
		w.start(c, now)
	default:
		c = (w.first + w.live - 1) % Chunks
		if now.After(w.newest[c]) {
			w.newest[c] = now
		}
	}
	w.rows[c]++
	w.total++
	return c
}

// start makes ring slot c the newest live chunk, empty.
func (w *Window) start(c int, now time.Time) {
	clear(w.counts[c*w.elements*w.stride : (c+1)*w.elements*w.stride])
	clear(w.nan[c*w.elements : (c+1)*w.elements])
	w.rows[c] = 0
	w.newest[c] = now
	w.live++
}

// drop forgets the oldest live chunk.
func (w *Window) drop() {
	w.total -= int64(w.rows[w.first])
	w.rows[w.first] = 0
	w.first = (w.first + 1) % Chunks
	w.live--
}

// Add adds one sample of an input or output tensor, taken at time now: its
// first Elements values, each counted in its element's bin; a NaN, or an
// element the sample is too short for, is counted apart (see NaN). It
// does nothing for a prediction tensor, and does not allocate.
func (w *Window) Add(sample []float32, now time.Time) {
	if w.prediction {
		return
	}
	c := w.next(now)
	bins := w.elements * w.stride
	counts := w.counts[c*bins : (c+1)*bins]
	nan := w.nan[c*w.elements : (c+1)*w.elements]
	ne := w.stride - 1
	n := min(len(sample), w.elements)
	for e, v := range sample[:n] {
		x := float64(v)
		if x != x {
			nan[e]++
			continue
		}
		counts[e*w.stride+upperBound(w.edges[e*ne:e*ne+ne], x)]++
	}
	for e := n; e < w.elements; e++ {
		nan[e]++
	}
}

// AddClass adds one predicted class of a prediction tensor, taken at time
// now. It ignores a class outside [0, Classes), and a tensor that is not a
// prediction.
func (w *Window) AddClass(class int, now time.Time) {
	if !w.prediction || class < 0 || class >= w.stride {
		return
	}
	c := w.next(now)
	w.counts[c*w.stride+class]++
}

// Expire drops the chunks whose newest sample is older than the window's
// maxAge at time now, oldest first; it does nothing without a maxAge.
func (w *Window) Expire(now time.Time) {
	if w.maxAge <= 0 {
		return
	}
	for w.live > 0 && now.Sub(w.newest[w.first]) > w.maxAge {
		w.drop()
	}
}

// Samples returns the number of samples in the window now.
func (w *Window) Samples() int64 {
	return w.total
}

// NaN returns how many samples in the window now have element missing or
// NaN (always 0 for a prediction tensor).
func (w *Window) NaN(element int) int64 {
	if element < 0 || element >= w.elements {
		return 0
	}
	var n int64
	for i := range w.live {
		n += int64(w.nan[(w.first+i)%Chunks*w.elements+element])
	}
	return n
}

// sums returns the window's counts, summed over the live chunks: stride
// per element.
func (w *Window) sums() []float64 {
	bins := w.elements * w.stride
	out := make([]float64, bins)
	for i := range w.live {
		c := (w.first + i) % Chunks
		for j, n := range w.counts[c*bins : (c+1)*bins] {
			out[j] += float64(n)
		}
	}
	return out
}

// Compare compares the window with its reference and decides, as the
// package doc says.
func (w *Window) Compare() Result {
	win := w.sums()
	ev := newEvaluation(w.elements)
	for e := range w.elements {
		b := w.stride
		ev.compare(e, w.refs[e*b:(e+1)*b], win[e*b:(e+1)*b], 0)
	}
	return ev.result(w.total, w.refMax)
}

// CompareWindows compares the live window of a candidate model version with
// the live window of a baseline (stable) version of the same tensor, the
// baseline in the role of the reference, and decides as Compare does, with
// one more condition: an element is tested only when both windows hold at
// least MinSamples of its values. When the two windows' references have
// different edges, the candidate's counts are mapped onto the baseline's
// bins by linear interpolation of the candidate's binned CDF: each inner
// bin's count spread evenly between its edges, the counts of the two outer
// open bins as point masses at the first and last edge. Windows of
// different kinds or sizes have nothing in common: nothing is tested.
func CompareWindows(candidate, baseline *Window) Result {
	if candidate.prediction != baseline.prediction || candidate.elements != baseline.elements ||
		(candidate.prediction && candidate.stride != baseline.stride) {
		return Result{Samples: candidate.total, ReferenceSamples: baseline.total, PValue: 1}
	}
	cand, base := candidate.sums(), baseline.sums()
	ev := newEvaluation(baseline.elements)
	q := make([]float64, baseline.stride)
	for e := range baseline.elements {
		p := base[e*baseline.stride : (e+1)*baseline.stride]
		c := cand[e*candidate.stride : (e+1)*candidate.stride]
		if baseline.prediction {
			copy(q, c)
		} else {
			remap(q, baseline.edgesOf(e), candidate.edgesOf(e), c)
		}
		ev.compare(e, p, q, MinSamples)
	}
	return ev.result(candidate.total, baseline.total)
}

// edgesOf returns element e's own edges, without padding.
func (w *Window) edgesOf(e int) []float64 {
	ne := w.stride - 1
	return w.edges[e*ne : e*ne+w.nedges[e]]
}

// remap writes into dst (len(dst) ≥ len(to)+1; the rest is zeroed) the
// counts src, binned by the edges from, mapped onto the bins of the edges
// to: identical edges copy; otherwise bin j of to gets the candidate's mass
// below its upper edge minus the mass below its lower edge, by massBelow.
// Counts with no edges at all have no place: they map to nothing.
func remap(dst, to, from, src []float64) {
	clear(dst)
	if slices.Equal(to, from) {
		copy(dst, src[:len(from)+1])
		return
	}
	if len(from) == 0 {
		return
	}
	total := sum(src[:len(from)+1])
	prev := 0.0
	for j, edge := range to {
		m := massBelow(from, src, edge)
		dst[j] = max(m-prev, 0)
		prev = m
	}
	dst[len(to)] = max(total-prev, 0)
}

// massBelow is the mass strictly below x of the counts binned by edges,
// with each inner bin's count spread evenly over [edges[i-1], edges[i])
// and the outer bins' counts as point masses at edges[0] and at the last
// edge.
func massBelow(edges, counts []float64, x float64) float64 {
	if x <= edges[0] {
		return 0
	}
	m := counts[0]
	for i := 1; i < len(edges); i++ {
		lo, hi := edges[i-1], edges[i]
		if x >= hi {
			m += counts[i]
			continue
		}
		return m + counts[i]*(x-lo)/(hi-lo)
	}
	if x > edges[len(edges)-1] {
		m += counts[len(edges)]
	}
	return m
}

// upperBound returns x's bin: the number of edges ≤ x, edges sorted with
// any NaN padding at the end (NaN counts as no edge). It is a binary search
// whose steps are conditional (b2i) rather than branches: the bins of
// live values are not predictable, and a mispredicted branch costs more
// than the whole search.
func upperBound(edges []float64, x float64) int {
	if len(edges) == 0 {
		return 0
	}
	base, n := 0, len(edges)
	for n > 1 {
		half := n >> 1
		base += half * b2i(edges[base+half] <= x)
		n -= half
	}
	return base + b2i(edges[base] <= x)
}

// b2i is 1 for true; the compiler makes it a SETcc, not a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CompareCounts compares a candidate's counts with a baseline's, element
// by element, both binned alike (counts[e] are element e's bins, the
// same number on both sides): the statistics and decision rule of
// CompareWindows, for counts gathered elsewhere, such as every
// replica's from Prometheus. Samples and ReferenceSamples are the most
// counts of an element on each side.
func CompareCounts(candidate, baseline [][]float64) Result {
	if len(candidate) != len(baseline) {
		return Result{PValue: 1}
	}
	var samples, refSamples float64
	ev := newEvaluation(len(baseline))
	for e := range baseline {
		if len(candidate[e]) != len(baseline[e]) {
			return Result{PValue: 1}
		}
		samples, refSamples = max(samples, sum(candidate[e])), max(refSamples, sum(baseline[e]))
		ev.compare(e, baseline[e], candidate[e], MinSamples)
	}
	return ev.result(int64(math.Round(samples)), int64(math.Round(refSamples)))
}
