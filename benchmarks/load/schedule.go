package load

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// maxScheduled bounds the requests of one open-loop run.
const maxScheduled = 20_000_000

// Schedule returns the intended send times of n open-loop requests at rate
// requests per second, as offsets from the start of the run: evenly spaced
// (request i at i/rate), or, when poisson is set, with independent
// exponential gaps of mean 1/rate drawn from a generator seeded with seed,
// so that the arrivals form a Poisson process and the same seed gives the
// same schedule.
func Schedule(rate float64, n int, poisson bool, seed uint64) ([]time.Duration, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("rate %v: want a positive number of requests per second", rate)
	}
	if n < 0 || n > maxScheduled {
		return nil, fmt.Errorf("%d requests: want 0 to %d", n, maxScheduled)
	}
	out := make([]time.Duration, n)
	if !poisson {
		for i := range out {
			out[i] = time.Duration(float64(i) / rate * float64(time.Second))
		}
		return out, nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var t float64 // seconds
	for i := range out {
		out[i] = time.Duration(t * float64(time.Second))
		t += rng.ExpFloat64() / rate
	}
	return out, nil
}
