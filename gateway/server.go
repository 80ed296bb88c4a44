package gateway

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	fastrouter "github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
	"github.com/valyala/fastjson"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/monitoring/feedback"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
	"github.com/infergate/infergate/runtime"
)

// HeaderInferenceHeaderLength is the binary tensor extension's header: the
// length of the JSON part of a body that binary tensors follow.
const HeaderInferenceHeaderLength = "Inference-Header-Content-Length"

// DefaultMaxRequestBodySize fits a 64×3×224×224 FP32 tensor (36.75 MiB in
// binary form; about 100 MiB as JSON numbers) with room to spare.
const DefaultMaxRequestBodySize = 128 << 20

// DefaultMaxInflightBodyBytes bounds the memory of all request bodies in
// flight: eight bodies of the default limit.
const DefaultMaxInflightBodyBytes = 8 * DefaultMaxRequestBodySize

// DefaultMaxJSONSize bounds the JSON part of a request: about a million
// JSON numbers.
const DefaultMaxJSONSize = 8 << 20

// Options configure a Server.
type Options struct {
	// MaxRequestBodySize is the largest request body accepted; larger ones
	// get 413. Default DefaultMaxRequestBodySize.
	MaxRequestBodySize int
	// Version is reported in the server metadata. Default "dev".
	Version string
	// RuntimeVersion is ONNX Runtime's version, reported in the server
	// metadata. Optional.
	RuntimeVersion string
	// Logger receives request errors and panics. Default: discard.
	Logger *slog.Logger
	// MaxJSONSize bounds the JSON part of an inference request; larger
	// gets 413 asking for binary tensors. JSON tensors cost far more
	// memory to parse than their size (a parse tree node per element).
	// Default DefaultMaxJSONSize.
	MaxJSONSize int
	// MaxInflightBodyBytes bounds the memory of all request bodies in
	// flight, over every connection: a request reserves its
	// Content-Length (a chunked one, MaxRequestBodySize) once its headers
	// arrive, before its body is read, and an inflated body its
	// inflation bound; past the budget the request gets 503 with
	// Retry-After. Default DefaultMaxInflightBodyBytes, and at least
	// MaxRequestBodySize; negative: unlimited.
	MaxInflightBodyBytes int64
	// AdmissionLimit bounds the inference requests in flight: past it a
	// request gets 503 with Retry-After before it is decoded or queued.
	// 0 (default): no limit; > 0: that many; AdmissionAdaptive: a limit
	// that follows latency (see admission).
	AdmissionLimit int
	// Tenants have limits of their own (see Tenant), named by the
	// TenantHeader of a request (default DefaultTenantHeader). Default:
	// none.
	Tenants      []Tenant
	TenantHeader string
	// Admin guards the repository API (see AdminAuth). Default: no
	// tokens, loopback clients served, every other 401.
	Admin AdminAuth
	// InferenceTokens, when set, are required by every /v2/models/...
	// call (401 without one of them), and name the request's tenant
	// (see InferenceToken). Default: none, and inference is open.
	InferenceTokens []InferenceToken
	// RequestTimeout is the end-to-end deadline of an inference request:
	// the wait for a version, the queue and the run, which it terminates
	// through ONNX Runtime when it expires; the client gets 504. Unlike a
	// request's "timeout" parameter (Triton's queue policy, for the
	// dynamic batcher only), it bounds everything. Default 0: none.
	RequestTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long. Default 2m.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, and
	// WriteTimeout writing a response. Default 60s each.
	ReadTimeout, WriteTimeout time.Duration
	// ModelControl is Triton's --model-control-mode: "poll" or
	// "explicit" allow the repository API's load, unload and label calls;
	// "none" refuses them (403). Default "none".
	ModelControl string
	// StrictReadiness makes /v2/health/ready true only while every model
	// is ready, as Triton's --strict-readiness. When false it is true once
	// the server serves.
	StrictReadiness bool
	// Requests is told of every inference request. Default: none.
	Requests RequestObserver
	// Metrics, when not nil, serves GET /metrics (the Prometheus
	// exposition). Default: none, and /metrics is 404.
	Metrics fasthttp.RequestHandler
	// Drift, when not nil, serves
	// GET /v2/repository/models/{m}/versions/{v}/drift. Default: none.
	Drift DriftReporter
	// TLS, when not nil, makes Serve and ServeAdmin speak HTTPS on
	// their listeners (see CertReloader). Default: plain HTTP.
	TLS *tls.Config
	// Statistics, when not nil, serves Triton's statistics extension:
	// GET /v2/models[/{m}[/versions/{v}]]/stats. Default: none (404).
	Statistics StatisticsReporter
	// Router decides which version serves each request and answers the
	// routing API. Default: a router over the repository that keeps
	// documents in memory.
	Router *router.Router
	// Audit receives every admin action (load, unload, upload, labels,
	// routing documents, refused rollout controls) and serves GET
	// /v2/repository/audit. Default: none, and the endpoint answers an
	// empty list.
	Audit *audit.Log
	// History, when not nil, serves GET
	// /v2/repository/models/{m}/history: each loaded version's request
	// rate, latency and drift over time, for the console. Default: none
	// (404).
	History HistoryReporter
	// Feedback remembers which version answered each inference request
	// and its prediction, and takes POST /v2/models/{m}/feedback.
	// Default: none, and every id is unknown (404).
	Feedback *feedback.Store
	// FeedbackPeers are the other replicas, host:port each (a DNS name
	// stands for each of its addresses: a headless Service), to which
	// feedback for a request this replica did not serve is forwarded
	// (feedback.peers). Default: none.
	FeedbackPeers []string
	// Advertise is this replica's address as its peers reach it,
	// host:port (feedback.advertise). Generated request ids then end in
	// "@" and it, so that feedback for them goes to this replica
	// straight. Default: none.
	Advertise string
}

// Server serves the KServe v2 HTTP protocol for a repository.
type Server struct {
	repo      *repository.Repository
	opts      Options
	log       *slog.Logger
	errLog    *errorLog
	observer  RequestObserver
	router    *router.Router
	ownRouter bool // made by New: Shutdown closes it
	srv       *fasthttp.Server

	bodies   *bodyBudget
	admit    *admission
	guard    atomic.Pointer[adminGuard]
	callers  atomic.Pointer[inferenceGuard] // nil: no inference token needed
	tenants  atomic.Pointer[tenants]
	parsers  fastjson.ParserPool
	requests sync.Pool // *inferRequest
	draining atomic.Bool

	lnMu     sync.Mutex
	ln       net.Listener     // what Serve serves, for Shutdown's drain of its accept queue
	adminSrv *fasthttp.Server // ServeAdmin's, nil without
	adminLn  net.Listener
	// adminStopped: ShutdownAdmin ran, and ServeAdmin serves nothing.
	adminStopped bool

	idSuffix    string                      // ends generated request ids: "@" + Advertise
	csrf        *http.CrossOriginProtection // the admin API's cross-origin check
	peerMu      sync.Mutex
	peerClients map[string]*http.Client // forward feedback, a client a peers name; Shutdown closes their connections
}

// New returns a Server for repo.
func New(repo *repository.Repository, opts Options) *Server {
	if opts.MaxRequestBodySize <= 0 {
		opts.MaxRequestBodySize = DefaultMaxRequestBodySize
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.MaxJSONSize <= 0 {
		opts.MaxJSONSize = DefaultMaxJSONSize
	}
	if opts.MaxInflightBodyBytes == 0 {
		opts.MaxInflightBodyBytes = DefaultMaxInflightBodyBytes
	}
	if opts.MaxInflightBodyBytes > 0 {
		opts.MaxInflightBodyBytes = max(opts.MaxInflightBodyBytes, int64(opts.MaxRequestBodySize))
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Minute
	}
	ownRouter := opts.Router == nil
	if ownRouter {
		opts.Router = router.New(repo, router.Options{Logger: opts.Logger})
	}
	s := &Server{ownRouter: ownRouter, repo: repo, opts: opts, log: opts.Logger, errLog: newErrorLog(opts.Logger), observer: opts.Requests, router: opts.Router}
	if s.observer == nil {
		s.observer = nopRequests{}
	}
	if opts.Advertise != "" {
		s.idSuffix = "@" + opts.Advertise
	}
	s.csrf = http.NewCrossOriginProtection()

	s.requests.New = func() any { return new(inferRequest) }
	s.bodies = newBodyBudget(opts.MaxInflightBodyBytes, opts.MaxRequestBodySize, opts.ReadTimeout)
	s.admit = newAdmission(opts.AdmissionLimit)
	guard, err := newAdminGuard(opts.Admin)
	if err != nil { // AdminAuth.Validate tells the caller first
		s.log.Error("admin tokens refused: the repository API serves loopback clients only", "err", err)
		guard = &adminGuard{auth: AdminAuth{}}
	}
	s.guard.Store(guard)
	ts, err := newTenants(opts.TenantHeader, opts.Tenants)
	if err != nil { // ValidateTenants tells the caller first
		s.log.Error("tenants refused: no tenant limits apply", "err", err)
	}
	s.tenants.Store(ts)
	callers, err := newInferenceGuard(opts.InferenceTokens)
	if err != nil { // ValidateInferenceTokens tells the caller first
		s.log.Error("inference tokens refused: inference is refused to every client", "err", err)
		callers = &inferenceGuard{}
	}
	s.callers.Store(callers)
	s.srv = &fasthttp.Server{
		HeaderReceived:               s.bodies.headerReceived,
		Handler:                      s.Handler(),
		Name:                         "infergate",
		MaxRequestBodySize:           opts.MaxRequestBodySize,
		IdleTimeout:                  opts.IdleTimeout,
		ReadTimeout:                  opts.ReadTimeout,
		WriteTimeout:                 opts.WriteTimeout,
		ErrorHandler:                 s.transportError,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               readBufferSize,
		Logger:                       fasthttpLogger{opts.Logger},
	}
	return s
}

// readBufferSize bounds a request's line and headers (fasthttp's read
// buffer, its default made explicit): past it the client gets 431.
const readBufferSize = 4096

// fasthttpLogger sends fasthttp's own messages (connection errors) to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// Handler returns the HTTP handler, with routing and panic recovery.
func (s *Server) Handler() fasthttp.RequestHandler {
	r := fastrouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.GET("/v2", s.serverMetadata)
	r.GET("/v2/health/live", s.live)
	r.GET("/v2/health/ready", s.ready)
	s.adminRoutes(r, false)
	if s.opts.Metrics != nil {
		r.GET("/metrics", s.opts.Metrics)
	}
	if s.opts.Statistics != nil {
		r.GET("/v2/models/stats", s.inferenceOnly(s.statistics))
		r.GET("/v2/models/{model}/stats", s.inferenceOnly(s.statistics))
		r.GET("/v2/models/{model}/versions/{version}/stats", s.inferenceOnly(s.statistics))
	}
	for _, prefix := range []string{"/v2/models/{model}", "/v2/models/{model}/versions/{version}", "/v2/models/{model}/labels/{label}"} {
		r.GET(prefix, s.inferenceOnly(s.modelMetadata))
		r.GET(prefix+"/ready", s.inferenceOnly(s.modelReady))
		r.GET(prefix+"/config", s.inferenceOnly(s.modelConfig))
		r.POST(prefix+"/infer", s.infer)
	}
	r.POST("/v2/models/{model}/feedback", s.inferenceOnly(s.giveFeedback))
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		s.fail(ctx, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("no such endpoint: %s %s", ctx.Method(), ctx.Path())})
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		s.fail(ctx, &Error{Status: http.StatusMethodNotAllowed, Msg: fmt.Sprintf("method %s is not allowed on %s", ctx.Method(), ctx.Path())})
	}
	h := r.Handler
	return func(ctx *fasthttp.RequestCtx) {
		defer s.bodies.release(&ctx.Request.Header)
		setRequestID(ctx, s.idSuffix)
		if refused, declared := s.bodies.start(&ctx.Request.Header); refused {
			s.fail(ctx, s.bodies.refusedError(declaredBody(declared)))
			ctx.SetConnectionClose()
			return
		}
		defer s.recoverPanic(ctx)
		h(ctx)
		if s.draining.Load() {
			// Keep-alive clients reconnect, to another replica.
			ctx.SetConnectionClose()
		}
	}
}

// recoverPanic, deferred by a handler, answers a panic with a 500 and
// logs it with its stack.
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx) {
	if p := recover(); p != nil {
		s.log.Error("panic in handler", "path", string(ctx.Path()), "panic", p, "stack", string(debug.Stack()))
		ctx.ResetBody()
		s.fail(ctx, &Error{Status: http.StatusInternalServerError, Msg: "internal error"})
	}
}

// Reconfigure applies the access fields of opts (Admin,
// InferenceTokens, TenantHeader and Tenants; the others are ignored), as
// a reload of the gateway config does. Nothing changes when any of them
// does not validate. Requests in flight finish under the limits they
// were admitted with; the new buckets start full.
func (s *Server) Reconfigure(opts Options) error {
	g, err := newAdminGuard(opts.Admin)
	if err != nil {
		return fmt.Errorf("admin.tokens: %w", err)
	}
	callers, err := newInferenceGuard(opts.InferenceTokens)
	if err != nil {
		return fmt.Errorf("inference.tokens: %w", err)
	}
	ts, err := newTenants(opts.TenantHeader, opts.Tenants)
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	s.guard.Store(g)
	s.callers.Store(callers)
	s.tenants.Store(ts)
	return nil
}

// adminRoutes registers the repository API on r; trusted serves a request
// without a token (the admin listener's).
func (s *Server) adminRoutes(r *fastrouter.Router, trusted bool) {
	r.POST("/v2/repository/index", s.adminOnly(trusted, ScopeRead, s.repositoryIndex))
	r.POST("/v2/repository/models/{model}/load", s.adminOnly(trusted, ScopeWrite, s.loadModel))
	r.POST("/v2/repository/models/{model}/unload", s.adminOnly(trusted, ScopeWrite, s.unloadModel))
	r.PUT("/v2/repository/models/{model}/versions/{version}", s.adminOnly(trusted, ScopeWrite, s.uploadVersion))
	r.GET("/v2/repository/models", s.adminOnly(trusted, ScopeRead, s.modelSummaries))
	r.GET("/v2/repository/models/{model}", s.adminOnly(trusted, ScopeRead, s.modelSummary))
	r.GET("/v2/repository/audit", s.adminOnly(trusted, ScopeRead, s.auditEntries))
	r.GET("/v2/repository/models/{model}/history", s.adminOnly(trusted, ScopeRead, s.history))
	r.GET("/console", s.adminOnly(trusted, ScopeRead, s.consoleFile))
	r.GET("/console/{file:*}", s.adminOnly(trusted, ScopeRead, s.consoleFile))
	r.GET("/v2/repository/models/{model}/labels", s.adminOnly(trusted, ScopeRead, s.labels))
	r.PUT("/v2/repository/models/{model}/labels/{label}", s.adminOnly(trusted, ScopeWrite, s.setLabel))
	r.DELETE("/v2/repository/models/{model}/labels/{label}", s.adminOnly(trusted, ScopeWrite, s.deleteLabel))
	r.GET("/v2/repository/models/{model}/routing", s.adminOnly(trusted, ScopeRead, s.getRouting))
	r.PUT("/v2/repository/models/{model}/routing", s.adminOnly(trusted, ScopeWrite, s.putRouting))
	r.DELETE("/v2/repository/models/{model}/routing", s.adminOnly(trusted, ScopeWrite, s.deleteRouting))
	r.GET("/v2/repository/models/{model}/rollout", s.adminOnly(trusted, ScopeRead, s.getRollout))
	r.POST("/v2/repository/models/{model}/rollout/{action}", s.adminOnly(trusted, ScopeWrite, s.controlRollout))
	if s.opts.Drift != nil {
		r.GET("/v2/repository/models/{model}/versions/{version}/drift", s.adminOnly(trusted, ScopeRead, s.drift))
	}
}

// AdminHandler returns the handler of the admin listener (ServeAdmin):
// the repository API, served without a token (the listener is bound to
// loopback by default; a token presented is still checked), and pprof
// under /debug/pprof/, which the main listener does not serve.
func (s *Server) AdminHandler() fasthttp.RequestHandler {
	r := fastrouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	s.adminRoutes(r, true)
	r.GET("/debug/pprof/{profile:*}", pprofhandler.PprofHandler)
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		s.fail(ctx, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("no such endpoint on the admin listener: %s %s", ctx.Method(), ctx.Path())})
	}
	h := r.Handler
	return func(ctx *fasthttp.RequestCtx) {
		defer s.recoverPanic(ctx)
		setRequestID(ctx, s.idSuffix)
		h(ctx)
	}
}

// ServeAdmin serves AdminHandler on ln until Shutdown.
func (s *Server) ServeAdmin(ln net.Listener) error {
	s.lnMu.Lock()
	if s.adminStopped {
		s.lnMu.Unlock()
		ln.Close()
		return nil
	}
	s.adminLn = ln
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.adminSrv = &fasthttp.Server{
		Handler: s.AdminHandler(), Name: "infergate-admin", ReadTimeout: s.opts.ReadTimeout, WriteTimeout: s.opts.WriteTimeout,
		IdleTimeout: s.opts.IdleTimeout, MaxRequestBodySize: s.opts.MaxRequestBodySize, CloseOnShutdown: true,
		NoDefaultContentType: true, Logger: fasthttpLogger{s.log},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if closeOnReadTimeout(ctx, err) {
				return
			}
			s.fail(ctx, &Error{Status: http.StatusBadRequest, Msg: "malformed HTTP request: " + err.Error()})
		},
	}
	srv := s.adminSrv
	s.lnMu.Unlock()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// ShutdownAdmin stops the admin listener (ServeAdmin), if any, waiting
// for its calls or for ctx; Shutdown does it too.
func (s *Server) ShutdownAdmin(ctx context.Context) {
	s.lnMu.Lock()
	s.adminStopped = true
	admin, ln := s.adminSrv, s.adminLn
	s.lnMu.Unlock()
	if admin != nil {
		ln.Close() // Serve returns even if it had not started yet
		admin.ShutdownWithContext(ctx)
	}
}

// Drain starts a graceful stop: readiness answers 503 from now on, and
// every response closes its connection, while requests are still served.
// A load balancer then takes the server out before Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Listen returns a TCP listener on address for Serve: plain TCP, not Go's
// default Multipath TCP, whose sockets take no socket filter, so that
// Shutdown can drain its accept queue (drainBacklog).
func Listen(ctx context.Context, address string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, "tcp", address)
}

// Serve serves HTTP on ln until Shutdown. A listener from Listen lets
// Shutdown answer every connection the kernel accepted.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	s.ln = ln // the TCP listener, whose backlog Shutdown drains
	s.lnMu.Unlock()
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	return s.srv.Serve(ln)
}

// backlogSettle is how long Shutdown lets the handshakes under way
// complete before the listener closes: a few round trips within a data
// centre.
const backlogSettle = 50 * time.Millisecond

// drainBacklog answers the connections the kernel has accepted before the
// listener closes: new connection attempts are dropped (the clients retry
// and are refused once it closes), the handshakes under way complete, and
// Serve accepts what the accept queue holds. Without it, the connections
// in the queue when the listener closes are reset, with their requests
// sent. Linux only; elsewhere Shutdown closes the listener at once.
func (s *Server) drainBacklog(ctx context.Context) {
	s.lnMu.Lock()
	ln := s.ln
	s.lnMu.Unlock()
	if ln == nil {
		return
	}
	queued, err := refuseNewConnections(ln)
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			s.log.Warn("cannot drain the listen backlog (serve a listener from gateway.Listen): the connections it holds at shutdown will be reset", "err", err)
		}
		return
	}
	settled := time.Now().Add(backlogSettle)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := queued()
		if err != nil || (n == 0 && time.Now().After(settled)) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Shutdown stops accepting connections, once those the kernel has
// accepted are (drainBacklog), and waits for the requests in flight, or
// for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.closePeers()
	s.drainBacklog(ctx)
	s.ShutdownAdmin(ctx)
	err := s.srv.ShutdownWithContext(ctx)
	if s.ownRouter {
		s.router.Close()
	}
	return err
}

// declaredBody names a refused body by its declared size.
func declaredBody(n int64) string {
	if n < 0 {
		return "a chunked request body"
	}
	return fmt.Sprintf("a request body of %d bytes", n)
}

// transportError answers errors fasthttp meets before a handler runs.
// They count as requests of no model.
//
// A read that times out (http.read_timeout) gets no answer: the
// connection is closed, as Go's net/http and nginx close one. fasthttp
// passes the timeout of a connection that never sent a byte here too, and
// an answer to it would be unsolicited: an HTTP client that had opened
// the connection for later (Go's does) reads the stray 400 as the answer
// to the next request it sends there.
func (s *Server) transportError(ctx *fasthttp.RequestCtx, err error) {
	refused, declared := s.bodies.release(&ctx.Request.Header)
	if closeOnReadTimeout(ctx, err) {
		return
	}
	setRequestID(ctx, s.idSuffix)
	var small *fasthttp.ErrSmallBuffer
	switch {
	case refused && errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.fail(ctx, s.bodies.refusedError(declaredBody(declared)))
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.fail(ctx, &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("request body is larger than the limit of %d bytes", s.opts.MaxRequestBodySize)})
	case errors.As(err, &small), errors.Is(err, fasthttp.ErrSmallReadBuffer):
		s.fail(ctx, &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Msg: fmt.Sprintf(
			"the request line and headers are larger than the server's limit of %d bytes: shorten the URL (model names, versions) or the headers", readBufferSize)})
	default:
		s.fail(ctx, &Error{Status: http.StatusBadRequest, Msg: "malformed HTTP request: " + err.Error()})
	}
	s.observer.ObserveRequest("", nil, "http", ctx.Response.StatusCode(), -1, len(ctx.Request.Body()), len(ctx.Response.Body()))
}

// closeOnReadTimeout closes the connection of a request whose read timed
// out, and says so; fasthttp's answer after the error handler then goes
// nowhere (transportError says why).
func closeOnReadTimeout(ctx *fasthttp.RequestCtx, err error) bool {
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		ctx.Conn().Close()
		return true
	}
	return false
}

// statusClientClosed is nginx's status for a request whose client went
// away before the answer (no one reads it; it shows in logs and metrics).
const statusClientClosed = 499

// statusOf maps an error to its HTTP status and message: the one place
// where errors become statuses. Below the gateway, errors carry a kind
// (package errdefs); a *gateway.Error is the protocol's own.
func statusOf(err error) (int, string) {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Status, pe.Msg
	}
	switch errdefs.KindOf(err) {
	case errdefs.Invalid:
		return http.StatusBadRequest, err.Error()
	case errdefs.NotFound:
		return http.StatusNotFound, err.Error()
	case errdefs.Unavailable, errdefs.Overloaded:
		return http.StatusServiceUnavailable, err.Error()
	case errdefs.Throttled:
		return http.StatusTooManyRequests, err.Error()
	case errdefs.Timeout:
		if errors.Is(err, context.DeadlineExceeded) {
			return http.StatusGatewayTimeout, "request timed out: " + err.Error()
		}
		return http.StatusGatewayTimeout, err.Error()
	case errdefs.Canceled:
		return statusClientClosed, "the client closed the request: " + err.Error()
	case errdefs.Unauthenticated:
		return http.StatusUnauthorized, err.Error()
	case errdefs.Forbidden:
		return http.StatusForbidden, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// fail writes err as a KServe error body.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	status, msg := statusOf(err)
	switch k := errdefs.KindOf(err); {
	case k == errdefs.Overloaded || k == errdefs.Throttled || k == errdefs.Timeout:
		// Caused by load (a full queue, a timeout): counted in the
		// metrics, and logged at a bounded rate.
		s.errLog.write(ctx, slog.LevelWarn, "request refused", status, msg)
	case status >= 500:
		s.errLog.write(ctx, slog.LevelError, "request failed", status, msg)
	default:
		s.errLog.write(ctx, slog.LevelDebug, "request rejected", status, msg)
	}
	ctx.Response.Header.Del(HeaderInferenceHeaderLength)
	if d := errdefs.RetryAfter(err); d > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := append(append([]byte(`{"error":`), appendJSONString(nil, msg)...), '}')
	ctx.SetBody(b)
}

func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func (s *Server) serverMetadata(ctx *fasthttp.RequestCtx) {
	s.writeJSON(ctx, struct {
		Name           string   `json:"name"`
		Version        string   `json:"version"`
		Extensions     []string `json:"extensions"`
		RuntimeVersion string   `json:"onnxruntime_version,omitempty"`
	}{"infergate", s.opts.Version, []string{"binary_tensor_data", "model_configuration", "model_repository"}, s.opts.RuntimeVersion})
}

func (s *Server) live(ctx *fasthttp.RequestCtx) {}

func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	if s.draining.Load() || (s.opts.StrictReadiness && !s.repo.Ready()) {
		ctx.SetStatusCode(http.StatusServiceUnavailable)
	}
}

// route returns the model, version number and label named by the route.
func (s *Server) route(ctx *fasthttp.RequestCtx) (*repository.Model, int64, string, error) {
	name, _ := ctx.UserValue("model").(string)
	m, err := s.repo.Model(name)
	if err != nil {
		return nil, 0, "", err
	}
	var n int64
	if vs, ok := ctx.UserValue("version").(string); ok {
		n, err = strconv.ParseInt(vs, 10, 64)
		if err != nil || n < 1 {
			return nil, 0, "", badRequest("invalid model version %q: want a positive integer", vs)
		}
	}
	label, _ := ctx.UserValue("label").(string)
	return m, n, label, nil
}

// version looks up the model and version named by the route, without
// holding it: for metadata.
func (s *Server) version(ctx *fasthttp.RequestCtx) (*repository.Model, *repository.Version, error) {
	m, n, label, err := s.route(ctx)
	if err != nil {
		return nil, nil, err
	}
	v, err := m.Lookup(n, label)
	if err != nil {
		return nil, nil, err
	}
	return m, v, nil
}

type tensorMetadata struct {
	Name     string  `json:"name"`
	DataType string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

func tensorsMetadata(infos []runtime.TensorInfo) []tensorMetadata {
	out := make([]tensorMetadata, len(infos))
	for i, t := range infos {
		out[i] = tensorMetadata{Name: t.Name, DataType: t.DataType.String(), Shape: t.Shape}
	}
	return out
}

func (s *Server) modelMetadata(ctx *fasthttp.RequestCtx) {
	m, v, err := s.version(ctx)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, struct {
		Name     string           `json:"name"`
		Versions []string         `json:"versions"`
		Platform string           `json:"platform"`
		Inputs   []tensorMetadata `json:"inputs"`
		Outputs  []tensorMetadata `json:"outputs"`
	}{m.Name, m.ReadyVersions(), repository.Platform, tensorsMetadata(v.Inputs), tensorsMetadata(v.Outputs)})
}

func (s *Server) modelReady(ctx *fasthttp.RequestCtx) {
	if _, _, err := s.version(ctx); err != nil {
		status, _ := statusOf(err)
		if status == http.StatusServiceUnavailable {
			ctx.SetStatusCode(status) // not ready: the boolean answer, empty body
			return
		}
		s.fail(ctx, err)
	}
}

// modelConfig answers Triton's model configuration extension, with the
// configuration in effect (Triton's JSON field names).
func (s *Server) modelConfig(ctx *fasthttp.RequestCtx) {
	m, v, err := s.version(ctx)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	type tensorConfig struct {
		Name     string  `json:"name"`
		DataType string  `json:"data_type"`
		Dims     []int64 `json:"dims"`
	}
	// A batch axis without a bound (inferred, no config) is reported as
	// Triton does for a model without batching: max_batch_size 0 and the
	// full shapes, -1 first. Clients then send the batch in the shape.
	bounded := v.Batched && v.MaxBatchSize > 0
	dims := func(infos []runtime.TensorInfo) []tensorConfig {
		out := make([]tensorConfig, len(infos))
		for i, t := range infos {
			d := t.Shape
			if bounded {
				d = d[1:]
			}
			out[i] = tensorConfig{t.Name, t.DataType.ConfigName(), d}
		}
		return out
	}
	providers := []string{}
	if v.Session != nil { // nil while evicted
		providers = v.Session.Providers()
	}
	maxBatch := v.MaxBatchSize
	s.writeJSON(ctx, struct {
		Name         string         `json:"name"`
		Platform     string         `json:"platform"`
		Backend      string         `json:"backend"`
		MaxBatchSize int            `json:"max_batch_size"`
		Input        []tensorConfig `json:"input"`
		Output       []tensorConfig `json:"output"`
		Providers    []string       `json:"execution_providers"`
	}{m.Name, repository.Platform, "onnxruntime", maxBatch, dims(v.Inputs), dims(v.Outputs), providers})
}

// Admission reports the limit of HTTP inference requests in flight
// (Options.AdmissionLimit): the limit in effect, the requests it holds,
// and the adaptive limit's no-load latency (0 for a fixed limit, and
// until its first probe ends). ok is false when there is no limit. The
// monitoring package exports it at each scrape.
func (s *Server) Admission() (limit, inflight int, minRTT time.Duration, ok bool) {
	if s.admit == nil {
		return 0, 0, 0, false
	}
	limit, inflight, minRTT = s.admit.snapshot()
	return limit, inflight, minRTT, true
}

func (s *Server) infer(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	if err := s.admit.acquire(); err != nil {
		s.fail(ctx, err)
		s.observer.ObserveRequest("", nil, "http", ctx.Response.StatusCode(), time.Since(start), len(ctx.Request.Body()), len(ctx.Response.Body()))
		return
	}
	defer func() { s.admit.release(time.Since(start), time.Now()) }()
	var (
		model string
		v     *repository.Version // the version the request resolved to
		d     router.Decision
		ran   error // the execution's outcome, for the breaker
	)
	defer func() {
		took := time.Since(start)
		// Reported before the version is released: its series are live.
		s.observer.ObserveRequest(model, v, "http", ctx.Response.StatusCode(), took, len(ctx.Request.Body()), len(ctx.Response.Body()))
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.accessLog(ctx, model, v, took)
		}
		d.Done(ran) // releases the version, and always tells its breaker
	}()
	name, _ := ctx.UserValue("model").(string)
	var n int64
	if vs, ok := ctx.UserValue("version").(string); ok {
		var err error
		n, err = strconv.ParseInt(vs, 10, 64)
		if err != nil || n < 1 {
			s.fail(ctx, badRequest("invalid model version %q: want a positive integer", vs))
			return
		}
	}
	label, _ := ctx.UserValue("label").(string)
	tenantName, err := s.callers.Load().caller(ctx)
	if err != nil {
		s.refuseCaller(ctx, err)
		return
	}
	// Decide first, on the URL and headers, so that the body is decoded
	// once, against the chosen version's signature; the version is held
	// after, once the request's timeout is known (an evicted version
	// loads within it).
	rreq := router.Request{Model: name, Version: n, Label: label, Headers: &ctx.Request.Header}
	d, err = s.router.Route(&rreq)
	if err != nil {
		if m, merr := s.repo.Model(name); merr == nil {
			model = m.Name
		}
		s.fail(ctx, err)
		return
	}
	v = d.Version
	model = v.Model
	tenant, err := s.tenants.Load().admit(ctx, tenantName, model, s.observer)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	defer tenant.release()
	// A full batch queue refuses now, before the body is decoded: under
	// overload a refusal then costs little of the CPU the admitted need.
	if full := v.Executor.Admit(); full != nil {
		ran = full
		s.fail(ctx, fmt.Errorf("model %q version %d: %w", v.Model, v.Number, full))
		return
	}
	headerLen := -1
	if h := ctx.Request.Header.Peek(HeaderInferenceHeaderLength); h != nil {
		n, err := strconv.Atoi(string(h))
		if err != nil || n < 0 {
			s.fail(ctx, badRequest("invalid %s header %q", HeaderInferenceHeaderLength, h))
			return
		}
		headerLen = n
	}
	body, err := s.requestBody(ctx, headerLen)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	jsonLen := len(body)
	if headerLen >= 0 && headerLen < jsonLen {
		jsonLen = headerLen
	}
	if jsonLen > s.opts.MaxJSONSize {
		s.fail(ctx, &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf(
			"the JSON part of the request is %d bytes, over the limit of %d: send large tensors as binary data (Inference-Header-Content-Length)", jsonLen, s.opts.MaxJSONSize)})
		return
	}
	req := s.requests.Get().(*inferRequest)
	defer func() {
		req.reset()
		s.requests.Put(req)
	}()
	err = s.decode(body, headerLen, v, req)
	if err == nil {
		err = v.CheckBatch(req.Inputs)
	}
	if err != nil {
		s.fail(ctx, err)
		return
	}

	deadlineCtx := context.Background()
	if s.opts.RequestTimeout > 0 {
		var cancel context.CancelFunc
		deadlineCtx, cancel = context.WithTimeout(deadlineCtx, s.opts.RequestTimeout)
		defer cancel()
	}
	acquireCtx := deadlineCtx
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		acquireCtx, cancel = context.WithTimeout(acquireCtx, time.Duration(min(req.Timeout, math.MaxInt64/1000))*time.Microsecond)
		defer cancel()
	}
	looked := v
	served, err := d.Acquire(acquireCtx)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if d.Fallback != "" {
		ctx.Response.Header.Set(router.HeaderFallback, d.Fallback)
	}
	if served != looked && !served.SameSignature(looked) {
		// Swapped for a version with another signature meanwhile.
		req.reset()
		if err := s.decode(body, headerLen, served, req); err != nil {
			s.fail(ctx, err)
			return
		}
		err = served.CheckBatch(req.Inputs)
		if err != nil {
			s.fail(ctx, err)
			return
		}
	}
	v = served

	var indexes []int // nil: every output
	binary := req.binary[:0]
	if len(req.Outputs) == 0 {
		for range v.Outputs {
			binary = append(binary, req.BinaryOutput)
		}
	} else {
		indexes = req.indexes[:0]
		for _, o := range req.Outputs {
			indexes = append(indexes, o.Index)
			binary = append(binary, o.Binary == 1 || (o.Binary == -1 && req.BinaryOutput))
		}
		req.indexes = indexes
	}
	req.binary = binary
	selected, err := v.Executor.Infer(deadlineCtx, batching.Request{
		Inputs:   req.Inputs,
		Priority: int(min(tenant.priority(req.Priority), math.MaxInt32)),
		Timeout:  time.Duration(min(req.Timeout, math.MaxInt64/1000)) * time.Microsecond,
	}, indexes)
	if err == nil && deadlineCtx.Err() != nil {
		// A batch shared with other requests ran to its end, past this
		// request's deadline.
		err = deadlineCtx.Err()
	}
	ran = err
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && s.opts.RequestTimeout > 0 {
			err = fmt.Errorf("the request deadline of %v (http.request_timeout) expired: %w", s.opts.RequestTimeout, err)
		}
		s.fail(ctx, fmt.Errorf("model %q version %d: %w", v.Model, v.Number, err))
		return
	}
	d.Shadow(req.Inputs, selected) // copies what it mirrors; never waits
	s.recordPrediction(ctx, v.Model, v.Number, req.ID, selected)
	// Encode straight into fasthttp's own (pooled) response buffer.
	buf := ctx.Response.SwapBody(nil)
	out, jsonLen := encodeResponse(buf[:0], v.Model, v.Number, req.ID, selected, binary)
	ctx.Response.SwapBody(out)
	if jsonLen >= 0 {
		ctx.Response.Header.Set(HeaderInferenceHeaderLength, strconv.Itoa(jsonLen))
		ctx.SetContentType("application/octet-stream")
	} else {
		ctx.SetContentType("application/json")
	}
}

// decode decodes body for version v. Parsers that held a large document
// are not pooled: fastjson keeps their memory.
func (s *Server) decode(body []byte, headerLen int, v *repository.Version, req *inferRequest) error {
	p := s.parsers.Get()
	err := decodeRequest(p, body, headerLen, v.Inputs, v.Outputs, req)
	if len(body) < 1<<20 || (headerLen >= 0 && headerLen < 1<<20) {
		s.parsers.Put(p)
	}
	return err
}

// requestBody returns the request body, decompressed when the client sent
// it with Content-Encoding gzip or deflate (the Triton client's
// request_compression_algorithm).
//
// Inflation is bounded by what the request may hold, not by the body
// limit alone: a JSON request by the JSON limit; with the binary
// extension (headerLen ≥ 0), the JSON part by the JSON limit, then the
// binary part by the sizes its inputs declare (binary_data_size). So a
// small compressed body cannot make the server hold the whole body limit.
func (s *Server) requestBody(ctx *fasthttp.RequestCtx, headerLen int) ([]byte, error) {
	enc := string(ctx.Request.Header.ContentEncoding())
	var r io.Reader
	switch enc {
	case "", "identity":
		return ctx.PostBody(), nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(ctx.PostBody()))
		if err != nil {
			return nil, badRequest("gzip body: %v", err)
		}
		r = zr
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(ctx.PostBody()))
		if err != nil {
			return nil, badRequest("deflate body: %v", err)
		}
		r = zr
	default:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("Content-Encoding %q is not supported (want gzip or deflate)", enc)}
	}
	// What inflates counts against the budget of bodies in flight as it
	// is read.
	r = s.bodies.reader(&ctx.Request.Header, r)
	jsonLimit := min(s.opts.MaxJSONSize, s.opts.MaxRequestBodySize)
	tooLarge := func(what string, limit int) error {
		return &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("decompressed %s is larger than the limit of %d bytes", what, limit)}
	}
	if headerLen < 0 {
		b, err := io.ReadAll(io.LimitReader(r, int64(jsonLimit)+1))
		if err != nil {
			return nil, inflateError(enc, err)
		}
		if len(b) > jsonLimit {
			return nil, tooLarge("JSON request", jsonLimit)
		}
		return b, nil
	}
	if headerLen > jsonLimit {
		return nil, tooLarge("JSON part", jsonLimit)
	}
	// Read, not preallocated: a small body that claims a large JSON part
	// must not make the server hold it.
	b, err := io.ReadAll(io.LimitReader(r, int64(headerLen)))
	if err != nil {
		return nil, inflateError(enc, err)
	}
	if len(b) < headerLen {
		return nil, badRequest("%s body: the JSON part of %d bytes (%s) ends after %d", enc, headerLen, HeaderInferenceHeaderLength, len(b))
	}
	limit := int64(s.opts.MaxRequestBodySize - headerLen)
	declared, ok := s.declaredBinarySize(b)
	if ok {
		limit = min(declared, limit)
	} // else the decoder reports the malformed JSON part
	var rest []byte
	rest, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, inflateError(enc, err)
	}
	if int64(len(rest)) > limit {
		if !ok || limit < declared {
			return nil, tooLarge("request body", s.opts.MaxRequestBodySize)
		}
		return nil, badRequest("decompressed body has more binary data than its inputs declare (%d bytes)", declared)
	}
	return append(b, rest...), nil
}

// inflateError is the answer to a failed inflation: the budget's refusal
// as it is, else a corrupt body.
func inflateError(enc string, err error) error {
	var refused *errdefs.Error
	if errors.As(err, &refused) {
		return err
	}
	return badRequest("%s body: %v", enc, err)
}

// declaredBinarySize is the sum of the binary_data_size of the inputs of a
// JSON part; false when the part cannot be read.
func (s *Server) declaredBinarySize(jsonPart []byte) (int64, bool) {
	p := s.parsers.Get()
	if len(jsonPart) < 1<<20 { // as in decode: fastjson keeps a large document's memory
		defer s.parsers.Put(p)
	}
	v, err := p.ParseBytes(jsonPart)
	if err != nil {
		return 0, false
	}
	var sum int64
	for _, in := range v.GetArray("inputs") {
		if n := in.GetInt64("parameters", "binary_data_size"); n > 0 && sum <= math.MaxInt64-n {
			sum += n
		}
	}
	return sum, true
}
