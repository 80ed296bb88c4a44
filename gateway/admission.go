package gateway

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/infergate/infergate/errdefs"
)

// admission limits the inference requests in flight, so that under
// overload the excess is refused at once, before its decoding and its
// run, instead of queueing in front of the batcher where every admitted
// request's latency grows with the backlog.
//
// The limit adapts to latency in the manner of Envoy's adaptive
// concurrency filter (gradient controller):
//   - every probeEvery, the limit drops to probeConcurrency until
//     probeSamples requests admitted by the probe have completed, or
//     probeMax has passed and one has; their median latency is the no-load latency,
//     minRTT (the requests refused meanwhile get 503);
//   - otherwise, every updateEvery completions, their mean latency
//     sampleRTT gives gradient = minRTT × (1 + admissionBuffer) /
//     sampleRTT, clamped to [0.5, 2], and the limit becomes
//     limit × gradient + √limit, smoothed, within [admissionMin,
//     admissionMax]. It grows while latency stays within twice the
//     no-load latency, and shrinks when requests queue past it; it grows
//     only while the requests in flight use at least half of it.
//
// A fixed limit (Options.AdmissionLimit > 0) skips the adaptation.
type admission struct {
	fixed    bool
	min, max float64

	mu        sync.Mutex
	inflight  int
	limit     float64
	minRTT    float64 // seconds; 0 until the first probe ends
	probing   bool
	probeEnd  time.Time // a probe ends by then, with what it has
	stale     int       // completions to skip in a probe: admitted before it
	probe     []float64
	nextProbe time.Time
	sum       float64 // latencies since the last update
	n         int
	peak      int // most in flight since the last update
}

// AdmissionAdaptive as Options.AdmissionLimit selects the adaptive limit.
const AdmissionAdaptive = -1

const (
	admissionInitial = 64
	admissionMin     = 4
	admissionMax     = 4096
	admissionBuffer  = 1.0 // latency may reach (1 + buffer) × minRTT
	smoothing        = 0.2
	updateEvery      = 32
	probeEvery       = 10 * time.Second
	probeConcurrency = 3
	probeSamples     = 50
	probeMax         = 250 * time.Millisecond // the longest a probe lasts
	admissionRetry   = time.Second
)

// newAdmission returns the limiter for Options.AdmissionLimit: 0 none
// (nil), > 0 fixed, AdmissionAdaptive adaptive.
func newAdmission(limit int) *admission {
	switch {
	case limit == AdmissionAdaptive:
		return &admission{limit: admissionInitial, min: admissionMin, max: admissionMax, probing: true}
	case limit > 0:
		return &admission{fixed: true, limit: float64(limit), min: float64(limit), max: float64(limit)}
	}
	return nil
}

// acquire admits a request, or refuses it with the error to answer.
func (a *admission) acquire() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	limit := math.Floor(a.limit)
	if a.probing {
		now := time.Now()
		if a.probeEnd.IsZero() {
			a.probeEnd = now.Add(probeMax) // the first probe's
		}
		if len(a.probe) > 0 && now.After(a.probeEnd) {
			a.endProbeLocked(now)
		} else {
			limit = probeConcurrency
		}
	}
	if float64(a.inflight) >= limit {
		return &errdefs.Error{
			Kind:       errdefs.Overloaded,
			RetryAfter: admissionRetry,
			Msg:        fmt.Sprintf("the server is at its limit of %d inference requests in flight: retry later", int(limit)),
		}
	}
	a.inflight++
	a.peak = max(a.peak, a.inflight)
	return nil
}

// release ends an admitted request that took rtt, at now.
func (a *admission) release(rtt time.Duration, now time.Time) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight--
	if a.fixed {
		return
	}
	x := rtt.Seconds()
	switch {
	case a.probing:
		if a.stale > 0 {
			a.stale-- // admitted before the probe
		} else {
			a.probe = append(a.probe, x)
		}
		// It ends with enough samples, or past probeMax with at least
		// one (a model slower than probeMax gives one a run).
		if len(a.probe) >= probeSamples || (len(a.probe) > 0 && now.After(a.probeEnd)) {
			a.endProbeLocked(now)
		}
		return
	case !now.Before(a.nextProbe):
		a.probing, a.stale, a.probeEnd = true, a.inflight, now.Add(probeMax)
		return
	}
	a.sum += x
	if a.n++; a.n < updateEvery {
		return
	}
	sample := a.sum / float64(a.n)
	gradient := min(max(a.minRTT*(1+admissionBuffer)/sample, 0.5), 2)
	next := a.limit*gradient + math.Sqrt(a.limit)
	if next > a.limit && float64(a.peak) < a.limit/2 {
		next = a.limit // the load, not the limit, bounds what is in flight
	}
	a.limit = min(max(a.limit*(1-smoothing)+next*smoothing, a.min), a.max)
	a.sum, a.n, a.peak = 0, 0, a.inflight
}

// endProbeLocked ends a probe, which has at least one sample: their
// median is the new minRTT.
func (a *admission) endProbeLocked(now time.Time) {
	slices.Sort(a.probe)
	a.minRTT = a.probe[len(a.probe)/2]
	a.probe = a.probe[:0]
	a.probing, a.nextProbe = false, now.Add(probeEvery)
	a.sum, a.n, a.peak = 0, 0, a.inflight
}

// state returns the limit in effect and the requests in flight.
func (a *admission) state() (limit, inflight int) {
	limit, inflight, _ = a.snapshot()
	return limit, inflight
}

// snapshot returns the limit in effect (the probe's during a probe), the
// requests in flight, and the no-load latency the adaptive limit works
// from: 0 for a fixed limit, and before the first probe has ended.
func (a *admission) snapshot() (limit, inflight int, minRTT time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	minRTT = time.Duration(a.minRTT * float64(time.Second))
	if a.probing {
		return probeConcurrency, a.inflight, minRTT
	}
	return int(a.limit), a.inflight, minRTT
}
