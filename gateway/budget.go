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
// chunked one the body limit; a compressed body also reserves what it
// inflates to, 64 KiB at a time, as it is read. The reservation lasts
// until the handler returns. A request that does not
// fit is refused with 503 and Retry-After without its body being read,
// and its connection closes.
//
// Reservations are keyed by the request's header, which fasthttp keeps
// for the request's whole life. Where a connection ends between its
// headers and the handler and fasthttp calls no error handler (a chunked
// body cut at a chunk boundary, a connection closed by Shutdown), the
// reservation is left behind: the next request on the same context
// replaces it, and a request that does not fit first reclaims those
// whose handler never started within the read timeout, the longest
// fasthttp reads a request.
type bodyBudget struct {
	limit       int64 // ≤ 0: unlimited, and nothing is tracked
	maxBody     int64
	readTimeout time.Duration

	mu   sync.Mutex
	used int64
	held map[*fasthttp.RequestHeader]reservation
}

type reservation struct {
	n        int64
	declared int64 // the request's Content-Length (-1 chunked)
	at       time.Time
	started  bool // the handler or the error handler has it
	refused  bool
}

// budgetRetryAfter is the Retry-After of a refused body: bodies in flight
// are read within a read timeout, most within milliseconds.
const budgetRetryAfter = time.Second

func newBodyBudget(limit int64, maxBody int, readTimeout time.Duration) *bodyBudget {
	return &bodyBudget{limit: limit, maxBody: int64(maxBody), readTimeout: readTimeout, held: make(map[*fasthttp.RequestHeader]reservation)}
}

// headerReceived reserves the request's declared body. A request that
// does not fit gets a body limit of one byte, so that fasthttp refuses to
// read it (ErrBodyTooLarge, answered by refusedError).
func (b *bodyBudget) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if b.limit <= 0 {
		return fasthttp.RequestConfig{}
	}
	declared := int64(h.ContentLength())
	n := declared
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
	now := time.Now()
	if b.used+n > b.limit {
		b.reclaimLocked(now)
	}
	if b.used+n > b.limit {
		b.held[h] = reservation{declared: declared, at: now, refused: true}
		return fasthttp.RequestConfig{MaxRequestBodySize: 1}
	}
	b.used += n
	b.held[h] = reservation{n: n, declared: declared, at: now}
	return fasthttp.RequestConfig{}
}

// reclaimLocked drops the reservations whose handler never started
// within the read timeout: their connections ended unseen.
func (b *bodyBudget) reclaimLocked(now time.Time) {
	for h, r := range b.held {
		if !r.started && now.Sub(r.at) > b.readTimeout {
			b.used -= r.n
			delete(b.held, h)
		}
	}
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
	r, ok := b.held[h]
	if !ok { // no body reserved at its headers: its handler runs now
		r = reservation{at: time.Now(), started: true}
	}
	r.n += n
	b.held[h] = r
	b.used += n
	return true
}

// release ends the request's reservation and reports whether its body
// was refused, with its declared size.
func (b *bodyBudget) release(h *fasthttp.RequestHeader) (refused bool, declared int64) {
	return b.mark(h, true)
}

// start marks the request's reservation as taken by its handler, and
// reports whether its body was refused, with its declared size.
func (b *bodyBudget) start(h *fasthttp.RequestHeader) (refused bool, declared int64) {
	return b.mark(h, false)
}

// mark ends the request's reservation (end) or marks it started.
func (b *bodyBudget) mark(h *fasthttp.RequestHeader, end bool) (refused bool, declared int64) {
	if b.limit <= 0 {
		return false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.held[h]
	switch {
	case !ok:
		return false, 0
	case end:
		b.used -= r.n
		delete(b.held, h)
	default:
		r.started = true
		b.held[h] = r
	}
	return r.refused, r.declared
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
