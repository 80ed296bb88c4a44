package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
	"github.com/valyala/fasthttp"
)

// TestSIGTERMDrains builds the real binary, loads it with requests, sends
// SIGTERM mid-flight and checks that every request sent before the signal
// succeeds, that new connections are refused afterwards, and that the
// process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "infergate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The largest test model input keeps each request busy long enough to
	// be in flight when the signal lands.
	cmd := exec.Command(bin, "serve", "--model-repository", runtimetest.Models(t),
		"--http-address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--onnxruntime-lib", runtimetest.Library(t))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrCh := make(chan string, 1)
	var logMu sync.Mutex
	var logs strings.Builder
	go func() {
		re := regexp.MustCompile(`address=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logs.WriteString(line + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(line); m != nil && strings.Contains(line, "serving") {
				addrCh <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-exited:
		t.Fatalf("server exited early: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start")
	}
	c := client.New("http://"+addr, nil)
	defer c.CloseIdleConnections()

	const clients = 8
	var wg sync.WaitGroup
	started := make(chan struct{}, clients)
	type result struct {
		start time.Time
		err   error
	}
	results := make(chan result, clients*1000)
	stop := make(chan struct{})
	// 16 K FP32 rows of 4 (256 KiB) a request, encoded once: the time a
	// request starts is the time its bytes go out.
	n := 1 << 16
	body, headerLen, err := client.EncodeRequest(&client.Request{
		Inputs:       []client.Tensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{int64(n / 4), 4}, Data: make([]float32, n), Binary: true}},
		BinaryOutput: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{client.HeaderInferenceHeaderLength: []string{strconv.Itoa(headerLen)}}
	for range clients {
		wg.Go(func() {
			first := true
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				status, resp, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/identity_fp32/infer", body, header)
				if err == nil && status != http.StatusOK {
					err = &client.Error{Status: status, Msg: string(resp)}
				}
				if first {
					started <- struct{}{}
					first = false
				}
				results <- result{start, err}
				if err != nil {
					return
				}
			}
		})
	}
	for range clients {
		<-started
	}
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v, want status 0\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not exit within 30s of SIGTERM")
	}
	close(stop)
	wg.Wait()
	close(results)
	ok, refused := 0, 0
	for r := range results {
		switch {
		case r.err == nil:
			ok++
		case errors.As(r.err, new(*client.Error)):
			t.Errorf("the server answered an error while draining: %v", r.err)
		case r.start.Before(signalled.Add(-100 * time.Millisecond)):
			t.Errorf("a request in flight at SIGTERM failed: %v", r.err)
		default:
			// Sent within 100 ms of the signal or after it: it may race the
			// listener's close and never be accepted (no server can serve
			// a request it never read).
			refused++
		}
	}
	if ok == 0 {
		t.Error("no request succeeded")
	}
	t.Logf("%d requests succeeded, %d were not accepted (sent at or after SIGTERM)", ok, refused)
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no clean stop in the log:\n%s", logs.String())
	}
}

// TestDrainDelay: after the stop signal and for http.drain_delay, readiness
// answers 503 while requests are still served, each response closing its
// connection (issue 11, defect 6).
func TestDrainDelay(t *testing.T) {
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.HTTP.DrainDelay = 3 * time.Second
	c.StrictReadiness = false // some test models fail their loads on purpose
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- serve(ctx, c, log, func(a net.Addr) { addrs <- a }) }()
	cl := client.New("http://"+(<-addrs).String(), nil)
	defer cl.CloseIdleConnections()
	body := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}`)
	if status, _, _, err := cl.Do(context.Background(), http.MethodGet, "/v2/health/ready", nil, nil); err != nil || status != 200 {
		t.Fatalf("ready before the signal: %d %v", status, err)
	}
	cancel() // the signal
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, _, err := cl.Do(context.Background(), http.MethodGet, "/v2/health/ready", nil, nil)
		if err == nil && status == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness still %d %v after the signal", status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// fasthttp's client, which shows the Connection header net/http hides.
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(cl.BaseURL() + "/v2/models/mlp/infer")
	req.Header.SetMethod(http.MethodPost)
	req.SetBody(body)
	if err := fasthttp.Do(req, resp); err != nil || resp.StatusCode() != 200 || !resp.ConnectionClose() {
		t.Errorf("a request while draining: got %d %v, connection close %v; want 200 and close", resp.StatusCode(), err, resp.ConnectionClose())
	}
	if err := <-done; err != nil {
		t.Errorf("server stopped with %v", err)
	}
}

// TestExitTimeoutTerminates: past --exit-timeout-secs the executions in
// flight are terminated and the server exits, instead of waiting for them
// without bound (issue 11, defect 7).
func TestExitTimeoutTerminates(t *testing.T) {
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.ExitTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() { done <- serve(ctx, c, log, func(a net.Addr) { addrs <- a }) }()
	cl := client.New("http://"+(<-addrs).String(), nil)
	defer cl.CloseIdleConnections()
	// 262,144 rows of the slow model: many seconds of compute.
	const rows = 1 << 18
	header := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[%d,32],"datatype":"FP32","parameters":{"binary_data_size":%d}}]}`, rows, rows*32*4)
	body := append([]byte(header), make([]byte, rows*32*4)...)
	answered := make(chan int, 1)
	go func() {
		status, _, _, _ := cl.Do(context.Background(), http.MethodPost, "/v2/models/slow/infer", body,
			http.Header{"Inference-Header-Content-Length": {strconv.Itoa(len(header))}})
		answered <- status
		t.Logf("answered %d", status)
	}()
	// Wait until it runs: the version's executor holds it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, m, _, err := cl.Do(context.Background(), http.MethodGet, "/metrics", nil, nil)
		if err == nil && regexp.MustCompile(`infergate_inflight_requests\{model="slow",version="\d+"\} 1`).Match(m) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the executor")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // past the hand-off to ONNX Runtime (either way it must not succeed)
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server still waits for the execution in flight")
	}
	t.Logf("exited %v after the signal", time.Since(start).Round(time.Millisecond))
	if status := <-answered; status == http.StatusOK {
		t.Errorf("the request in flight succeeded; want it terminated")
	}
}

// TestRequestTimeout: http.request_timeout bounds a request end to end and
// terminates its run (504), while a request's "timeout" parameter, Triton's
// queue policy, does not touch a model without dynamic batching (issue 11,
// defect 8).
func TestRequestTimeout(t *testing.T) {
	const rows = 1 << 18 // seconds of compute on the slow model
	header := func(params string) string {
		return fmt.Sprintf(`{"inputs":[{"name":"x","shape":[%d,32],"datatype":"FP32","parameters":{"binary_data_size":%d}}]%s}`, rows, rows*32*4, params)
	}
	send := func(cl *client.Client, h string) (int, string, time.Duration) {
		start := time.Now()
		status, b, _, err := cl.Do(context.Background(), http.MethodPost, "/v2/models/slow/infer", append([]byte(h), make([]byte, rows*32*4)...),
			http.Header{"Inference-Header-Content-Length": {strconv.Itoa(len(h))}})
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b), time.Since(start)
	}
	t.Run("the deadline terminates the run", func(t *testing.T) {
		cl := startServer(t, runtimetest.Models(t), func(c *Config) { c.HTTP.RequestTimeout = 300 * time.Millisecond })
		status, body, took := send(cl, header(""))
		t.Logf("answered %d after %v", status, took.Round(time.Millisecond))
		if status != http.StatusGatewayTimeout || !strings.Contains(body, "http.request_timeout") {
			t.Errorf("got %d %s, want 504 naming http.request_timeout", status, body)
		}
	})
	t.Run("the timeout parameter is a queue policy", func(t *testing.T) {
		cl := startServer(t, runtimetest.Models(t), nil)
		if status, body, _ := send(cl, header(`,"parameters":{"timeout":1000}`)); status != 200 {
			t.Errorf("with timeout 1 ms and no dynamic batching: got %d %s, want 200", status, body)
		}
	})
}
