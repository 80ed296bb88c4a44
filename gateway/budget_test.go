package gateway

import (
	"bytes"
	"io"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/errdefs"
)

// TestBodyBudget: reservations add up to the limit, a refused request is
// marked, inflation is reserved as it is read, and release returns all.
func TestBodyBudget(t *testing.T) {
	b := newBodyBudget(1000, 600)
	var h1, h2, h3 fasthttp.RequestHeader
	h1.SetContentLength(600)
	h2.SetContentLength(500)
	h3.SetContentLength(300)
	if c := b.headerReceived(&h1); c.MaxRequestBodySize != 0 || b.inUse() != 600 {
		t.Fatalf("first: %+v, in use %d", c, b.inUse())
	}
	if c := b.headerReceived(&h2); c.MaxRequestBodySize != 1 || !b.refused(&h2) || b.inUse() != 600 {
		t.Fatalf("second should be refused: %+v, in use %d", c, b.inUse())
	}
	if !b.release(&h2) {
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
	u := newBodyBudget(-1, 600)
	if c := u.headerReceived(&h1); c.MaxRequestBodySize != 0 || u.refused(&h1) || u.release(&h1) {
		t.Fatal("unlimited budget refused")
	}
}
