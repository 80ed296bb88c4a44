package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestConfigReload: a change of the --config file takes effect without a
// restart (the tenants' limits, then inference tokens); a change that
// does not validate changes nothing (issue 12).
func TestConfigReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	strict := "tenants:\n  limits: [{name: job, rate_per_second: 0.001, burst: 1}]\n"
	writeFile(t, path, []byte(strict))
	cfg := testConfig()
	cfg.ModelRepository = runtimetest.Models(t)
	cfg.HTTP.Address, cfg.HTTP.Port = "127.0.0.1", 0
	cfg.ONNXRuntime.Library = runtimetest.Library(t)
	if err := loadConfigFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.path = path
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), func(a net.Addr) { addrs <- a })
	}()
	c := client.New("http://"+(<-addrs).String(), nil)
	defer func() {
		c.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	body := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`)
	call := func() int {
		t.Helper()
		status, _, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", body, http.Header{"X-Tenant": {"job"}})
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	if call() != 200 || call() != http.StatusTooManyRequests {
		t.Fatal("the first limits do not apply")
	}
	writeFile(t, path, []byte("tenants:\n  limits: [{name: job, rate_per_second: 1000000, burst: 1000}]\n"))
	waitFor(t, "the looser limit", func() bool { return call() == 200 })
	for range 10 {
		if call() != 200 {
			t.Fatal("the looser limit did not stay")
		}
	}
	// Invalid: two tenants of one name. The looser limit stays.
	writeFile(t, path, []byte("tenants:\n  limits: [{name: job}, {name: job, burst: 1, rate_per_second: 0.001}]\n"))
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	waitFor(t, "the refused reload in the log", func() bool {
		return strings.Contains(logs.String(), `msg="config reload refused: nothing changed" why="file changed" err="tenants: tenant \"job\": defined twice"`)
	})
	for range 20 {
		if call() != 200 {
			t.Fatal("an invalid reload changed the limits")
		}
	}
	// Inference tokens come with a reload too.
	tok := filepath.Join(filepath.Dir(path), "job.token")
	writeFile(t, tok, []byte("i-job-token"))
	writeFile(t, path, []byte("inference:\n  tokens: [{name: job, token_file: "+tok+"}]\n"))
	waitFor(t, "the inference token", func() bool { return call() == http.StatusUnauthorized })
	status, _, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", body, http.Header{"Authorization": {"Bearer i-job-token"}})
	if err != nil || status != 200 {
		t.Fatalf("with the reloaded inference token: %d %v", status, err)
	}
}
