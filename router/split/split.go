package split

import (
	"errors"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"
)

// Buckets is the number of sticky buckets: a key's bucket is
// hash(salt, key) mod Buckets.
const Buckets = 10000

// Split is an immutable weighted split over n ≥ 1 targets, in the order
// given. It is safe for concurrent use.
type Split struct {
	// shares[i] is target i's normalised share.
	shares []float64
	// thresholds[i] is floor(2^64 × (shares[0] + … + shares[i])) for the
	// first n-1 targets: Random picks the first i with r < thresholds[i].
	thresholds []uint64
	// bounds[i] is b_{i+1}, the first bucket of target i+1: Sticky picks the
	// first i with bucket < bounds[i]. Strictly increasing, in [1, Buckets).
	bounds []int
}

// New returns the split for positive weights (they need not sum to 100;
// they are normalised). It errors when there are no targets, more than
// Buckets targets, or a weight that is not finite or not positive; the
// error names the weight's index ("weights[2]: ...").
func New(weights []float64) (*Split, error) {
	n := len(weights)
	if n == 0 {
		return nil, errors.New("no targets")
	}
	if n > Buckets {
		return nil, fmt.Errorf("%d targets exceed the %d sticky buckets", n, Buckets)
	}
	total := 0.0
	for i, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("weights[%d]: %v is not finite", i, w)
		}
		if w <= 0 {
			return nil, fmt.Errorf("weights[%d]: %v is not positive", i, w)
		}
		total += w
	}
	// Finite weights can still sum past MaxFloat64. Scaling by a power of
	// two is exact, and 2^-14 < 1/Buckets ≤ 1/n keeps the sum finite.
	scale := 1.0
	if math.IsInf(total, 0) {
		scale = 0x1p-14
		total = 0
		for _, w := range weights {
			total += w * scale
		}
	}

	s := &Split{
		shares:     make([]float64, n),
		thresholds: make([]uint64, n-1),
		bounds:     make([]int, n-1),
	}
	prefix := 0.0
	for i, w := range weights {
		s.shares[i] = w * scale / total
		if i == n-1 {
			break
		}
		// The cumulative share is the prefix sum over the total rather than
		// a sum of shares, so that raising only the last weight lowers every
		// cumulative share (the prefix stays, the total grows): the ramp
		// property holds exactly, not just up to rounding.
		prefix += w * scale
		c := min(prefix/total, 1)
		s.thresholds[i] = toThreshold(c)
		s.bounds[i] = int(math.Round(Buckets * c))
	}
	// Give every target at least one bucket: push bounds up past their
	// predecessors, then down below their successors. Both passes are
	// monotone in the rounded bounds, so they keep the ramp property, and
	// n ≤ Buckets leaves room for both.
	prev := 0
	for i := range s.bounds {
		s.bounds[i] = max(s.bounds[i], prev+1)
		prev = s.bounds[i]
	}
	next := Buckets
	for i := len(s.bounds) - 1; i >= 0; i-- {
		s.bounds[i] = min(s.bounds[i], next-1)
		next = s.bounds[i]
	}
	return s, nil
}

// toThreshold returns floor(2^64 × c) for c in [0, 1], saturating at
// MaxUint64.
func toThreshold(c float64) uint64 {
	f := math.Ldexp(c, 64)
	if f >= 0x1p64 {
		return math.MaxUint64
	}
	return uint64(f)
}

// Len returns the number of targets.
func (s *Split) Len() int { return len(s.shares) }

// Share returns target i's normalised share, in [0, 1]: its weight over
// the sum of the weights. It panics when i is not in [0, Len()).
func (s *Split) Share(i int) float64 { return s.shares[i] }

// Random picks a target for a request without a key, from r: a uniform
// uint64 the caller draws with math/rand/v2's rand.Uint64, which has no
// global lock. Target i is picked for a fraction Share(i) of all r.
// It does not allocate.
func (s *Split) Random(r uint64) int {
	t := s.thresholds
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r < t[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// Bucket returns a key's bucket in [0, Buckets): XXH64 (seed 0) of salt,
// a 0 byte and key, mod Buckets. It is a pure function of salt and key,
// stable across processes, machines and Go versions, and it does not
// allocate.
func Bucket(salt, key string) int {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(salt)
	sep := [1]byte{0}
	_, _ = d.Write(sep[:])
	_, _ = d.WriteString(key)
	return int(d.Sum64() % Buckets)
}

// Sticky picks the target that owns bucket: target 0 owns [0, b_1),
// target i owns [b_i, b_{i+1}), the last target [b_{n-1}, Buckets) (see
// the package doc for the bounds). A bucket below 0 goes to target 0 and
// one at or above Buckets to the last target. It does not allocate.
func (s *Split) Sticky(bucket int) int {
	b := s.bounds
	lo, hi := 0, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bucket < b[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}
