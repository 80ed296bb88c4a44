package gateway

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/repository"
)

// HeaderRequestID carries a request id from the client into the logs,
// and back in the response. A request without one, or with one that is
// not up to maxRequestIDLen printable ASCII characters, gets a generated
// one: 16 hex digits, then "@" and this replica's address when
// Options.Advertise is set (feedback finds its replica by it).
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an accepted request id.
const maxRequestIDLen = 128

// setRequestID makes sure the request has an id, and echoes it in the
// response; suffix ends a generated one.
func setRequestID(ctx *fasthttp.RequestCtx, suffix string) {
	id := ctx.Request.Header.Peek(HeaderRequestID)
	if !validRequestID(id) {
		var b [96]byte
		id = append(strconv.AppendUint(b[:0], rand.Uint64()|1<<63, 16), suffix...)
		ctx.Request.Header.SetBytesV(HeaderRequestID, id)
		id = ctx.Request.Header.Peek(HeaderRequestID)
	}
	ctx.Response.Header.SetBytesV(HeaderRequestID, id)
}

func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// RequestObserver is told of every inference request once it is answered;
// the monitoring package implements it. It is called on the request's
// goroutine: it must be fast, never block, and take no lock.
type RequestObserver interface {
	// ObserveRequest reports one request. model is the repository's name
	// of the model, "" when the request named no model it knows; v is the
	// version that served the request or that its URL resolved to, nil
	// when none (label values come from these, never from the request).
	// protocol is "http" or "grpc"; status is the HTTP status (for gRPC,
	// the code's number). took is the time from the request's arrival to
	// its answer, negative when unknown; received and sent are the body
	// sizes in bytes.
	ObserveRequest(model string, v *repository.Version, protocol string, status int, took time.Duration, received, sent int)
}

// DriftReporter answers GET /v2/repository/models/{m}/versions/{v}/drift;
// the monitoring package implements it.
type DriftReporter interface {
	// DriftReport returns the drift report of a loaded version, a value
	// encoding/json writes; false when the version has no drift
	// monitoring.
	DriftReport(model string, version int64) (any, bool)
}

type nopRequests struct{}

func (nopRequests) ObserveRequest(string, *repository.Version, string, int, time.Duration, int, int) {
}

// errorLog logs failed requests at a bounded rate: under overload every
// request may fail, and the log must not grow with the load. The lines it
// drops are counted in the next one it writes; the metrics count them
// all.
type errorLog struct {
	log        *slog.Logger
	limit      lineLimit
	suppressed atomic.Int64
}

// errorLogRate bounds the request error lines: ten a second.
const errorLogRate = 10

func newErrorLog(log *slog.Logger) *errorLog {
	return &errorLog{log: log, limit: lineLimit{limit: errorLogRate}}
}

// write logs a failed request at level, unless over the rate.
func (l *errorLog) write(ctx *fasthttp.RequestCtx, level slog.Level, msg string, status int, err string) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	if !l.limit.allow(time.Now()) {
		l.suppressed.Add(1)
		return
	}
	attrs := []slog.Attr{
		slog.String("path", string(ctx.Path())),
		slog.Int("status", status),
		slog.String("err", err),
	}
	if id := ctx.Request.Header.Peek(HeaderRequestID); len(id) > 0 {
		attrs = append(attrs, slog.String("request_id", string(id)))
	}
	if n := l.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// accessLog writes a debug line for an inference request.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, model string, v *repository.Version, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("model", model),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.Duration("duration", took),
	}
	if v != nil {
		attrs = append(attrs, slog.Int64("version", v.Number))
	}
	if id := ctx.Request.Header.Peek(HeaderRequestID); len(id) > 0 {
		attrs = append(attrs, slog.String("request_id", string(id)))
	}
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "inference request", attrs...)
}
