package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http's keep-alive connections of the test clients.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		// fasthttp's process-wide Date header ticker, started once.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's worker pool cleaner sleeps MaxIdleWorkerDuration (10s)
		// before it sees the pool stopped; it ends by itself.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// fasthttp's client cleaners, used by the benchmarks; they sleep
		// then exit once their connections are gone.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	)
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startServer serves repo on a loopback port with the real ONNX Runtime and
// returns a client for it. The server is shut down, and checked to stop
// cleanly, when the test ends.
// testConfig is the default config with the gRPC listener on a free
// port, so that servers of parallel tests (and a make run) do not
// compete for 8001.
func testConfig() Config {
	c := defaultConfig()
	c.GRPC.Address, c.GRPC.Port = "127.0.0.1", 0
	return c
}

func startServer(t testing.TB, repo string, mutate func(*Config)) *client.Client {
	t.Helper()
	c := testConfig()
	c.ModelRepository = repo
	c.HTTP.Address = "127.0.0.1"
	c.HTTP.Port = 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.ExitTimeout = 10 * time.Second
	if mutate != nil {
		mutate(&c)
	}
	var w io.Writer = testLog{t}
	if _, ok := t.(*testing.B); ok {
		w = io.Discard
	}
	return serveConfig(t, c, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
}

// serveConfig serves c with log until the test ends, and returns a
// client for its HTTP listener (hc: the client's http.Client; nil, its
// own). The server is checked to stop cleanly.
func serveConfig(t testing.TB, c Config, log *slog.Logger, hc *http.Client) *client.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, log, func(a net.Addr) { addrs <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	scheme := "http://"
	if c.TLS.CertFile != "" {
		scheme = "https://"
	}
	cl := client.New(scheme+addr.String(), hc)
	t.Cleanup(func() {
		cl.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return cl
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badConfig, []byte("http:\n  prot: 8000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	smallBudget := filepath.Join(t.TempDir(), "budget.yaml")
	if err := os.WriteFile(smallBudget, []byte("model_repository: .\nhttp:\n  max_request_body_bytes: 1000\n  max_inflight_body_bytes: 999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	smallWindow := write("window.yaml", "model_repository: .\ngrpc:\n  window_bytes: 1000\n")
	manyWorkers := write("workers.yaml", "model_repository: .\ngrpc:\n  stream_workers: 1000000\n")
	badFeedback := write("feedback.yaml", "model_repository: .\nfeedback:\n  max_rows: -1\n")
	badAudit := write("audit.yaml", "model_repository: .\naudit:\n  max_files: -2\n")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no command", nil, []string{"no command given"}},
		{"a gRPC window below HTTP/2's", []string{"serve", "--config", smallWindow}, []string{"grpc.window_bytes, grpc.conn_window_bytes: at least 65536"}},
		{"too many gRPC stream workers", []string{"serve", "--config", manyWorkers}, []string{"grpc.stream_workers: 1000000 is outside 1..65536"}},
		{"negative feedback bounds", []string{"serve", "--config", badFeedback}, []string{"feedback: max_ids, max_rows, ttl and window must not be negative"}},
		{"negative audit bounds", []string{"serve", "--config", badAudit}, []string{"audit: max_bytes and max_files must not be negative"}},
		{"unknown command", []string{"launch"}, []string{`unknown command "launch"`}},
		{"no repository", []string{"serve"}, []string{"model_repository: required (--model-repository DIR)"}},
		{"bad port", []string{"serve", "--model-repository", ".", "--http-port", "70000"}, []string{"http.port: 70000 is not a TCP port"}},
		{"execution nice out of range", []string{"serve", "--model-repository", ".", "--execution-nice", "20"}, []string{"onnxruntime.execution_nice: must be in 0..19, got 20"}},
		{"unknown config field", []string{"serve", "--config", badConfig}, []string{"line 2: field prot not found"}},
		{"body budget below the body limit", []string{"serve", "--config", smallBudget},
			[]string{"http.max_inflight_body_bytes: must be -1 (unlimited), 0 (default) or at least http.max_request_body_bytes (1000), got 999"}},
		{"missing library", []string{"serve", "--model-repository", ".", "--onnxruntime-lib", "/nonexistent/libonnxruntime.so"},
			[]string{"onnxruntime library not found", "ONNXRUNTIME_LIB", "--onnxruntime-lib", "scripts/fetch-onnxruntime.sh"}},
		{"missing repository", []string{"serve", "--model-repository", "/nonexistent/models", "--onnxruntime-lib", "LIB"}, []string{"model repository", "/nonexistent/models"}},
		{"bad log level", []string{"serve", "--model-repository", ".", "--log-level", "loud"}, []string{"log.level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			for i, a := range args {
				if a == "LIB" {
					args = append(append([]string{}, args[:i]...), append([]string{runtimetest.Library(t)}, args[i+1:]...)...)
				}
			}
			err := run(context.Background(), args, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"version", "--onnxruntime-lib", runtimetest.Library(t)}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "infergate dev") || !strings.Contains(got, "onnxruntime 1.29.0") {
		t.Errorf("got %q", got)
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "infergate.yaml")
	if err := os.WriteFile(path, []byte("model_repository: /models\nhttp:\n  port: 9000\nlog:\n  level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parseServe([]string{"--config", path, "--http-port", "9100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelRepository != "/models" || c.HTTP.Port != 9100 || c.Log.Level != "debug" || c.HTTP.MaxRequestBodyBytes != 128<<20 {
		t.Errorf("got %+v", c)
	}
	c, err = parseServe([]string{"--model-repository", "/m", "--allow-metrics=false", "--metrics-port", "8002", "--metrics-address", "127.0.0.1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Allow || c.Metrics.Port != 8002 || c.Metrics.Address != "127.0.0.1" {
		t.Errorf("metrics flags: got %+v", c.Metrics)
	}
	if d := defaultConfig(); !d.Metrics.Allow || d.Metrics.Port != 0 {
		t.Errorf("metrics defaults: got %+v, want allowed on the HTTP port only", d.Metrics)
	}
	// The committed example configuration is valid.
	if _, err := parseServe([]string{"--config", filepath.Join(runtimetest.Root(t), "configs", "infergate.yaml")}, io.Discard); err != nil {
		t.Errorf("configs/infergate.yaml: %v", err)
	}
}

// TestOversizedRequestLine: a request line over the read buffer (a
// 5,000-character model name) gets 431 with a message for a client, not
// fasthttp's "small read buffer" (issue 11, defect 12).
func TestOversizedRequestLine(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	status, body, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/"+strings.Repeat("m", 5000)+"/infer", []byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), "shorten the URL") || strings.Contains(string(body), "readbuffersize") {
		t.Fatalf("got %d %s, want 431 with a message for a client", status, body)
	}
}

// TestConfigEnv: ${NAME} in a --config document is read from the
// environment; a variable that is not set fails the load, named, and no
// value is ever in the error (issue 12).
func TestConfigEnv(t *testing.T) {
	t.Setenv("INFERGATE_TEST_TOKEN_FILE", "/run/secrets/ci-token")
	t.Setenv("INFERGATE_TEST_PORT", "8123")
	c := defaultConfig()
	doc := "http: {port: ${INFERGATE_TEST_PORT}}\nadmin:\n  tokens: [{name: ci, token_file: ${INFERGATE_TEST_TOKEN_FILE}, scope: write}]\n"
	if err := decodeConfig([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Port != 8123 || len(c.Admin.Tokens) != 1 || c.Admin.Tokens[0].TokenFile != "/run/secrets/ci-token" {
		t.Errorf("got port %d, tokens %+v", c.HTTP.Port, c.Admin.Tokens)
	}
	err := decodeConfig([]byte("http: {port: ${INFERGATE_TEST_UNSET_A}}\nlog: {level: ${INFERGATE_TEST_UNSET_B}}\n"), &c)
	if err == nil || err.Error() != "the config refers to environment variables that are not set: INFERGATE_TEST_UNSET_A, INFERGATE_TEST_UNSET_B" {
		t.Errorf("unset variables: %v", err)
	}
}

// TestHealthcheck: infergate healthcheck, the image's HEALTHCHECK,
// succeeds on a server's 200 and fails with the reason otherwise.
func TestHealthcheck(t *testing.T) {
	cl := startServer(t, runtimetest.Models(t), func(c *Config) { c.StrictReadiness = false })
	for _, tc := range []struct {
		name, url, want string
	}{
		{"ready", cl.BaseURL() + "/v2/health/ready", ""},
		{"a 404", cl.BaseURL() + "/v2/models/nosuch/ready", "unhealthy: " + cl.BaseURL() + "/v2/models/nosuch/ready answered 404"},
		{"nothing listening", "http://127.0.0.1:1/v2/health/ready", "unhealthy: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), []string{"healthcheck", "--url", tc.url, "--timeout", "10s"}, &out, io.Discard)
			switch {
			case tc.want == "" && (err != nil || !strings.HasPrefix(out.String(), "healthy: ")):
				t.Errorf("got %v, %q", err, out.String())
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
