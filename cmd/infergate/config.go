package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/infergate/infergate/gateway"
	infergrpc "github.com/infergate/infergate/grpc"
	"github.com/infergate/infergate/runtime"
)

// Config is the gateway configuration: the --config file, overridden by
// flags. Field defaults are in defaultConfig.
type Config struct {
	// ModelRepository is the model repository directory (--model-repository).
	ModelRepository string `yaml:"model_repository"`
	HTTP            struct {
		// Address to listen on (--http-address). Default 0.0.0.0.
		Address string `yaml:"address"`
		// Port to listen on (--http-port). Default 8000.
		Port int `yaml:"port"`
		// MaxRequestBodyBytes is the largest request body; larger gets 413.
		// Default 128 MiB, enough for a 64×3×224×224 FP32 tensor.
		MaxRequestBodyBytes int `yaml:"max_request_body_bytes"`
		// MaxJSONBytes bounds the JSON part of an inference request;
		// larger gets 413 asking for binary tensors (--max-json-bytes).
		// Default 8 MiB.
		MaxJSONBytes int `yaml:"max_json_bytes"`
		// MaxInflightBodyBytes bounds the memory of all request bodies in
		// flight: past it a request gets 503 with Retry-After before its
		// body is read. Default 1 GiB (0); at least
		// max_request_body_bytes; -1: unlimited.
		MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes"`
		// AdmissionLimit bounds the inference requests in flight: past
		// it a request gets 503 with Retry-After before it is decoded.
		// 0 (default): none; N > 0: N; -1: adaptive, following latency
		// (Envoy's gradient controller; see gateway/admission.go).
		AdmissionLimit int `yaml:"admission_limit"`
		// IdleTimeout closes idle keep-alive connections. Default 2m.
		IdleTimeout time.Duration `yaml:"idle_timeout"`
		// ReadTimeout bounds reading a request, body included; WriteTimeout
		// writing a response. Default 60s each.
		ReadTimeout  time.Duration `yaml:"read_timeout"`
		WriteTimeout time.Duration `yaml:"write_timeout"`
		// DrainDelay keeps serving that long after SIGTERM, with readiness
		// answering 503 and every response closing its connection, so that
		// a load balancer takes the server out before it stops accepting
		// (--drain-delay-secs). Default 0.
		DrainDelay time.Duration `yaml:"drain_delay"`
		// RequestTimeout is the end-to-end deadline of an inference
		// request, its run included, which it terminates; the client gets
		// 504 (--request-timeout-secs). Default 0: none.
		RequestTimeout time.Duration `yaml:"request_timeout"`
	} `yaml:"http"`
	// GRPC is the KServe v2 gRPC listener (inference.GRPCInferenceService).
	GRPC struct {
		// Allow serves gRPC (--allow-grpc). Default true, as Triton.
		Allow bool `yaml:"allow"`
		// Address and Port to listen on (--grpc-address, --grpc-port).
		// Default 0.0.0.0:8001, Triton's; port 0 picks a free one.
		Address string `yaml:"address"`
		Port    int    `yaml:"port"`
		// MaxMessageBytes bounds a message each way. Default: the HTTP
		// body limit (http.max_request_body_bytes), not grpc-go's 4 MiB.
		MaxMessageBytes int `yaml:"max_message_bytes"`
		// WindowBytes and ConnWindowBytes are HTTP/2's flow-control
		// windows, a stream's and a connection's: fixed ones spare
		// grpc-go's bandwidth-delay pings. Default 1 MiB and 4 MiB; -1:
		// grpc-go's estimated windows.
		WindowBytes     int32 `yaml:"window_bytes"`
		ConnWindowBytes int32 `yaml:"conn_window_bytes"`
		// StreamWorkers is how many goroutines serve calls, each kept
		// for many calls (a fresh one per call grows its stack every
		// time). Default 256; -1: a goroutine a call.
		StreamWorkers int `yaml:"stream_workers"`
		// Keepalive: idle connections close after MaxConnectionIdle
		// (default 2m); the server pings idle clients every Time (default
		// 2h) and drops them after Timeout (default 20s); clients may ping
		// every MinPingInterval (default 10s).
		Keepalive struct {
			MaxConnectionIdle time.Duration `yaml:"max_connection_idle"`
			Time              time.Duration `yaml:"time"`
			Timeout           time.Duration `yaml:"timeout"`
			MinPingInterval   time.Duration `yaml:"min_ping_interval"`
		} `yaml:"keepalive"`
	} `yaml:"grpc"`
	// TLS makes every listener (HTTP, gRPC, admin, metrics) speak TLS.
	TLS struct {
		// CertFile and KeyFile are a PEM certificate (with its chain)
		// and its key, read again when they change
		// (--tls-cert-file, --tls-key-file). Default "": plain HTTP.
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// Metrics is the Prometheus endpoint.
	Metrics struct {
		// Allow serves /metrics on the HTTP port (and MetricsPort) and
		// installs the monitoring hooks (--allow-metrics). Default true;
		// false turns metrics and drift monitoring off altogether.
		Allow bool `yaml:"allow"`
		// Port, when set, also serves /metrics on a listener of its own
		// (--metrics-port), as Triton does. Default 0: none.
		Port int `yaml:"port"`
		// Address of that listener (--metrics-address). Default 0.0.0.0.
		Address string `yaml:"address"`
	} `yaml:"metrics"`
	// Monitoring configures the monitoring package.
	Monitoring struct {
		// StateDir keeps the drift references that versions build from
		// their first rows, so that a restart, reload or eviction of the
		// same model file reuses them instead of starting over. Default
		// "": rebuilt at every load.
		StateDir string `yaml:"state_dir"`
	} `yaml:"monitoring"`
	// Tenants split a shared gateway between applications: a request
	// names its tenant in Header; the limits of a tenant named "other"
	// apply to every request that names no configured tenant.
	Tenants struct {
		// Header names a request's tenant. Default X-Tenant.
		Header string `yaml:"header"`
		Limits []struct {
			Name string `yaml:"name"`
			// RatePerSecond and Burst make a token bucket (0: no rate
			// limit; Burst defaults to the rate).
			RatePerSecond float64 `yaml:"rate_per_second"`
			Burst         int     `yaml:"burst"`
			// MaxConcurrency bounds its requests in flight (0: none).
			MaxConcurrency int `yaml:"max_concurrency"`
			// Priority is its requests' batching priority level (1 the
			// highest); a request may lower it, never raise it.
			Priority int `yaml:"priority"`
			// Models it may call; empty: all. Others get 403.
			Models []string `yaml:"models"`
		} `yaml:"limits"`
	} `yaml:"tenants"`
	// Admin guards the repository API (/v2/repository/...).
	Admin struct {
		// Tokens are named bearer tokens, each read from its file and
		// read again when it changes. INFERGATE_ADMIN_TOKEN adds one
		// write token named "env".
		Tokens []AdminTokenConfig `yaml:"tokens"`
		// TrustLoopback serves loopback clients without a token
		// (--admin-trust-loopback). Default true; set false behind a sidecar (Istio, Knative's
		// queue-proxy), where every request comes from 127.0.0.1.
		TrustLoopback bool `yaml:"trust_loopback"`
		// AllowUnauthenticated serves every client without a token,
		// with a warning at start. Default false.
		AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
		// Port, when set, serves the repository API without a token,
		// and pprof under /debug/pprof/, on a listener of its own
		// (--admin-port). Default 0: none.
		Port int `yaml:"port"`
		// Address of that listener (--admin-address). Default
		// 127.0.0.1: this machine only.
		Address string `yaml:"address"`
		// MutexProfileFraction samples 1 in N mutex contention events
		// for /debug/pprof/mutex (Go's runtime.SetMutexProfileFraction).
		// Default 0: off. Only with Port.
		MutexProfileFraction int `yaml:"mutex_profile_fraction"`
		// BlockProfileRate samples one blocking event per N nanoseconds
		// blocked for /debug/pprof/block (runtime.SetBlockProfileRate).
		// Default 0: off. Only with Port.
		BlockProfileRate int `yaml:"block_profile_rate"`
	} `yaml:"admin"`
	// Inference guards the inference API (/v2/models/...).
	Inference struct {
		// Tokens, when set, are required by every /v2/models/... call
		// (health and server metadata stay open); each names the tenant
		// of the requests that present it. Default: none, inference is
		// open.
		Tokens []InferenceTokenConfig `yaml:"tokens"`
	} `yaml:"inference"`

	// Audit is the audit trail of admin actions (package audit).
	Audit struct {
		// File is the JSON-lines file, fsynced an entry. Default: none,
		// and the trail is kept in memory (the last 10000 entries).
		File string `yaml:"file"`
		// MaxBytes rotates the file at this size. Default 64 MiB.
		MaxBytes int64 `yaml:"max_bytes"`
		// MaxFiles is how many rotated files are kept. Default 5.
		MaxFiles int `yaml:"max_files"`
	} `yaml:"audit"`

	// Feedback is ground-truth feedback (package monitoring/feedback).
	Feedback struct {
		// Enabled remembers each request's prediction for POST
		// /v2/models/{m}/feedback. Default true.
		Enabled bool `yaml:"enabled"`
		// MaxIDs bounds the requests remembered. Default 100000.
		MaxIDs int `yaml:"max_ids"`
		// MaxRows bounds their rows, all requests together. Default
		// 1000000.
		MaxRows int `yaml:"max_rows"`
		// TTL is how long a request can get feedback. Default 1h.
		TTL time.Duration `yaml:"ttl"`
		// Window is what infergate_feedback_accuracy and _mae cover.
		// Default 10m.
		Window time.Duration `yaml:"window"`
		// Peers are the other replicas, host:port each; a DNS name
		// stands for each of its addresses (the headless Service in
		// Kubernetes). Feedback for a request another replica served is
		// forwarded there. Default: none.
		Peers []string `yaml:"peers"`
		// Advertise is this replica's host:port as the peers reach it
		// (in Kubernetes "${POD_IP}:8000"); generated request ids end in
		// "@" and it. Default: none.
		Advertise string `yaml:"advertise"`
	} `yaml:"feedback"`

	// Console is the ops console at /console.
	Console struct {
		// HistoryInterval is how often each version's figures are
		// sampled for the console's charts (an hour of samples is kept
		// at the default). Default 10s.
		HistoryInterval time.Duration `yaml:"history_interval"`
	} `yaml:"console"`
	// ResponseCache is the response cache that models enable with
	// response_cache: {enable: true} in their config.yaml.
	ResponseCache struct {
		// MaxEntries (at most maxCacheEntries) bounds the cached responses, least recently used
		// out first (--response-cache-entries). Default 0: no cache.
		MaxEntries int `yaml:"max_entries"`
	} `yaml:"response_cache"`
	// ModelControl is Triton's --model-control-mode: "none" (default)
	// loads every model at start and refuses the repository API's load,
	// unload and label calls; "poll" also rescans the repository every
	// RepositoryPollSecs and allows the API; "explicit" loads only
	// LoadModels at start and allows the API.
	ModelControl string `yaml:"model_control_mode"`
	// RepositoryPollSecs is the poll interval in poll mode
	// (--repository-poll-secs). Default 15, as in Triton.
	RepositoryPollSecs int `yaml:"repository_poll_secs"`
	// LoadModels are the models loaded at start in explicit mode
	// (--load-model, repeatable; "*" for all).
	LoadModels []string `yaml:"load_models"`
	// MaxResidentVersions bounds the versions loaded at once; the least
	// recently used idle unlabelled one is unloaded, and loads again on
	// its next request (--max-resident-versions). Default 0: no bound.
	MaxResidentVersions int `yaml:"max_resident_versions"`
	// Repository tunes the model repository.
	Repository struct {
		// MaxOnDemandLoadsPerMinute bounds the loads of evicted versions
		// (with max_resident_versions) that requests cause in any minute;
		// past it a request gets 503. Default 60; 0: no bound.
		MaxOnDemandLoadsPerMinute int `yaml:"max_on_demand_loads_per_minute"`
		// MaxUploadBytes bounds a model file uploaded with PUT
		// /v2/repository/models/{m}/versions/{v} (and so does
		// http.max_request_body_bytes). Default 128 MiB.
		MaxUploadBytes int64 `yaml:"max_upload_bytes"`
		// OverrideDir holds the model directories that the load API's
		// "file:" parameters form, each until the next load of its
		// model. Default "": $TMPDIR (an emptyDir volume in Kubernetes).
		OverrideDir string `yaml:"override_dir"`
	} `yaml:"repository"`
	// onGRPCListen, when set (by tests), is told the gRPC listener's
	// address.
	onGRPCListen func(net.Addr)
	// pollInterval, when set (by tests), replaces RepositoryPollSecs.
	pollInterval time.Duration
	// path is the --config file, reloaded on SIGHUP and on change ("":
	// none).
	path string
	// driftEvaluateEvery, when set (by tests), replaces
	// monitoring.DefaultEvaluateEvery.
	driftEvaluateEvery time.Duration
	// ExitTimeout bounds the wait for requests in flight at shutdown
	// (--exit-timeout-secs). Default 30s.
	ExitTimeout time.Duration `yaml:"exit_timeout"`
	// StrictReadiness: /v2/health/ready is true only when every model is
	// ready (--strict-readiness). Default true, as in Triton; false makes
	// it true as soon as the repository is loaded.
	StrictReadiness bool `yaml:"strict_readiness"`
	ONNXRuntime     struct {
		// Library is the path of libonnxruntime.so (--onnxruntime-lib).
		// Default: $ONNXRUNTIME_LIB, then .cache/onnxruntime/1.29.0/ in the
		// working directory, where scripts/fetch-onnxruntime.sh puts it.
		Library string `yaml:"library"`
		// ExecutionNice, 1 to 19, runs model executions on threads of
		// their own that many nice steps below the server (at most at
		// nice 19), so that under CPU saturation reading, refusing and
		// answering requests come first (--execution-nice). Each run pays
		// a hand-off between threads (0.1 ms on a 2-core VM). Default 0:
		// executions run at the server's priority. Linux only.
		ExecutionNice int `yaml:"execution_nice"`
	} `yaml:"onnxruntime"`
	Log struct {
		// Level is debug, info, warn or error (--log-level). Default info.
		Level string `yaml:"level"`
		// Format is text or json (--log-format). Default text.
		Format string `yaml:"format"`
	} `yaml:"log"`
}

// AdminTokenConfig is one of admin.tokens.
type AdminTokenConfig struct {
	Name      string `yaml:"name"`
	TokenFile string `yaml:"token_file"`
	// Scope is read or write.
	Scope string `yaml:"scope"`
}

// InferenceTokenConfig is one of inference.tokens.
type InferenceTokenConfig struct {
	Name      string `yaml:"name"`
	TokenFile string `yaml:"token_file"`
	// Tenant names the tenant of the requests presenting the token,
	// whatever their tenant header says. Default: the token's name.
	Tenant string `yaml:"tenant"`
}

func defaultConfig() Config {
	var c Config
	c.HTTP.Address = "0.0.0.0"
	c.HTTP.Port = 8000
	c.HTTP.MaxRequestBodyBytes = gateway.DefaultMaxRequestBodySize
	c.HTTP.IdleTimeout = 2 * time.Minute
	c.HTTP.MaxJSONBytes = gateway.DefaultMaxJSONSize
	c.HTTP.ReadTimeout = time.Minute
	c.HTTP.WriteTimeout = time.Minute
	c.ExitTimeout = 30 * time.Second
	c.StrictReadiness = true
	c.ModelControl = "none"
	c.RepositoryPollSecs = 15
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.Metrics.Allow = true
	c.Metrics.Address = "0.0.0.0"
	c.Repository.MaxOnDemandLoadsPerMinute = 60
	c.Admin.TrustLoopback = true
	c.GRPC.Allow = true
	c.GRPC.Address = "0.0.0.0"
	c.GRPC.Port = 8001
	c.Admin.Address = "127.0.0.1"
	c.Feedback.Enabled = true
	return c
}

// loadConfigFile decodes path strictly over c.
func loadConfigFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := decodeConfig(b, c); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// envRef is a reference to an environment variable in a --config
// document: ${NAME}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces every ${NAME} in a --config document with the
// variable's value (getenv's), so that a secret need not be written in
// the file. A variable that is not set is an error naming it, never its
// value.
func expandEnv(b []byte, getenv func(string) (string, bool)) ([]byte, error) {
	var missing []string
	out := envRef.ReplaceAllFunc(b, func(ref []byte) []byte {
		name := string(ref[2 : len(ref)-1])
		v, ok := getenv(name)
		if !ok {
			missing = append(missing, name)
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("the config refers to environment variables that are not set: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// decodeConfig decodes a --config document strictly (unknown fields are
// errors) over c, ${NAME} references replaced from the environment.
func decodeConfig(b []byte, c *Config) error {
	b, err := expandEnv(b, os.LookupEnv)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.ModelRepository == "":
		return errors.New("model_repository: required (--model-repository DIR)")
	case c.HTTP.Port < 0 || c.HTTP.Port > 65535:
		return fmt.Errorf("http.port: %d is not a TCP port", c.HTTP.Port)
	case c.GRPC.Port < 0 || c.GRPC.Port > 65535:
		return fmt.Errorf("grpc.port: %d is not a TCP port", c.GRPC.Port)
	case c.GRPC.MaxMessageBytes < 0:
		return fmt.Errorf("grpc.max_message_bytes: must not be negative, got %d", c.GRPC.MaxMessageBytes)
	case (c.GRPC.WindowBytes > 0 && c.GRPC.WindowBytes < 64<<10) || (c.GRPC.ConnWindowBytes > 0 && c.GRPC.ConnWindowBytes < 64<<10) ||
		c.GRPC.WindowBytes < -1 || c.GRPC.ConnWindowBytes < -1:
		return errors.New("grpc.window_bytes, grpc.conn_window_bytes: at least 65536 (HTTP/2's initial window), or -1 for grpc-go's estimated windows")
	case c.GRPC.StreamWorkers < -1 || c.GRPC.StreamWorkers > infergrpc.MaxStreamWorkers:
		return fmt.Errorf("grpc.stream_workers: %d is outside 1..%d (0: the default, -1: none)", c.GRPC.StreamWorkers, infergrpc.MaxStreamWorkers)
	case c.GRPC.Keepalive.MaxConnectionIdle < 0 || c.GRPC.Keepalive.Time < 0 || c.GRPC.Keepalive.Timeout < 0 || c.GRPC.Keepalive.MinPingInterval < 0:
		return errors.New("grpc.keepalive: durations must not be negative")
	case c.Admin.Port < 0 || c.Admin.Port > 65535:
		return fmt.Errorf("admin.port: %d is not a TCP port", c.Admin.Port)
	case c.Admin.MutexProfileFraction < 0 || c.Admin.BlockProfileRate < 0:
		return errors.New("admin.mutex_profile_fraction, admin.block_profile_rate: must not be negative")
	case c.Metrics.Port < 0 || c.Metrics.Port > 65535:
		return fmt.Errorf("metrics.port: %d is not a TCP port", c.Metrics.Port)
	case (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""):
		return errors.New("tls: cert_file and key_file go together")
	case c.Audit.MaxBytes < 0 || c.Audit.MaxFiles < 0:
		return errors.New("audit: max_bytes and max_files must not be negative")
	case c.Console.HistoryInterval < 0 || (c.Console.HistoryInterval > 0 && c.Console.HistoryInterval < 10*time.Millisecond):
		return fmt.Errorf("console.history_interval: %v must be at least 10ms", c.Console.HistoryInterval)
	case c.Feedback.MaxIDs < 0 || c.Feedback.MaxRows < 0 || c.Feedback.TTL < 0 || c.Feedback.Window < 0:
		return errors.New("feedback: max_ids, max_rows, ttl and window must not be negative")
	case c.Feedback.Window > 0 && c.Feedback.Window < 10*time.Millisecond:
		return fmt.Errorf("feedback.window: %v is shorter than 10ms", c.Feedback.Window)
	case c.HTTP.MaxJSONBytes <= 0:
		return fmt.Errorf("http.max_json_bytes: must be positive, got %d", c.HTTP.MaxJSONBytes)
	case c.HTTP.ReadTimeout <= 0 || c.HTTP.WriteTimeout <= 0 || c.HTTP.IdleTimeout <= 0:
		return errors.New("http: idle_timeout, read_timeout and write_timeout must be positive")
	case c.HTTP.MaxRequestBodyBytes <= 0:
		return fmt.Errorf("http.max_request_body_bytes: must be positive, got %d", c.HTTP.MaxRequestBodyBytes)
	case c.ModelControl != "none" && c.ModelControl != "poll" && c.ModelControl != "explicit":
		return fmt.Errorf("model_control_mode: %q is not none, poll or explicit", c.ModelControl)
	case c.RepositoryPollSecs < 1:
		return fmt.Errorf("repository_poll_secs: must be 1 or more, got %d", c.RepositoryPollSecs)
	case c.HTTP.MaxInflightBodyBytes < -1 || (c.HTTP.MaxInflightBodyBytes > 0 && c.HTTP.MaxInflightBodyBytes < int64(c.HTTP.MaxRequestBodyBytes)):
		return fmt.Errorf("http.max_inflight_body_bytes: must be -1 (unlimited), 0 (default) or at least http.max_request_body_bytes (%d), got %d", c.HTTP.MaxRequestBodyBytes, c.HTTP.MaxInflightBodyBytes)
	case c.HTTP.AdmissionLimit < -1 || c.HTTP.AdmissionLimit > 1<<20:
		return fmt.Errorf("http.admission_limit: must be -1 (adaptive), 0 (none) or a limit up to %d, got %d", 1<<20, c.HTTP.AdmissionLimit)
	case c.HTTP.RequestTimeout < 0:
		return fmt.Errorf("http.request_timeout: must not be negative, got %v", c.HTTP.RequestTimeout)
	case c.HTTP.DrainDelay < 0 || c.HTTP.DrainDelay > time.Hour:
		return fmt.Errorf("http.drain_delay: must be in 0..1h, got %v", c.HTTP.DrainDelay)
	case c.MaxResidentVersions < 0:
		return fmt.Errorf("max_resident_versions: must not be negative, got %d", c.MaxResidentVersions)
	case c.Repository.MaxOnDemandLoadsPerMinute < 0 || c.Repository.MaxOnDemandLoadsPerMinute > 1_000_000:
		return fmt.Errorf("repository.max_on_demand_loads_per_minute: must be in 0..1000000, got %d", c.Repository.MaxOnDemandLoadsPerMinute)
	case c.Repository.MaxUploadBytes < 0:
		return fmt.Errorf("repository.max_upload_bytes: must not be negative, got %d", c.Repository.MaxUploadBytes)
	case c.ResponseCache.MaxEntries < 0 || c.ResponseCache.MaxEntries > maxCacheEntries:
		return fmt.Errorf("response_cache.max_entries: must be in 0..%d, got %d", maxCacheEntries, c.ResponseCache.MaxEntries)
	case c.ExitTimeout < 0:
		return fmt.Errorf("exit_timeout: must not be negative, got %s", c.ExitTimeout)
	case c.ONNXRuntime.ExecutionNice < 0 || c.ONNXRuntime.ExecutionNice > runtime.MaxExecutionNice:
		return fmt.Errorf("onnxruntime.execution_nice: must be in 0..%d, got %d", runtime.MaxExecutionNice, c.ONNXRuntime.ExecutionNice)
	}
	if err := gateway.ValidateTenants(c.tenants()); err != nil {
		return fmt.Errorf("tenants.limits: %w", err)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	return nil
}

func parseServe(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("infergate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "gateway configuration `file` (YAML); flags override it")
	repo := fs.String("model-repository", "", "model repository `dir`: <dir>/<model>/<version>/model.onnx")
	addr := fs.String("http-address", "0.0.0.0", "address to listen on")
	port := fs.Int("http-port", 8000, "HTTP port")
	lib := fs.String("onnxruntime-lib", "", "path of libonnxruntime.so (default $ONNXRUNTIME_LIB, then .cache/onnxruntime/1.29.0/)")
	nice := fs.Int("execution-nice", 0, "run models on threads this many nice steps, 1 to 19, below the rest of the server (0: at the server's own)")
	maxBody := fs.Int("max-request-bytes", gateway.DefaultMaxRequestBodySize, "largest request body in bytes")
	maxJSON := fs.Int("max-json-bytes", gateway.DefaultMaxJSONSize, "largest JSON part of an inference request in bytes")
	exitSecs := fs.Int("exit-timeout-secs", 30, "seconds to wait for requests in flight at shutdown")
	drainSecs := fs.Int("drain-delay-secs", 0, "seconds to keep serving after SIGTERM, not ready, before the listener closes")
	requestSecs := fs.Int("request-timeout-secs", 0, "end-to-end deadline of an inference request in seconds, its run included (0: none)")
	strict := fs.Bool("strict-readiness", true, "ready only when every model is ready")
	control := fs.String("model-control-mode", "none", "none, poll or explicit (Triton's model control modes)")
	pollSecs := fs.Int("repository-poll-secs", 15, "seconds between repository scans in poll mode")
	var loadModels stringList
	fs.Var(&loadModels, "load-model", "model to load at start in explicit mode (repeatable; * for all)")
	maxResident := fs.Int("max-resident-versions", 0, "most model versions loaded at once, least recently used unloaded first (0: no bound)")
	cacheEntries := fs.Int("response-cache-entries", 0, "size of the response cache in responses (0: none)")
	allowMetrics := fs.Bool("allow-metrics", true, "serve Prometheus metrics on /metrics and watch drift (false: no monitoring at all)")
	metricsPort := fs.Int("metrics-port", 0, "also serve /metrics on this port (0: only on the HTTP port)")
	metricsAddr := fs.String("metrics-address", "0.0.0.0", "address of the --metrics-port listener")
	adminPort := fs.Int("admin-port", 0, "also serve the repository API without a token, and pprof, on this port (0: none)")
	adminAddr := fs.String("admin-address", "127.0.0.1", "address of the --admin-port listener")
	trustLoopback := fs.Bool("admin-trust-loopback", true, "serve the repository API to loopback clients without a token (false behind a sidecar)")
	grpcPort := fs.Int("grpc-port", 8001, "gRPC port (0: a free one)")
	grpcAddr := fs.String("grpc-address", "0.0.0.0", "address of the gRPC listener")
	allowGRPC := fs.Bool("allow-grpc", true, "serve the KServe v2 gRPC API")
	certFile := fs.String("tls-cert-file", "", "PEM certificate `file`: every listener speaks HTTPS (reloaded on change)")
	keyFile := fs.String("tls-key-file", "", "PEM key `file` of --tls-cert-file")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := defaultConfig()
	if *configFile != "" {
		c.path = *configFile
		if err := loadConfigFile(*configFile, &c); err != nil {
			return Config{}, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "model-repository":
			c.ModelRepository = *repo
		case "http-address":
			c.HTTP.Address = *addr
		case "admin-port":
			c.Admin.Port = *adminPort
		case "admin-address":
			c.Admin.Address = *adminAddr
		case "admin-trust-loopback":
			c.Admin.TrustLoopback = *trustLoopback
		case "http-port":
			c.HTTP.Port = *port
		case "onnxruntime-lib":
			c.ONNXRuntime.Library = *lib
		case "execution-nice":
			c.ONNXRuntime.ExecutionNice = *nice
		case "max-request-bytes":
			c.HTTP.MaxRequestBodyBytes = *maxBody
		case "max-json-bytes":
			c.HTTP.MaxJSONBytes = *maxJSON
		case "exit-timeout-secs":
			c.ExitTimeout = time.Duration(*exitSecs) * time.Second
		case "drain-delay-secs":
			c.HTTP.DrainDelay = time.Duration(*drainSecs) * time.Second
		case "request-timeout-secs":
			c.HTTP.RequestTimeout = time.Duration(*requestSecs) * time.Second
		case "strict-readiness":
			c.StrictReadiness = *strict
		case "model-control-mode":
			c.ModelControl = *control
		case "repository-poll-secs":
			c.RepositoryPollSecs = *pollSecs
		case "load-model":
			c.LoadModels = loadModels
		case "max-resident-versions":
			c.MaxResidentVersions = *maxResident
		case "response-cache-entries":
			c.ResponseCache.MaxEntries = *cacheEntries
		case "allow-metrics":
			c.Metrics.Allow = *allowMetrics
		case "metrics-port":
			c.Metrics.Port = *metricsPort
		case "metrics-address":
			c.Metrics.Address = *metricsAddr
		case "grpc-port":
			c.GRPC.Port = *grpcPort
		case "grpc-address":
			c.GRPC.Address = *grpcAddr
		case "allow-grpc":
			c.GRPC.Allow = *allowGRPC
		case "tls-cert-file":
			c.TLS.CertFile = *certFile
		case "tls-key-file":
			c.TLS.KeyFile = *keyFile
		case "log-level":
			c.Log.Level = *level
		case "log-format":
			c.Log.Format = *format
		}
	})
	return c, c.validate()
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func newLogger(c Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// libraryPath finds libonnxruntime: the configured path, $ONNXRUNTIME_LIB,
// then the fetch script's cache under the working directory.
func libraryPath(configured string) string {
	if configured != "" {
		return configured
	}
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p
	}
	return filepath.Join(".cache", "onnxruntime", "1.29.0", "libonnxruntime.so")
}

func printVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("infergate version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lib := fs.String("onnxruntime-lib", "", "path of libonnxruntime.so")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "infergate %s\n", version)
	env, err := runtime.Open(runtime.Options{LibraryPath: libraryPath(*lib)})
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Fprintf(stdout, "onnxruntime %s\n", env.Version())
	return nil
}

// maxCacheEntries bounds response_cache.max_entries.
const maxCacheEntries = 1 << 24

// adminAuth is the gateway's AdminAuth for c, with INFERGATE_ADMIN_TOKEN
// (getenv's) as a write token named "env".
func (c *Config) adminAuth(getenv func(string) string) gateway.AdminAuth {
	a := gateway.AdminAuth{DistrustLoopback: !c.Admin.TrustLoopback, AllowUnauthenticated: c.Admin.AllowUnauthenticated}
	for _, t := range c.Admin.Tokens {
		a.Tokens = append(a.Tokens, gateway.AdminToken{Name: t.Name, Scope: gateway.Scope(t.Scope), File: t.TokenFile})
	}
	if v := getenv("INFERGATE_ADMIN_TOKEN"); v != "" {
		a.Tokens = append(a.Tokens, gateway.AdminToken{Name: "env", Scope: gateway.ScopeWrite, Value: v})
	}
	return a
}

// inferenceTokens is the gateway's inference tokens for c.
func (c *Config) inferenceTokens() []gateway.InferenceToken {
	var out []gateway.InferenceToken
	for _, t := range c.Inference.Tokens {
		out = append(out, gateway.InferenceToken{Name: t.Name, Tenant: t.Tenant, File: t.TokenFile})
	}
	return out
}

// access is the gateway's reloadable access options for c: tokens and
// tenants (Server.Reconfigure).
func (c *Config) access(getenv func(string) string) gateway.Options {
	return gateway.Options{Admin: c.adminAuth(getenv), InferenceTokens: c.inferenceTokens(), TenantHeader: c.Tenants.Header, Tenants: c.tenants()}
}

// tenants is the gateway's tenant list for c.
func (c *Config) tenants() []gateway.Tenant {
	var out []gateway.Tenant
	for _, t := range c.Tenants.Limits {
		out = append(out, gateway.Tenant{Name: t.Name, Rate: t.RatePerSecond, Burst: t.Burst, MaxConcurrency: t.MaxConcurrency, Priority: t.Priority, Models: t.Models})
	}
	return out
}
