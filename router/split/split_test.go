package split

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// owned returns how many buckets each target of s owns, by asking Sticky
// about every bucket.
func owned(s *Split) []int {
	counts := make([]int, s.Len())
	for b := range Buckets {
		counts[s.Sticky(b)]++
	}
	return counts
}

// randomKey returns a random string of 8 to 32 arbitrary bytes: long
// enough that repeated keys are vanishingly rare.
func randomKey(r *rand.Rand) string {
	b := make([]byte, 8+r.IntN(25))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

func mustNew(t *testing.T, weights []float64) *Split {
	t.Helper()
	s, err := New(weights)
	if err != nil {
		t.Fatalf("New(%v): %v", weights, err)
	}
	return s
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []float64
		want    string
	}{
		{name: "nil", weights: nil, want: "no targets"},
		{name: "empty", weights: []float64{}, want: "no targets"},
		{name: "zero", weights: []float64{90, 0}, want: "weights[1]: 0 is not positive"},
		{name: "negative", weights: []float64{-1, 1}, want: "weights[0]: -1 is not positive"},
		{name: "negative zero", weights: []float64{1, 1, math.Copysign(0, -1)}, want: "weights[2]: -0 is not positive"},
		{name: "NaN", weights: []float64{1, math.NaN()}, want: "weights[1]: NaN is not finite"},
		{name: "+Inf", weights: []float64{math.Inf(1)}, want: "weights[0]: +Inf is not finite"},
		{name: "-Inf", weights: []float64{1, 2, 3, math.Inf(-1)}, want: "weights[3]: -Inf is not finite"},
		{name: "first bad weight wins", weights: []float64{1, 0, math.NaN()}, want: "weights[1]: 0 is not positive"},
		{name: "too many targets", weights: ones(Buckets + 1), want: "10001 targets exceed the 10000 sticky buckets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(tt.weights)
			if err == nil {
				t.Fatalf("New(%v) = %v, nil; want error %q", tt.weights, s, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("New(%v) error = %q, want %q", tt.weights, got, tt.want)
			}
		})
	}
}

func ones(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

func TestNewShares(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []float64
		want    []float64
	}{
		{name: "one target", weights: []float64{7}, want: []float64{1}},
		{name: "percent", weights: []float64{90, 10}, want: []float64{0.9, 0.1}},
		{name: "not summing to 100", weights: []float64{1, 3}, want: []float64{0.25, 0.75}},
		{name: "three equal", weights: []float64{1, 1, 1}, want: []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}},
		{name: "sum overflows", weights: []float64{math.MaxFloat64, math.MaxFloat64}, want: []float64{0.5, 0.5}},
		{name: "tiny", weights: []float64{5e-324, 5e-324}, want: []float64{0.5, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			if got := s.Len(); got != len(tt.want) {
				t.Fatalf("Len() = %d, want %d", got, len(tt.want))
			}
			for i, want := range tt.want {
				if got := s.Share(i); math.Abs(got-want) > 1e-15 {
					t.Errorf("Share(%d) = %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestStickyBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []float64
		want    []int // buckets owned by each target
	}{
		{name: "one target", weights: []float64{3}, want: []int{10000}},
		{name: "90/10", weights: []float64{90, 10}, want: []int{9000, 1000}},
		{name: "10/90", weights: []float64{10, 90}, want: []int{1000, 9000}},
		{name: "1/9999", weights: []float64{1, 9999}, want: []int{1, 9999}},
		{name: "9999/1", weights: []float64{9999, 1}, want: []int{9999, 1}},
		{name: "thirds round the middle bound up", weights: []float64{1, 1, 1}, want: []int{3333, 3334, 3333}},
		{name: "50/30/20", weights: []float64{50, 30, 20}, want: []int{5000, 3000, 2000}},
		{name: "half a bucket rounds away from zero", weights: []float64{1, 19999}, want: []int{1, 9999}},
		{name: "below half a bucket still gets one first", weights: []float64{1, 1e9}, want: []int{1, 9999}},
		{name: "below half a bucket still gets one last", weights: []float64{1e9, 1}, want: []int{9999, 1}},
		{name: "canary at 0.0001", weights: []float64{0.0001, 100}, want: []int{1, 9999}},
		{name: "tiny heads", weights: []float64{1e-9, 1e-9, 1e-9, 1}, want: []int{1, 1, 1, 9997}},
		{name: "tiny tails", weights: []float64{1, 1e-9, 1e-9, 1e-9}, want: []int{9997, 1, 1, 1}},
		{name: "tiny middle", weights: []float64{1, 1e-9, 1e-9, 1}, want: []int{5000, 1, 1, 4998}},
		{name: "subnormal against huge", weights: []float64{5e-324, math.MaxFloat64, 5e-324}, want: []int{1, 9998, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			got := owned(s)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("buckets owned = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStickyBucketsEveryTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []float64
	}{
		{name: "as many targets as buckets", weights: ones(Buckets)},
		{name: "one heavy, many light", weights: append([]float64{1e12}, ones(999)...)},
		{name: "many light, one heavy", weights: append(ones(999), 1e12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			got := owned(s)
			for i, c := range got {
				if c < 1 {
					t.Fatalf("target %d owns %d buckets, want at least 1", i, c)
				}
			}
		})
	}
}

// TestStickyRangesRandomWeights checks, for random weight vectors, that the
// ranges are consecutive in list order, that every target owns at least one
// bucket, and that each target owns round-to-nearest of its share where no
// target needed a bucket it would not have had.
func TestStickyRangesRandomWeights(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + r.IntN(8)
		w := make([]float64, n)
		for i := range w {
			w[i] = math.Exp(r.NormFloat64() * 3) // spans many orders of magnitude
		}
		s := mustNew(t, w)
		prev := 0
		for b := range Buckets {
			got := s.Sticky(b)
			if got < prev || got > prev+1 {
				t.Fatalf("weights %v: Sticky(%d) = %d after target %d; want consecutive ranges", w, b, got, prev)
			}
			prev = got
		}
		if prev != n-1 {
			t.Fatalf("weights %v: Sticky(%d) = %d, want the last target %d", w, Buckets-1, prev, n-1)
		}
		counts := owned(s)
		// Where a rounded range is empty, New moved bounds to give it a
		// bucket, and the neighbours may be off by more than one.
		adjusted := false
		cum, prevBound := 0.0, 0.0
		for i := range n {
			cum += s.Share(i)
			bound := math.Round(Buckets * cum)
			if i == n-1 {
				bound = Buckets
			}
			if bound <= prevBound {
				adjusted = true
			}
			prevBound = bound
		}
		for i, c := range counts {
			if c < 1 {
				t.Fatalf("weights %v: target %d owns %d buckets, want at least 1", w, i, c)
			}
			if !adjusted && math.Abs(float64(c)-Buckets*s.Share(i)) > 1+1e-9 {
				t.Errorf("weights %v: target %d owns %d buckets, want within 1 of %v", w, i, c, Buckets*s.Share(i))
			}
		}
	}
}

func TestStickyOutOfRange(t *testing.T) {
	t.Parallel()
	s := mustNew(t, []float64{50, 30, 20})
	tests := []struct {
		name   string
		bucket int
		want   int
	}{
		{name: "negative", bucket: -1, want: 0},
		{name: "min int", bucket: math.MinInt, want: 0},
		{name: "first", bucket: 0, want: 0},
		{name: "last of target 0", bucket: 4999, want: 0},
		{name: "first of target 1", bucket: 5000, want: 1},
		{name: "first of target 2", bucket: 8000, want: 2},
		{name: "last", bucket: Buckets - 1, want: 2},
		{name: "Buckets", bucket: Buckets, want: 2},
		{name: "max int", bucket: math.MaxInt, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := s.Sticky(tt.bucket); got != tt.want {
				t.Errorf("Sticky(%d) = %d, want %d", tt.bucket, got, tt.want)
			}
		})
	}
}

func TestRandomEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []float64
		r       uint64
		want    int
	}{
		{name: "one target, 0", weights: []float64{1}, r: 0, want: 0},
		{name: "one target, max", weights: []float64{1}, r: math.MaxUint64, want: 0},
		{name: "halves, 0", weights: []float64{1, 1}, r: 0, want: 0},
		{name: "halves, below half", weights: []float64{1, 1}, r: 1<<63 - 1, want: 0},
		{name: "halves, half", weights: []float64{1, 1}, r: 1 << 63, want: 1},
		{name: "halves, max", weights: []float64{1, 1}, r: math.MaxUint64, want: 1},
		{name: "quarters, third quarter", weights: []float64{1, 1, 1, 1}, r: 1<<63 + 1<<62, want: 3},
		{name: "quarters, end of second", weights: []float64{1, 1, 1, 1}, r: 1<<63 - 1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			if got := s.Random(tt.r); got != tt.want {
				t.Errorf("Random(%#x) = %d, want %d", tt.r, got, tt.want)
			}
		})
	}
}

func TestRandomAccuracy(t *testing.T) {
	t.Parallel()
	const decisions = 100_000
	tests := []struct {
		name    string
		weights []float64
	}{
		{name: "90/10", weights: []float64{90, 10}},
		{name: "50/30/20", weights: []float64{50, 30, 20}},
		{name: "1/1/1/1", weights: []float64{1, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			r := rand.New(rand.NewPCG(3, 4))
			counts := make([]int, s.Len())
			for range decisions {
				counts[s.Random(r.Uint64())]++
			}
			for i, c := range counts {
				got := float64(c) / decisions
				if want := s.Share(i); math.Abs(got-want) > 0.01 {
					t.Errorf("target %d got %.4f of decisions, want %.4f ± 0.01", i, got, want)
				}
			}
		})
	}
}

func TestStickyAccuracy(t *testing.T) {
	t.Parallel()
	const keys = 100_000
	tests := []struct {
		name    string
		weights []float64
		key     func(r *rand.Rand, i int) string
	}{
		{name: "90/10 sequential keys", weights: []float64{90, 10}, key: func(_ *rand.Rand, i int) string { return fmt.Sprintf("user-%d", i) }},
		{name: "90/10 random keys", weights: []float64{90, 10}, key: func(r *rand.Rand, _ int) string { return randomKey(r) }},
		{name: "50/30/20 sequential keys", weights: []float64{50, 30, 20}, key: func(_ *rand.Rand, i int) string { return fmt.Sprintf("user-%d", i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			r := rand.New(rand.NewPCG(5, 6))
			counts := make([]int, s.Len())
			for i := range keys {
				counts[s.Sticky(Bucket("model-a", tt.key(r, i)))]++
			}
			for i, c := range counts {
				got := float64(c) / keys
				if want := s.Share(i); math.Abs(got-want) > 0.01 {
					t.Errorf("target %d got %.4f of keys, want %.4f ± 0.01", i, got, want)
				}
			}
		})
	}
}

func TestBucketGolden(t *testing.T) {
	t.Parallel()
	// Pinned values: a change here reassigns every user in every running
	// rollout, so it must never happen by accident.
	tests := []struct {
		name string
		salt string
		key  string
		want int
	}{
		{name: "empty", salt: "", key: "", want: 7544},
		{name: "model and user", salt: "resnet50", key: "user-42", want: 3143},
		{name: "long key", salt: "bert", key: strings.Repeat("k", 100), want: 1740},
		{name: "binary key", salt: "s", key: "\x00\xff\x01", want: 9675},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Bucket(tt.salt, tt.key)
			if got != tt.want {
				t.Errorf("Bucket(%q, %q) = %d, want %d", tt.salt, tt.key, got, tt.want)
			}
			// The definition: XXH64 of salt, a 0 byte, then key.
			if def := int(xxhash.Sum64String(tt.salt+"\x00"+tt.key) % Buckets); got != def {
				t.Errorf("Bucket(%q, %q) = %d, want XXH64(salt 0x00 key) mod Buckets = %d", tt.salt, tt.key, got, def)
			}
		})
	}
}

func TestBucketSeparatesSaltFromKey(t *testing.T) {
	t.Parallel()
	// Without the 0 byte these would hash the same bytes "abc".
	a, b := Bucket("ab", "c"), Bucket("a", "bc")
	if a == b {
		t.Errorf("Bucket(%q, %q) = Bucket(%q, %q) = %d, want different buckets", "ab", "c", "a", "bc", a)
	}
}

func TestStickiness(t *testing.T) {
	t.Parallel()
	weights := []float64{70, 20, 10}
	s1, s2 := mustNew(t, weights), mustNew(t, weights)
	r := rand.New(rand.NewPCG(7, 8))
	for range 20_000 {
		salt, key := randomKey(r), randomKey(r)
		b := Bucket(salt, key)
		if b < 0 || b >= Buckets {
			t.Fatalf("Bucket(%q, %q) = %d, want in [0, %d)", salt, key, b, Buckets)
		}
		if again := Bucket(salt, key); again != b {
			t.Fatalf("Bucket(%q, %q) = %d, then %d", salt, key, b, again)
		}
		// The same bytes built afresh, so no pointer is shared.
		if fresh := Bucket(string([]byte(salt)), string([]byte(key))); fresh != b {
			t.Fatalf("Bucket(%q, %q) = %d, then %d on a copy", salt, key, b, fresh)
		}
		t1, t2 := s1.Sticky(b), s2.Sticky(b)
		if t1 != t2 {
			t.Fatalf("bucket %d: target %d on one split, %d on another from the same weights", b, t1, t2)
		}
		if again := s1.Sticky(b); again != t1 {
			t.Fatalf("Sticky(%d) = %d, then %d", b, t1, again)
		}
	}
}

// ramp checks that every bucket's target index never decreases from one
// split to the next and that a bucket on the last target stays there.
func ramp(t *testing.T, steps [][]float64) {
	t.Helper()
	splits := make([]*Split, len(steps))
	for i, w := range steps {
		splits[i] = mustNew(t, w)
	}
	for b := range Buckets {
		for k := 1; k < len(splits); k++ {
			before, after := splits[k-1].Sticky(b), splits[k].Sticky(b)
			last := splits[k].Len() - 1
			if after < before {
				t.Fatalf("bucket %d: target %d at %v, then %d at %v; want never toward an earlier target", b, before, steps[k-1], after, steps[k])
			}
			if before == last && after != last {
				t.Fatalf("bucket %d: on the last target at %v, then target %d at %v", b, steps[k-1], after, steps[k])
			}
		}
	}
}

func TestMonotoneRampTwoTargets(t *testing.T) {
	t.Parallel()
	canary := []float64{5, 10, 25, 50, 100}
	steps := make([][]float64, len(canary))
	for i, w := range canary {
		steps[i] = []float64{max(100-w, 0.0001), w}
	}
	splits := make([]*Split, len(steps))
	for i, w := range steps {
		splits[i] = mustNew(t, w)
	}

	t.Run("keys", func(t *testing.T) {
		t.Parallel()
		r := rand.New(rand.NewPCG(9, 10))
		for range 20_000 {
			key := randomKey(r)
			b := Bucket("model-a", key)
			onCanary := false
			for k, s := range splits {
				got := s.Sticky(b)
				if onCanary && got != 1 {
					t.Fatalf("key %q: on the canary at an earlier step, then target %d at %v", key, got, steps[k])
				}
				onCanary = got == 1
			}
		}
	})
	t.Run("every bucket", func(t *testing.T) {
		t.Parallel()
		ramp(t, steps)
	})
	t.Run("fine steps", func(t *testing.T) {
		t.Parallel()
		// Canary weights in steps of a quarter of a bucket, from almost
		// nothing to everything, so that every rounding and clamping case
		// is crossed: with the stable weight fixed, and with the weights
		// summing to 100. With two targets the property is that the first
		// canary bucket, bounds[0], never rises; checking it directly
		// spares walking all the buckets of 80,000 splits.
		form := []struct {
			name    string
			weights func(w float64) []float64
		}{
			{name: "stable fixed", weights: func(w float64) []float64 { return []float64{100, w} }},
			{name: "summing to 100", weights: func(w float64) []float64 { return []float64{max(100-w, 1e-9), w} }},
		}
		for _, f := range form {
			prev, prevW := Buckets, 0.0
			for w := 1e-9; w <= 100; w += 0.0025 {
				s := mustNew(t, f.weights(w))
				if got := s.bounds[0]; got > prev {
					t.Fatalf("%s: canary from bucket %d at %v, then from %d at %v", f.name, prev, f.weights(prevW), got, f.weights(w))
				}
				prev, prevW = s.bounds[0], w
			}
		}
	})
	t.Run("lowering the canary moves keys only back to stable", func(t *testing.T) {
		t.Parallel()
		for b := range Buckets {
			for k := len(splits) - 1; k > 0; k-- {
				before, after := splits[k].Sticky(b), splits[k-1].Sticky(b)
				if before == 0 && after != 0 {
					t.Fatalf("bucket %d: on stable at %v, then target %d at %v", b, steps[k], after, steps[k-1])
				}
			}
		}
	})
}

func TestMonotoneRampLastOfThree(t *testing.T) {
	t.Parallel()
	last := []float64{1e-9, 5, 10, 20, 40, 80, 160, 1e6}
	steps := make([][]float64, len(last))
	for i, w := range last {
		steps[i] = []float64{50, 30, w}
	}

	t.Run("every bucket", func(t *testing.T) {
		t.Parallel()
		ramp(t, steps)
	})
	t.Run("keys, others scaled", func(t *testing.T) {
		t.Parallel()
		// The same ramp with the others' weights scaled by a common
		// factor at each step: only the relative weights matter.
		scaled := make([]*Split, len(steps))
		for i, w := range steps {
			f := float64(i + 1)
			scaled[i] = mustNew(t, []float64{w[0] * f, w[1] * f, w[2] * f})
		}
		r := rand.New(rand.NewPCG(11, 12))
		for range 20_000 {
			key := fmt.Sprintf("user-%d", r.Uint64())
			b := Bucket("model-b", key)
			prev := 0
			for k, s := range scaled {
				got := s.Sticky(b)
				if got < prev {
					t.Fatalf("key %q: target %d at %v, then %d at %v", key, prev, steps[k-1], got, steps[k])
				}
				if prev == 2 && got != 2 {
					t.Fatalf("key %q: on the last target, then target %d at %v", key, got, steps[k])
				}
				prev = got
			}
		}
	})
	t.Run("earlier targets can trade keys", func(t *testing.T) {
		t.Parallel()
		// Documented: raising the last weight shrinks the earlier ranges
		// toward bucket 0, so some keys move from target 0 to target 1.
		a, b := mustNew(t, []float64{50, 30, 20}), mustNew(t, []float64{50, 30, 40})
		moved := 0
		for bucket := range Buckets {
			if a.Sticky(bucket) == 0 && b.Sticky(bucket) == 1 {
				moved++
			}
		}
		if moved == 0 {
			t.Errorf("no bucket moved from target 0 to target 1; the package doc says some do")
		}
	})
}

// TestNonLastChangeMovesKeysBack pins the documented limit of the ramp
// property: changing a target other than the last moves keys in both
// directions between the targets after it.
func TestNonLastChangeMovesKeysBack(t *testing.T) {
	t.Parallel()
	a, b := mustNew(t, []float64{50, 30, 20}), mustNew(t, []float64{60, 30, 20})
	moves := map[[2]int]int{}
	for bucket := range Buckets {
		if from, to := a.Sticky(bucket), b.Sticky(bucket); from != to {
			moves[[2]int{from, to}]++
		}
	}
	for _, m := range [][2]int{{1, 0}, {2, 1}} {
		if moves[m] == 0 {
			t.Errorf("moves = %v: none from target %d to target %d; the package doc says some move", moves, m[0], m[1])
		}
	}
}

func TestSaltsIndependent(t *testing.T) {
	t.Parallel()
	const keys = 100_000
	tests := []struct {
		name    string
		weights []float64
	}{
		{name: "50/50", weights: []float64{50, 50}},
		{name: "90/10", weights: []float64{90, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustNew(t, tt.weights)
			var joint [2][2]int
			for i := range keys {
				key := fmt.Sprintf("user-%d", i)
				joint[s.Sticky(Bucket("model-a", key))][s.Sticky(Bucket("model-b", key))]++
			}
			for a := range 2 {
				for b := range 2 {
					got := float64(joint[a][b]) / keys
					want := s.Share(a) * s.Share(b)
					if math.Abs(got-want) > 0.01 {
						t.Errorf("cell (salt A → %d, salt B → %d) got %.4f of keys, want %.4f ± 0.01", a, b, got, want)
					}
				}
			}
			// A simpler view of the same thing: among the keys on target 1
			// under salt A, salt B still sends Share(1) of them to target 1.
			onA := joint[1][0] + joint[1][1]
			got := float64(joint[1][1]) / float64(onA)
			if want := s.Share(1); math.Abs(got-want) > 0.01 {
				t.Errorf("P(salt B → 1 | salt A → 1) = %.4f, want %.4f ± 0.01", got, want)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts every goroutine's allocations.
	s := mustNew(t, []float64{50, 30, 20})
	salt, key := "model-a", "0123456789abcdef"
	long := strings.Repeat("k", 100) // crosses XXH64's 32-byte blocks
	r := rand.New(rand.NewPCG(13, 14))
	sink := 0
	tests := []struct {
		name string
		f    func()
	}{
		{name: "Random", f: func() { sink += s.Random(r.Uint64()) }},
		{name: "Bucket", f: func() { sink += Bucket(salt, key) }},
		{name: "Bucket long key", f: func() { sink += Bucket(salt, long) }},
		{name: "Sticky", f: func() { sink += s.Sticky(sink % Buckets) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(1000, tt.f); got != 0 {
				t.Errorf("%s allocates %v times per call, want 0", tt.name, got)
			}
		})
	}
	_ = sink
}
