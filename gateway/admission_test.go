package gateway

import (
	"testing"
	"time"

	"github.com/infergate/infergate/errdefs"
)

// TestAdmission: the limit refuses past it with Retry-After, shrinks when
// latency rises above its long average, grows back while latency holds
// and the requests in flight use it, and stays put when they do not.
func TestAdmission(t *testing.T) {
	t.Run("fixed", func(t *testing.T) {
		a := newAdmission(2)
		if a.acquire() != nil || a.acquire() != nil {
			t.Fatal("refused under the limit")
		}
		err := a.acquire()
		if errdefs.KindOf(err) != errdefs.Overloaded || errdefs.RetryAfter(err) != time.Second {
			t.Fatalf("at the limit: %v", err)
		}
		a.release(time.Millisecond, time.Now())
		if a.acquire() != nil {
			t.Fatal("refused after a release")
		}
		if limit, inflight, minRTT := a.snapshot(); limit != 2 || inflight != 2 || minRTT != 0 {
			t.Fatalf("snapshot: limit %d, %d in flight, no-load latency %v; want 2, 2, 0", limit, inflight, minRTT)
		}
	})
	t.Run("off", func(t *testing.T) {
		var a *admission = newAdmission(0)
		for range 10000 {
			if a.acquire() != nil {
				t.Fatal("refused with no limit")
			}
		}
		a.release(time.Second, time.Now())
	})
	// load runs n rounds of requests, each round as many in flight as
	// the limit admits, each taking rtt(limit), a millisecond a round.
	now := time.Now()
	load := func(a *admission, rounds int, rtt func(limit int) time.Duration) {
		for range rounds {
			limit, _ := a.state()
			held := 0
			for a.acquire() == nil {
				held++
			}
			now = now.Add(time.Millisecond)
			for range held {
				a.release(rtt(limit), now)
			}
		}
	}
	t.Run("adapts", func(t *testing.T) {
		a := newAdmission(AdmissionAdaptive)
		// A server that does a request per µs past 50 in flight:
		// latency is the queue.
		queue := func(limit int) time.Duration { return time.Duration(max(limit, 50)) * time.Microsecond }
		flat := func(int) time.Duration { return 50 * time.Microsecond }
		if _, _, minRTT := a.snapshot(); minRTT != 0 {
			t.Fatalf("no-load latency %v before the first probe", minRTT)
		}
		load(a, 500, flat)
		if _, _, minRTT := a.snapshot(); minRTT != 50*time.Microsecond {
			t.Fatalf("no-load latency %v after the probe, want the flat 50µs", minRTT)
		}
		grown, _ := a.state()
		if grown <= admissionInitial {
			t.Fatalf("latency flat: limit %d, want above %d", grown, admissionInitial)
		}
		load(a, 20000, queue) // 20 s: probes included
		shrunk, _ := a.state()
		if shrunk >= grown || shrunk > 200 {
			t.Fatalf("latency growing with the limit: %d, want below %d and near 100 (twice the no-load latency)", shrunk, grown)
		}
		t.Logf("limit: %d initially, %d with flat latency, %d when latency follows the queue", admissionInitial, grown, shrunk)
	})
	t.Run("idle does not grow", func(t *testing.T) {
		a := newAdmission(AdmissionAdaptive)
		for range 10000 {
			if a.acquire() != nil {
				t.Fatal("refused")
			}
			a.release(50*time.Microsecond, time.Now())
		}
		if limit, _ := a.state(); limit != admissionInitial {
			t.Fatalf("one request at a time: limit %d, want %d", limit, admissionInitial)
		}
	})
}
