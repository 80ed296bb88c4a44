package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAdminAuth: the repository API with named tokens, loopback not
// trusted (as behind a sidecar): 401 without a token or with a wrong
// one, 403 for a read token on a write call, 200 with the right one; a
// rotated token file takes effect without a restart; and no token ever
// appears in the logs, at debug level (issue 12).
func TestAdminAuth(t *testing.T) {
	dir := t.TempDir()
	writeTok := filepath.Join(dir, "write.token")
	readTok := filepath.Join(dir, "read.token")
	writeFile(t, writeTok, []byte("w-0123456789abcdef\n"))
	writeFile(t, readTok, []byte("r-fedcba9876543210"))
	root := t.TempDir() // routing documents are written into the repository
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	c := testConfig()
	c.ModelRepository = root
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.ModelControl, c.LoadModels = "explicit", []string{"mlp"}
	c.Admin.TrustLoopback = false
	c.Admin.Tokens = append(c.Admin.Tokens,
		AdminTokenConfig{"ci", writeTok, "write"},
		AdminTokenConfig{"dashboard", readTok, "read"})
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, log, func(a net.Addr) { addrs <- a }) }()
	cl := client.New("http://"+(<-addrs).String(), nil)
	defer func() {
		cl.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	call := func(method, path, token string, body string) (int, string, http.Header) {
		t.Helper()
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		status, b, hdr, err := cl.Do(context.Background(), method, path, []byte(body), h)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b), hdr
	}
	routing := `{"split": [{"version": 1, "weight": 100}]}`
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		want                            string
	}{
		{"no token", "POST", "/v2/repository/index", "", "", 401, "the repository API needs a bearer token from a non-loopback client: configure admin.tokens (or INFERGATE_ADMIN_TOKEN) and send Authorization: Bearer <token>"},
		{"wrong token", "POST", "/v2/repository/index", "w-0123456789abcdeX", "", 401, "invalid admin token"},
		{"read token, read call", "POST", "/v2/repository/index", "r-fedcba9876543210", "", 200, ""},
		{"read token, write call", "PUT", "/v2/repository/models/mlp/routing", "r-fedcba9876543210", routing, 403, `admin token "dashboard" has read scope: this call needs write`},
		{"write token, write call", "PUT", "/v2/repository/models/mlp/routing", "w-0123456789abcdef", routing, 200, ""},
		{"write token, drift", "GET", "/v2/repository/models/mlp/versions/1/drift", "w-0123456789abcdef", "", 0, ""},
		{"inference needs none", "POST", "/v2/models/mlp/infer", "", `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := call(tc.method, tc.path, tc.token, tc.body)
			if tc.status == 0 {
				if status == 401 || status == 403 {
					t.Errorf("refused: %d %s", status, body)
				}
				return
			}
			if status != tc.status || (tc.want != "" && errorBody(t, []byte(body)) != tc.want) {
				t.Errorf("got %d %s, want %d %q", status, body, tc.status, tc.want)
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if h.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id in the response")
			}
		})
	}

	// Rotation: the new token works, the old one no longer does.
	writeFile(t, writeTok, []byte("w-rotated-000000"))
	waitFor(t, "the rotated token", func() bool {
		status, _, _ := call("POST", "/v2/repository/index", "w-rotated-000000", "")
		return status == 200
	})
	if status, body, _ := call("POST", "/v2/repository/index", "w-0123456789abcdef", ""); status != 401 {
		t.Errorf("the old token after rotation: %d %s", status, body)
	}
	metrics := scrapeMetrics(t, cl)
	for _, secret := range []string{"w-0123456789abcdef", "r-fedcba9876543210", "w-rotated-000000", "0123456789"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token is in the logs:\n%s", logs.String())
		}
		if strings.Contains(metrics, secret) {
			t.Errorf("a token is in the metrics")
		}
	}
	if !strings.Contains(logs.String(), `msg="admin call" actor=ci method=PUT path=/v2/repository/models/mlp/routing request_id=`) {
		t.Errorf("the write call is not logged with its actor:\n%s", logs.String())
	}
}

// TestAdminAuthDefaults: without tokens, loopback clients keep the
// repository API (make run's curl); INFERGATE_ADMIN_TOKEN adds a write
// token named env; a bad token file fails the start.
func TestAdminAuthDefaults(t *testing.T) {
	cl := startServer(t, runtimetest.Models(t), nil)
	if status, _, _, err := cl.Do(context.Background(), "POST", "/v2/repository/index", nil, nil); err != nil || status != 200 {
		t.Errorf("loopback without a token: %d %v", status, err)
	}
	c := testConfig()
	a := c.adminAuth(func(k string) string { return map[string]string{"INFERGATE_ADMIN_TOKEN": "e-token"}[k] })
	if len(a.Tokens) != 1 || a.Tokens[0].Name != "env" || a.Tokens[0].Scope != "write" || a.DistrustLoopback {
		t.Errorf("INFERGATE_ADMIN_TOKEN: %+v", a)
	}
	c.Admin.Tokens = append(c.Admin.Tokens, AdminTokenConfig{"ci", filepath.Join(t.TempDir(), "missing"), "write"})
	if err := c.adminAuth(os.Getenv).Validate(); err == nil || !strings.Contains(err.Error(), `admin token "ci": token file: `) {
		t.Errorf("a missing token file: %v", err)
	}
}

// TestAdminListener: --admin-port serves the repository API without a
// token and pprof, on loopback; the main listener, with loopback not
// trusted, still wants a token and serves no pprof (issue 12).
func TestAdminListener(t *testing.T) {
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.Admin.TrustLoopback = false
	c.Admin.Port = freePort(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, c, slog.New(slog.NewTextHandler(&logs, nil)), func(a net.Addr) { addrs <- a })
	}()
	main := client.New("http://"+(<-addrs).String(), nil)
	admin := client.New("http://127.0.0.1:"+strconv.Itoa(c.Admin.Port), nil)
	defer func() {
		main.CloseIdleConnections()
		admin.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for _, tc := range []struct {
		name   string
		cl     *client.Client
		method string
		path   string
		status int
	}{
		{"admin listener, index", admin, "POST", "/v2/repository/index", 200},
		{"admin listener, pprof", admin, "GET", "/debug/pprof/goroutine?debug=1", 200},
		{"admin listener, no inference", admin, "POST", "/v2/models/mlp/infer", 404},
		{"main listener, index", main, "POST", "/v2/repository/index", 401},
		{"main listener, no pprof", main, "GET", "/debug/pprof/goroutine?debug=1", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b, _, err := tc.cl.Do(context.Background(), tc.method, tc.path, nil, nil)
			if err != nil || status != tc.status {
				t.Errorf("got %d %v %.200s, want %d", status, err, b, tc.status)
			}
		})
	}
	if !strings.Contains(logs.String(), "serving the repository API and pprof on the admin listener") {
		t.Errorf("no admin listener in the log:\n%s", logs.String())
	}
}

// TestInferenceTokens: with inference.tokens, every /v2/models/... call
// needs one (401 without one or with a wrong one; health and server
// metadata stay open for probes); the token names the tenant, whatever
// the tenant header says, so a tenant over its rate cannot escape by
// naming another; a rotated token file takes effect without a restart;
// no token reaches the logs (issue 12).
func TestInferenceTokens(t *testing.T) {
	dir := t.TempDir()
	batchTok, searchTok := filepath.Join(dir, "batch.token"), filepath.Join(dir, "search.token")
	writeFile(t, batchTok, []byte("i-batch-0123456789\n"))
	writeFile(t, searchTok, []byte("i-search-9876543210"))
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	if err := decodeConfig([]byte(`
inference:
  tokens:
    - {name: batch-pipeline, token_file: `+batchTok+`, tenant: batchjob}
    - {name: search, token_file: `+searchTok+`}
tenants:
  limits:
    - {name: batchjob, rate_per_second: 0.001, burst: 2}
    - {name: search, rate_per_second: 10000}
`), &c); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cl := serveConfig(t, c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	infer := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	call := func(method, path, token, tenant, body string) (int, string, http.Header) {
		t.Helper()
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		if tenant != "" {
			h.Set("X-Tenant", tenant)
		}
		status, b, hdr, err := cl.Do(context.Background(), method, path, []byte(body), h)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b), hdr
	}
	const needed = "this server requires an inference token (inference.tokens): send Authorization: Bearer <token>"
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		want                            string
	}{
		{"infer, no token", "POST", "/v2/models/mlp/infer", "", infer, 401, needed},
		{"infer, wrong token", "POST", "/v2/models/mlp/infer", "i-search-987654321X", infer, 401, "invalid inference token"},
		{"metadata, no token", "GET", "/v2/models/mlp", "", "", 401, needed},
		{"ready, no token", "GET", "/v2/models/mlp/versions/1/ready", "", "", 401, needed},
		{"config, no token", "GET", "/v2/models/mlp/config", "", "", 401, needed},
		{"infer, token", "POST", "/v2/models/mlp/infer", "i-search-9876543210", infer, 200, ""},
		{"metadata, token", "GET", "/v2/models/mlp", "i-search-9876543210", "", 200, ""},
		{"health stays open", "GET", "/v2/health/live", "", "", 200, ""},
		{"server metadata stays open", "GET", "/v2", "", "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := call(tc.method, tc.path, tc.token, "", tc.body)
			if status != tc.status || (tc.want != "" && errorBody(t, []byte(body)) != tc.want) {
				t.Errorf("got %d %s, want %d %q", status, body, tc.status, tc.want)
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The batch pipeline's token is tenant batchjob: past its burst it is
	// throttled even when it names the search tenant in the header.
	for i := range 2 {
		if status, b, _ := call("POST", "/v2/models/mlp/infer", "i-batch-0123456789", "", infer); status != 200 {
			t.Fatalf("batch request %d within its burst: %d %s", i, status, b)
		}
	}
	if status, b, _ := call("POST", "/v2/models/mlp/infer", "i-batch-0123456789", "search", infer); status != http.StatusTooManyRequests ||
		errorBody(t, []byte(b)) != `tenant "batchjob" is over its rate of 0.001 requests per second: retry later` {
		t.Fatalf("batchjob's token naming tenant search: %d %s", status, b)
	}
	if status, b, _ := call("POST", "/v2/models/mlp/infer", "i-search-9876543210", "batchjob", infer); status != 200 {
		t.Fatalf("search's token is unaffected: %d %s", status, b)
	}
	// Rotation.
	writeFile(t, searchTok, []byte("i-search-rotated"))
	waitFor(t, "the rotated inference token", func() bool {
		status, _, _ := call("POST", "/v2/models/mlp/infer", "i-search-rotated", "", infer)
		return status == 200
	})
	if status, b, _ := call("POST", "/v2/models/mlp/infer", "i-search-9876543210", "", infer); status != 401 {
		t.Errorf("the old token after rotation: %d %s", status, b)
	}
	metrics := scrapeMetrics(t, cl)
	for _, secret := range []string{"i-batch-0123456789", "i-search-9876543210", "i-search-rotated", "987654321"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token is in the logs:\n%s", logs.String())
		}
		if strings.Contains(metrics, secret) {
			t.Errorf("a token is in the metrics")
		}
	}
}
