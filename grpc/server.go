package grpc

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/grpc/inference"
	"github.com/infergate/infergate/monitoring"
	"github.com/infergate/infergate/monitoring/feedback"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
)

// DefaultMaxMessageSize is the largest message by default: the HTTP
// body limit's default (128 MiB), not grpc-go's 4 MiB, so that a batch
// of images fits over either protocol.
const DefaultMaxMessageSize = 128 << 20

// RequestObserver is told of every inference call; the monitoring
// package implements it (as it does gateway's).
type RequestObserver interface {
	ObserveRequest(model string, v *repository.Version, protocol string, status int, took time.Duration, received, sent int)
}

// Access applies the gateway's tokens and tenants to gRPC calls, with
// the same rules and texts as over HTTP; *gateway.Server implements it.
// Its errors carry errdefs kinds.
type Access interface {
	// AuthorizeAdmin authorizes a repository call: authorization is the
	// call's "authorization" metadata ("" none), loopback whether the
	// peer is on this machine, write whether the call changes something.
	// It returns the actor for the logs.
	AuthorizeAdmin(authorization []byte, loopback, write bool) (actor string, err error)
	// AuthorizeInference returns the tenant named by an inference call's
	// token ("" when tokens are not required, or name none).
	AuthorizeInference(authorization []byte) (tenant string, err error)
	// AdmitTenant applies the limits of the call's tenant (tenant, else
	// the one its tenant header names) for model: release ends the call,
	// priority caps a requested priority; both nil when no limits apply.
	AdmitTenant(tenant string, header []byte, model string) (release func(), priority func(int64) int64, err error)
	// TenantHeader is the metadata key (lower case) that names a call's
	// tenant; "" when no tenants are configured.
	TenantHeader() string
}

// Options configure a Server.
type Options struct {
	// Audit receives the repository calls (load, unload). Default: none.
	Audit *audit.Log
	// Feedback remembers each inference's prediction under its id (the
	// request's id, else its x-request-id) for ground-truth feedback.
	// Default: none.
	Feedback *feedback.Store
	// Advertise ends generated request ids ("@" and it), as over HTTP.
	// Default: none.
	Advertise string
	// Version is reported in the server metadata. Default "dev".
	Version string
	// Logger receives call errors. Default: discard.
	Logger *slog.Logger
	// MaxMessageSize bounds a received message, and a sent one. Default
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// Requests is told of every inference call. Default: none.
	Requests RequestObserver
	// Router picks the version of each call (the gateway's). Required.
	Router *router.Router
	// Statistics answers ModelStatistics. Default: none (UNIMPLEMENTED).
	Statistics StatisticsReporter
	// Access applies tokens and tenants. Default: none; the repository
	// RPCs then serve loopback peers only.
	Access Access
	// ModelControl is Triton's model control mode: "poll" or "explicit"
	// allow the repository's load and unload RPCs. Default "none".
	ModelControl string
	// StrictReadiness makes ServerReady true only while every model is.
	StrictReadiness bool
	// RequestTimeout bounds an inference call end to end, its run
	// included (as HTTP's). Default 0: none.
	RequestTimeout time.Duration
	// TLS, when not nil, makes the listener speak TLS.
	TLS *tls.Config
	// Keepalive: a connection idle this long is closed (default 2m); the
	// server pings an idle client every KeepaliveTime (default 2h, as
	// grpc-go) and drops it after KeepaliveTimeout without an answer
	// (default 20s). Clients may ping every MinPingInterval (default 10s).
	MaxConnectionIdle, KeepaliveTime, KeepaliveTimeout, MinPingInterval time.Duration
	// WindowBytes and ConnWindowBytes are HTTP/2's flow-control windows
	// of a stream and of a connection. Fixed windows turn off grpc-go's
	// bandwidth-delay estimation, whose pings cost every busy connection
	// work (the mlp_256 at c=64 over one connection served 6% more
	// requests with 1 MiB and 4 MiB, 7 alternating rounds). Default 1
	// MiB and 4 MiB; negative: grpc-go's estimated windows.
	WindowBytes, ConnWindowBytes int32
	// StreamWorkers is how many goroutines serve calls, each kept for
	// many calls (grpc-go's NumStreamWorkers); a call that finds them all
	// busy gets a goroutine of its own, as every call does without them.
	// A fresh goroutine grows its stack on every call: at c=64 on the
	// mlp_256, runtime.copystack was 8 % of the server's CPU, and 256
	// workers served 5 to 15 % more calls in 6 alternating rounds.
	// (grpc-go marks NumStreamWorkers experimental.)
	// Default DefaultStreamWorkers; negative: none.
	StreamWorkers int
}

// Server serves inference.GRPCInferenceService for a repository.
type Server struct {
	inference.UnimplementedGRPCInferenceServiceServer

	repo     *repository.Repository
	router   *router.Router
	opts     Options
	log      *slog.Logger
	observer RequestObserver
	srv      *grpclib.Server
	idSuffix string // ends generated request ids: "@" + Options.Advertise

	mu       sync.Mutex
	draining bool
}

type nopObserver struct{}

func (nopObserver) ObserveRequest(string, *repository.Version, string, int, time.Duration, int, int) {
}

// New returns a Server for repo.
func New(repo *repository.Repository, opts Options) *Server {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.MaxConnectionIdle <= 0 {
		opts.MaxConnectionIdle = 2 * time.Minute
	}
	if opts.KeepaliveTime <= 0 {
		opts.KeepaliveTime = 2 * time.Hour
	}
	if opts.KeepaliveTimeout <= 0 {
		opts.KeepaliveTimeout = 20 * time.Second
	}
	if opts.MinPingInterval <= 0 {
		opts.MinPingInterval = 10 * time.Second
	}
	s := &Server{repo: repo, router: opts.Router, opts: opts, log: opts.Logger, observer: opts.Requests}
	if opts.Advertise != "" {
		s.idSuffix = "@" + opts.Advertise
	}
	if s.observer == nil {
		s.observer = nopObserver{}
	}
	so := []grpclib.ServerOption{
		grpclib.MaxRecvMsgSize(opts.MaxMessageSize),
		grpclib.MaxSendMsgSize(opts.MaxMessageSize),
		grpclib.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: opts.MaxConnectionIdle, Time: opts.KeepaliveTime, Timeout: opts.KeepaliveTimeout}),
		grpclib.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.MinPingInterval, PermitWithoutStream: true}),
		grpclib.ChainUnaryInterceptor(s.unaryRecover),
		grpclib.ChainStreamInterceptor(s.streamRecover),
	}
	if opts.WindowBytes == 0 {
		opts.WindowBytes = DefaultWindowBytes
	}
	if opts.ConnWindowBytes == 0 {
		opts.ConnWindowBytes = DefaultConnWindowBytes
	}
	if opts.WindowBytes > 0 {
		so = append(so, grpclib.InitialWindowSize(opts.WindowBytes))
	}
	if opts.ConnWindowBytes > 0 {
		so = append(so, grpclib.InitialConnWindowSize(opts.ConnWindowBytes))
	}
	if opts.StreamWorkers == 0 {
		opts.StreamWorkers = DefaultStreamWorkers
	}
	if opts.StreamWorkers > 0 {
		so = append(so, grpclib.NumStreamWorkers(uint32(opts.StreamWorkers)))
	}
	if opts.TLS != nil {
		so = append(so, grpclib.Creds(credentials.NewTLS(opts.TLS)))
	}
	s.srv = grpclib.NewServer(so...)
	inference.RegisterGRPCInferenceServiceServer(s.srv, s)
	return s
}

// Defaults of Options' flow-control windows and stream workers.
const (
	DefaultWindowBytes     = 1 << 20
	DefaultConnWindowBytes = 4 << 20
	DefaultStreamWorkers   = 256
)

// MaxStreamWorkers bounds Options.StreamWorkers.
const MaxStreamWorkers = 1 << 16

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, grpclib.ErrServerStopped) {
		return err
	}
	return nil
}

// Drain makes ServerReady false, ahead of Shutdown.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// Shutdown stops accepting calls and waits for the calls and streams in
// flight, or for ctx, when it stops them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	return StopGracefully(ctx, s.srv)
}

// StopGracefully stops srv as Shutdown does: it stops accepting calls and
// waits for those in flight, or for ctx, when it stops them.
func StopGracefully(ctx context.Context, srv *grpclib.Server) error {
	done := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		srv.Stop()
		<-done
		return ctx.Err()
	}
}

// unaryRecover turns a panic into an Internal error, logged with the call.
func (s *Server) unaryRecover(ctx context.Context, req any, info *grpclib.UnaryServerInfo, h grpclib.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", p)
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	id := requestID(ctx, s.idSuffix)
	grpclib.SetHeader(ctx, metadata.Pairs(headerRequestID, id))
	return h(context.WithValue(ctx, requestIDKey{}, id), req)
}

func (s *Server) streamRecover(srv any, ss grpclib.ServerStream, info *grpclib.StreamServerInfo, h grpclib.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", p)
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	id := requestID(ss.Context(), s.idSuffix)
	ss.SetHeader(metadata.Pairs(headerRequestID, id))
	return h(srv, &idStream{ss, context.WithValue(ss.Context(), requestIDKey{}, id)})
}

// headerRequestID is the request id's metadata key, as HTTP's X-Request-Id.
const headerRequestID = "x-request-id"

// requestIDKey is the context key of the call's request id.
type requestIDKey struct{}

// idStream is a stream whose context carries the request id.
type idStream struct {
	grpclib.ServerStream
	ctx context.Context
}

func (s *idStream) Context() context.Context { return s.ctx }

// requestID returns the call's request id: the one the interceptor set,
// the client's x-request-id, or a generated one ending in suffix.
func requestID(ctx context.Context, suffix string) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return id
	}
	if id := first(ctx, headerRequestID); id != "" && len(id) <= 128 {
		return id
	}
	return strconv.FormatUint(rand.Uint64()|1<<63, 16) + suffix
}

// first returns the first value of a metadata key of the call.
func first(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// codeOf maps an error to its gRPC code, as Triton does, by its errdefs
// kind: the one place that does.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	switch errdefs.KindOf(err) {
	case errdefs.Invalid:
		return codes.InvalidArgument
	case errdefs.NotFound:
		return codes.NotFound
	case errdefs.Unavailable, errdefs.Overloaded:
		return codes.Unavailable
	case errdefs.Throttled:
		return codes.ResourceExhausted
	case errdefs.Timeout:
		return codes.DeadlineExceeded
	case errdefs.Canceled:
		return codes.Canceled
	case errdefs.Unauthenticated:
		return codes.Unauthenticated
	case errdefs.Forbidden:
		return codes.PermissionDenied
	}
	return codes.Internal
}

// toStatus returns err as a gRPC status error, with the same text as over
// HTTP.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

func invalid(format string, args ...any) error {
	return errdefs.New(errdefs.Invalid, format, args...)
}

// ServerLive answers true while the server runs.
func (s *Server) ServerLive(context.Context, *inference.ServerLiveRequest) (*inference.ServerLiveResponse, error) {
	return &inference.ServerLiveResponse{Live: true}, nil
}

// ServerReady answers as HTTP's /v2/health/ready.
func (s *Server) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	return &inference.ServerReadyResponse{Ready: !draining && (!s.opts.StrictReadiness || s.repo.Ready())}, nil
}

// ServerMetadata names the server and its extensions.
func (s *Server) ServerMetadata(context.Context, *inference.ServerMetadataRequest) (*inference.ServerMetadataResponse, error) {
	return &inference.ServerMetadataResponse{Name: "infergate", Version: s.opts.Version,
		Extensions: []string{"binary_tensor_data", "model_configuration", "model_repository"}}, nil
}

// version looks up a model's version (the highest ready without one).
func (s *Server) version(name, version string) (*repository.Model, *repository.Version, error) {
	m, err := s.repo.Model(name)
	if err != nil {
		return nil, nil, err
	}
	n, err := parseVersion(version)
	if err != nil {
		return nil, nil, err
	}
	v, err := m.Lookup(n, "")
	if err != nil {
		return nil, nil, err
	}
	return m, v, nil
}

func parseVersion(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, invalid("invalid model version %q: want a positive integer", s)
	}
	return n, nil
}

// ModelReady answers whether the model (version) can serve; an unknown
// model is NOT_FOUND, as Triton answers.
func (s *Server) ModelReady(ctx context.Context, req *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	if err := s.authorizeModelCall(ctx); err != nil {
		return nil, err
	}
	if _, _, err := s.version(req.GetName(), req.GetVersion()); err != nil {
		if codeOf(err) == codes.Unavailable {
			return &inference.ModelReadyResponse{Ready: false}, nil
		}
		return nil, toStatus(err)
	}
	return &inference.ModelReadyResponse{Ready: true}, nil
}

// ModelMetadata answers as HTTP's GET /v2/models/{m}[/versions/{v}].
func (s *Server) ModelMetadata(ctx context.Context, req *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	if err := s.authorizeModelCall(ctx); err != nil {
		return nil, err
	}
	m, v, err := s.version(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &inference.ModelMetadataResponse{Name: m.Name, Platform: repository.Platform, Versions: m.ReadyVersions()}
	for _, t := range v.Inputs {
		out.Inputs = append(out.Inputs, &inference.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape})
	}
	for _, t := range v.Outputs {
		out.Outputs = append(out.Outputs, &inference.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape})
	}
	return out, nil
}

// ModelConfig answers the configuration in effect, as Triton's model
// configuration extension: name, platform, batching and the tensors.
func (s *Server) ModelConfig(ctx context.Context, req *inference.ModelConfigRequest) (*inference.ModelConfigResponse, error) {
	if err := s.authorizeModelCall(ctx); err != nil {
		return nil, err
	}
	m, v, err := s.version(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, toStatus(err)
	}
	bounded := v.Batched && v.MaxBatchSize > 0
	cfg := &inference.ModelConfig{Name: m.Name, Platform: repository.Platform, Backend: "onnxruntime"}
	if bounded {
		cfg.MaxBatchSize = int32(v.MaxBatchSize)
	}
	dims := func(shape []int64) []int64 {
		if bounded {
			return shape[1:]
		}
		return shape
	}
	for _, t := range v.Inputs {
		cfg.Input = append(cfg.Input, &inference.ModelInput{Name: t.Name, DataType: inference.DataType(inference.DataType_value[t.DataType.ConfigName()]), Dims: dims(t.Shape)})
	}
	for _, t := range v.Outputs {
		cfg.Output = append(cfg.Output, &inference.ModelOutput{Name: t.Name, DataType: inference.DataType(inference.DataType_value[t.DataType.ConfigName()]), Dims: dims(t.Shape)})
	}
	if c := m.Config(); c != nil && c.DynamicBatching != nil && bounded {
		cfg.SchedulingChoice = &inference.ModelConfig_DynamicBatching{DynamicBatching: &inference.ModelDynamicBatching{
			MaxQueueDelayMicroseconds: uint64(c.DynamicBatching.MaxQueueDelayMicroseconds)}}
	}
	return &inference.ModelConfigResponse{Config: cfg}, nil
}

// adminTimeout bounds a repository call, as over HTTP.
const adminTimeout = 10 * time.Minute

// authorizeAdmin checks a repository call's token, and returns who
// made the call: the token's name, or without one the client's address.
func (s *Server) authorizeAdmin(ctx context.Context, write bool) (actor string, err error) {
	loopback := false
	if p, ok := peer.FromContext(ctx); ok {
		actor = p.Addr.String()
		if a, ok := p.Addr.(*net.TCPAddr); ok {
			loopback = a.IP.IsLoopback()
			actor = a.IP.String()
		}
	}
	auth := first(ctx, "authorization")
	if s.opts.Access == nil {
		if loopback && auth == "" {
			return actor, nil
		}
		return "", status.Error(codes.Unauthenticated, "the repository API needs a bearer token from a non-loopback client")
	}
	name, err := s.opts.Access.AuthorizeAdmin([]byte(auth), loopback, write)
	if err != nil {
		return "", toStatus(err)
	}
	if auth != "" {
		actor = name
	}
	if write {
		s.log.Info("admin call", "actor", actor, "protocol", "grpc", "method", methodName(ctx), "request_id", requestID(ctx, s.idSuffix))
	}
	return actor, nil
}

// audit appends a repository call to the audit trail.
func (s *Server) audit(ctx context.Context, e audit.Entry, err error) {
	if s.opts.Audit == nil {
		return
	}
	e.RequestID, e.Protocol = requestID(ctx, s.idSuffix), "grpc"
	s.opts.Audit.Record(e, err)
}

// authorizeModelCall checks the inference token of a model call that
// is not an inference (metadata, readiness, config).
func (s *Server) authorizeModelCall(ctx context.Context) error {
	if s.opts.Access == nil {
		return nil
	}
	_, err := s.opts.Access.AuthorizeInference([]byte(first(ctx, "authorization")))
	return toStatus(err)
}

func methodName(ctx context.Context) string {
	m, _ := grpclib.Method(ctx)
	return m
}

func (s *Server) allowControl() error {
	if s.opts.ModelControl == "poll" || s.opts.ModelControl == "explicit" {
		return nil
	}
	return status.Error(codes.PermissionDenied, "model control is disabled: start the server with --model-control-mode=poll or explicit")
}

// RepositoryIndex lists every model version with its state, as Triton.
func (s *Server) RepositoryIndex(ctx context.Context, req *inference.RepositoryIndexRequest) (*inference.RepositoryIndexResponse, error) {
	if _, err := s.authorizeAdmin(ctx, false); err != nil {
		return nil, err
	}
	out := &inference.RepositoryIndexResponse{}
	for _, e := range s.repo.Index(req.GetReady()) {
		out.Models = append(out.Models, &inference.RepositoryIndexResponse_ModelIndex{Name: e.Name, Version: e.Version, State: string(e.State), Reason: e.Reason})
	}
	return out, nil
}

// RepositoryModelLoad loads or reloads a model, with Triton's optional
// "config" (JSON) and "file:<version>/<file>" (bytes) parameters.
func (s *Server) RepositoryModelLoad(ctx context.Context, req *inference.RepositoryModelLoadRequest) (*inference.RepositoryModelLoadResponse, error) {
	actor, err := s.authorizeAdmin(ctx, true)
	if err != nil {
		return nil, err
	}
	if err := s.allowControl(); err != nil {
		return nil, err
	}
	var opts repository.LoadOptions
	for k, p := range req.GetParameters() {
		switch {
		case k == "config":
			text, ok := p.GetParameterChoice().(*inference.ModelRepositoryParameter_StringParam)
			if !ok {
				return nil, toStatus(invalid("parameters.config must be a string holding the model configuration as JSON"))
			}
			c, err := repository.ParseConfigJSON([]byte(text.StringParam))
			if err != nil {
				return nil, toStatus(invalid("parameters.config: %v", err))
			}
			opts.Config = c
		case strings.HasPrefix(k, "file:"):
			b, ok := p.GetParameterChoice().(*inference.ModelRepositoryParameter_BytesParam)
			if !ok {
				return nil, toStatus(invalid("parameters[%q] must be bytes: the file's content", k))
			}
			if opts.Files == nil {
				opts.Files = map[string][]byte{}
			}
			opts.Files[strings.TrimPrefix(k, "file:")] = b.BytesParam
		}
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	before := audit.Doc(s.repo.Summary(req.GetModelName()))
	err = s.repo.LoadModel(c, req.GetModelName(), opts)
	s.audit(ctx, audit.Entry{Actor: actor, Action: "load", Model: req.GetModelName(), Before: before, After: audit.Doc(s.repo.Summary(req.GetModelName()))}, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &inference.RepositoryModelLoadResponse{}, nil
}

// RepositoryModelUnload unloads every version of a model once its calls
// are done.
func (s *Server) RepositoryModelUnload(ctx context.Context, req *inference.RepositoryModelUnloadRequest) (*inference.RepositoryModelUnloadResponse, error) {
	actor, err := s.authorizeAdmin(ctx, true)
	if err != nil {
		return nil, err
	}
	if err := s.allowControl(); err != nil {
		return nil, err
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	before := audit.Doc(s.repo.Summary(req.GetModelName()))
	err = s.repo.UnloadModel(c, req.GetModelName())
	s.audit(ctx, audit.Entry{Actor: actor, Action: "unload", Model: req.GetModelName(), Before: before, After: audit.Doc(s.repo.Summary(req.GetModelName()))}, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &inference.RepositoryModelUnloadResponse{}, nil
}

// StatisticsReporter gives the statistics of a model's loaded versions
// (version 0: all); the monitoring package implements it.
type StatisticsReporter interface {
	Statistics(model string, version int64) []monitoring.VersionStatistics
}

// ModelStatistics answers Triton's statistics extension: a model's
// loaded versions (a version: that one; no name: every model).
func (s *Server) ModelStatistics(ctx context.Context, req *inference.ModelStatisticsRequest) (*inference.ModelStatisticsResponse, error) {
	if err := s.authorizeModelCall(ctx); err != nil {
		return nil, err
	}
	if s.opts.Statistics == nil {
		return nil, status.Error(codes.Unimplemented, "statistics need monitoring (--allow-metrics)")
	}
	var names []string
	var version int64
	if req.GetName() != "" {
		m, v, err := s.version(req.GetName(), req.GetVersion())
		if err != nil {
			return nil, toStatus(err)
		}
		names = []string{m.Name}
		if req.GetVersion() != "" {
			version = v.Number
		}
	} else {
		for _, m := range s.repo.Models() {
			names = append(names, m.Name)
		}
	}
	d := func(x monitoring.Duration) *inference.StatisticDuration {
		return &inference.StatisticDuration{Count: x.Count, Ns: x.Ns}
	}
	out := &inference.ModelStatisticsResponse{}
	for _, name := range names {
		for _, st := range s.opts.Statistics.Statistics(name, version) {
			out.ModelStats = append(out.ModelStats, &inference.ModelStatistics{
				Name: st.Model, Version: strconv.FormatInt(st.Version, 10), LastInference: uint64(max(st.LastInference, 0)),
				InferenceCount: st.InferenceCount, ExecutionCount: st.ExecutionCount,
				InferenceStats: &inference.InferStatistics{Success: d(st.Success), Fail: d(st.Fail), Queue: d(st.Queue),
					ComputeInput: d(monitoring.Duration{}), ComputeInfer: d(st.ComputeInfer), ComputeOutput: d(monitoring.Duration{}),
					CacheHit: d(st.CacheHit), CacheMiss: d(st.CacheMiss)},
			})
		}
	}
	return out, nil
}
