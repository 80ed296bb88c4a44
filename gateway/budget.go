package gateway

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/errdefs"
)

// bodyBudget bounds the memory of the request bodies in flight, over all
// connections (Options.MaxInflightBodyBytes).
//
// A request reserves its Content-Length when its headers have arrived
// (fasthttp's HeaderReceived), before fasthttp allocates the body, and a
// chunked one the body limit; an inflated body reserves its inflation
// bound on top. The reservation lasts until the handler returns. A
// request that does not fit is refused with 503 and Retry-After without
// its body being read (the connection then closes).
//
// Reservations are keyed by the request's header, which fasthttp keeps
// for the request's whole life. A request whose connection fails between
// its headers and the handler, where fasthttp calls no error handler (a
// connection closed by Shutdown), leaves its reservation until the next
// request on the same context replaces it.
type bodyBudget struct {
	limit   int64 // ≤ 0: unlimited, and nothing is tracked
	maxBody int64

	mu   sync.Mutex
	used int64
	held map[*fasthttp.RequestHeader]reservation
}

type reservation struct {
	n       int64
	refused bool
}

// budgetRetryAfter is the Retry-After of a refused body: bodies in flight
// are read within a read timeout, most within milliseconds.
const budgetRetryAfter = time.Second

func newBodyBudget(limit int64, maxBody int) *bodyBudget {
	return &bodyBudget{limit: limit, maxBody: int64(maxBody), held: make(map[*fasthttp.RequestHeader]reservation)}
}

// headerReceived reserves the request's declared body. A request that
// does not fit gets a body limit of one byte, so that fasthttp refuses to
// read it (ErrBodyTooLarge, answered by refusedError).
func (b *bodyBudget) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if b.limit <= 0 {
		return fasthttp.RequestConfig{}
	}
	n := int64(h.ContentLength())
	switch {
	case n == -1: // chunked: it may grow to the body limit
		n = b.maxBody
	case n > b.maxBody: // fasthttp answers 413 without reading it
		n = 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.held[h]; ok { // a request that never reached the end
		b.used -= old.n
		delete(b.held, h)
	}
	if n <= 0 {
		return fasthttp.RequestConfig{}
	}
	if b.used+n > b.limit {
		b.held[h] = reservation{refused: true}
		return fasthttp.RequestConfig{MaxRequestBodySize: 1}
	}
	b.used += n
	b.held[h] = reservation{n: n}
	return fasthttp.RequestConfig{}
}

// take reserves n more bytes for the request (an inflated body), false
// when they do not fit.
func (b *bodyBudget) take(h *fasthttp.RequestHeader, n int64) bool {
	if b.limit <= 0 || n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	r := b.held[h]
	r.n += n
	b.held[h] = r
	b.used += n
	return true
}

// release ends the request's reservation and reports whether its body
// was refused.
func (b *bodyBudget) release(h *fasthttp.RequestHeader) (refused bool) {
	if b.limit <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.held[h]
	if !ok {
		return false
	}
	b.used -= r.n
	delete(b.held, h)
	return r.refused
}

// refused reports whether the request's body did not fit.
func (b *bodyBudget) refused(h *fasthttp.RequestHeader) bool {
	if b.limit <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held[h].refused
}

// inflateChunk is how much an inflating body reserves at a time.
const inflateChunk = 64 << 10

// reader returns r, reserving what is read from it for the request as it
// is read (an inflating body); past the budget its Read fails with the
// refusal.
func (b *bodyBudget) reader(h *fasthttp.RequestHeader, r io.Reader) io.Reader {
	if b.limit <= 0 {
		return r
	}
	return &budgetReader{b: b, h: h, r: r}
}

type budgetReader struct {
	b     *bodyBudget
	h     *fasthttp.RequestHeader
	r     io.Reader
	left  int64 // reserved and not yet read
	total int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if br.left == 0 {
		if !br.b.take(br.h, inflateChunk) {
			return 0, br.b.refusedError("inflating a body past " + strconv.FormatInt(br.total, 10) + " bytes")
		}
		br.left = inflateChunk
	}
	if int64(len(p)) > br.left {
		p = p[:br.left]
	}
	n, err := br.r.Read(p)
	br.left -= int64(n)
	br.total += int64(n)
	return n, err
}

// inUse returns the bytes reserved now.
func (b *bodyBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// refusedError is the answer to a request whose body did not fit.
func (b *bodyBudget) refusedError(what string) error {
	return &errdefs.Error{
		Kind:       errdefs.Overloaded,
		RetryAfter: budgetRetryAfter,
		Msg: fmt.Sprintf("the server holds as many request bodies as it may (http.max_inflight_body_bytes, %d bytes): %s refused, retry later",
			b.limit, what),
	}
}
