package gateway

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/errdefs"
)

// TestBodyBudget: reservations add up to the limit, a refused request is
// marked, inflation is reserved as it is read, and release returns all.
func TestBodyBudget(t *testing.T) {
	b := newBodyBudget(1000, 600, time.Minute)
	var h1, h2, h3 fasthttp.RequestHeader
	h1.SetContentLength(600)
	h2.SetContentLength(500)
	h3.SetContentLength(300)
	if c := b.headerReceived(&h1); c.MaxRequestBodySize != 0 || b.inUse() != 600 {
		t.Fatalf("first: %+v, in use %d", c, b.inUse())
	}
	if c := b.headerReceived(&h2); c.MaxRequestBodySize != 1 || b.inUse() != 600 {
		t.Fatalf("second should be refused: %+v, in use %d", c, b.inUse())
	}
	if refused, declared := b.start(&h2); !refused || declared != 500 {
		t.Fatalf("start of a refused request: %v %d", refused, declared)
	}
	if refused, _ := b.release(&h2); !refused {
		t.Fatal("release of a refused request reports it")
	}
	if c := b.headerReceived(&h3); c.MaxRequestBodySize != 0 || b.inUse() != 900 {
		t.Fatalf("third: %+v, in use %d", c, b.inUse())
	}
	// h3 inflates: 100 bytes are left, less than a chunk.
	_, err := io.ReadAll(b.reader(&h3, bytes.NewReader(make([]byte, 10000))))
	if errdefs.KindOf(err) != errdefs.Overloaded || errdefs.RetryAfter(err) != budgetRetryAfter {
		t.Fatalf("inflation past the budget: %v", err)
	}
	b.release(&h1)
	b.release(&h3)
	if b.inUse() != 0 {
		t.Fatalf("after release: %d in use", b.inUse())
	}
	// A header reused by the next request on its connection drops a
	// reservation left behind.
	b.headerReceived(&h1)
	h1.SetContentLength(10)
	b.headerReceived(&h1)
	if b.inUse() != 10 {
		t.Fatalf("stale reservation kept: %d in use", b.inUse())
	}
	// Chunked bodies reserve the body limit; over-limit ones nothing.
	var chunked, huge fasthttp.RequestHeader
	chunked.SetContentLength(-1)
	huge.SetContentLength(5000)
	b.headerReceived(&chunked)
	b.headerReceived(&huge)
	if b.inUse() != 610 {
		t.Fatalf("chunked and over-limit: %d in use, want 610", b.inUse())
	}
	// Unlimited tracks nothing.
	u := newBodyBudget(-1, 600, time.Minute)
	if c := u.headerReceived(&h1); c.MaxRequestBodySize != 0 {
		t.Fatal("unlimited budget refused")
	}
	if refused, _ := u.start(&h1); refused {
		t.Fatal("unlimited budget refused")
	}
}

// TestBodyBudgetReclaims: a reservation whose handler never started
// (its connection ended unseen by fasthttp's error handler) is reclaimed
// past the read timeout when a request would not fit; a started one is
// not.
func TestBodyBudgetReclaims(t *testing.T) {
	b := newBodyBudget(1000, 1000, time.Millisecond)
	var lost, running, next fasthttp.RequestHeader
	lost.SetContentLength(-1) // chunked: reserves the body limit
	b.headerReceived(&lost)
	time.Sleep(5 * time.Millisecond)
	running.SetContentLength(10)
	next.SetContentLength(500)
	if c := b.headerReceived(&running); c.MaxRequestBodySize != 0 {
		t.Fatal("refused although the lost reservation is past the read timeout")
	}
	b.start(&running)
	if b.inUse() != 10 {
		t.Fatalf("in use %d, want 10", b.inUse())
	}
	time.Sleep(5 * time.Millisecond)
	b.headerReceived(&next) // fits: no reclaim needed, and running is started
	if b.inUse() != 510 {
		t.Fatalf("in use %d, want 510", b.inUse())
	}
}
