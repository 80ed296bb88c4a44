package gateway

import (
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
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
//
// Every request passes through it three times, so the bytes in use are
// one atomic counter and the reservations are spread over budgetShards
// maps by their header's address, each under its own lock.
type bodyBudget struct {
	limit       int64 // ≤ 0: unlimited, and nothing is tracked
	maxBody     int64
	readTimeout time.Duration
	seed        maphash.Seed

	_      [64]byte // used on a cache line of its own, off the fields above
	used   atomic.Int64
	_      [56]byte
	shards [budgetShards]budgetShard
}

const budgetShards = 16

type budgetShard struct {
	mu   sync.Mutex
	held map[*fasthttp.RequestHeader]reservation
	_    [48]byte // a shard a cache line: the locks do not share one
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
	b := &bodyBudget{limit: limit, maxBody: int64(maxBody), readTimeout: readTimeout, seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].held = make(map[*fasthttp.RequestHeader]reservation)
	}
	return b
}

func (b *bodyBudget) shard(h *fasthttp.RequestHeader) *budgetShard {
	return &b.shards[maphash.Comparable(b.seed, h)%budgetShards]
}

// reserve adds n to the bytes in use, false (and nothing added) when
// they would pass the limit.
// A compare-and-swap, not an add and an undo: a request that does not
// fit never makes another that does look refused.
func (b *bodyBudget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
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
	sh := b.shard(h)
	sh.mu.Lock()
	if old, ok := sh.held[h]; ok { // a request that never reached the end
		b.used.Add(-old.n)
		delete(sh.held, h)
	}
	sh.mu.Unlock()
	if n <= 0 {
		return fasthttp.RequestConfig{}
	}
	// Only this request's connection uses h until the handler, and
	// reclaim leaves a fresh reservation alone: it is this one's to set.
	now := time.Now()
	ok := b.reserve(n)
	if !ok {
		b.reclaim(now)
		ok = b.reserve(n)
	}
	r := reservation{n: n, declared: declared, at: now}
	if !ok {
		r = reservation{declared: declared, at: now, refused: true}
	}
	sh.mu.Lock()
	sh.held[h] = r
	sh.mu.Unlock()
	if !ok {
		return fasthttp.RequestConfig{MaxRequestBodySize: 1}
	}
	return fasthttp.RequestConfig{}
}

// reclaim drops the reservations whose handler never started within the
// read timeout: their connections ended unseen.
func (b *bodyBudget) reclaim(now time.Time) {
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for h, r := range sh.held {
			if !r.started && now.Sub(r.at) > b.readTimeout {
				b.used.Add(-r.n)
				delete(sh.held, h)
			}
		}
		sh.mu.Unlock()
	}
}

// take reserves n more bytes for the request (an inflated body), false
// when they do not fit.
func (b *bodyBudget) take(h *fasthttp.RequestHeader, n int64) bool {
	if b.limit <= 0 || n <= 0 {
		return true
	}
	if !b.reserve(n) {
		return false
	}
	sh := b.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.held[h]
	if !ok { // no body reserved at its headers: its handler runs now
		r = reservation{at: time.Now(), started: true}
	}
	r.n += n
	sh.held[h] = r
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
	sh := b.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.held[h]
	switch {
	case !ok:
		return false, 0
	case end:
		b.used.Add(-r.n)
		delete(sh.held, h)
	default:
		r.started = true
		sh.held[h] = r
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
func (b *bodyBudget) inUse() int64 { return b.used.Load() }

// refusedError is the answer to a request whose body did not fit.
func (b *bodyBudget) refusedError(what string) error {
	return &errdefs.Error{
		Kind:       errdefs.Overloaded,
		RetryAfter: budgetRetryAfter,
		Msg: fmt.Sprintf("the server holds as many request bodies as it may (http.max_inflight_body_bytes, %d bytes): %s refused, retry later",
			b.limit, what),
	}
}
