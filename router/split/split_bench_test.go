package split

import (
	"math/rand/v2"
	"testing"
)

// b.Loop keeps the results of the calls in its body alive, so the
// benchmarks need no sink.

func BenchmarkRandom(b *testing.B) {
	s, err := New([]float64{50, 30, 20})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s.Random(rand.Uint64())
	}
}

func BenchmarkBucketSticky(b *testing.B) {
	s, err := New([]float64{90, 10})
	if err != nil {
		b.Fatal(err)
	}
	const key = "0123456789abcdef" // 16 bytes
	for b.Loop() {
		s.Sticky(Bucket("resnet50", key))
	}
}
