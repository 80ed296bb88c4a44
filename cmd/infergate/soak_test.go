package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestSoak runs the binary for INFERGATE_SOAK (make soak: 10m) under
// mixed traffic: JSON and binary requests, a few bad ones, a hot swap of
// a version a minute (its file replaced, then the load API), and canary
// rollouts one after another. After the warm-up (the first fifth), RSS
// may grow at most 5 % and the goroutine count must stay flat; no valid
// request may fail. Skipped unless INFERGATE_SOAK is set.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("INFERGATE_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set INFERGATE_SOAK (make soak)")
	}
	root := t.TempDir()
	for _, v := range []string{"1", "2"} {
		runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp", "1"), filepath.Join(root, "twin", v))
	}
	writeFile(t, filepath.Join(root, "twin", "config.yaml"), []byte("version_policy: {all: {}}\nmax_batch_size: 8\ndynamic_batching: {}\n"))
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "identity_fp32"), filepath.Join(root, "identity_fp32"))
	cmd, c, _ := runBinary(t, buildBinary(t), "serve", "--model-repository", root, "--http-address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
		"--onnxruntime-lib", runtimetest.Library(t), "--model-control-mode", "explicit", "--load-model", "*")
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	defer c.CloseIdleConnections()
	ctx := context.Background()

	var sent, failed, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				var err error
				switch k := rng.IntN(100); {
				case k < 2: // bad input: refused, never a failure
					status, _, _, e := c.Do(ctx, http.MethodPost, "/v2/models/twin/infer", []byte(`{"inputs": [`), nil)
					if e == nil && status != 400 {
						e = fmt.Errorf("bad request got %d", status)
					}
					err = e
					bad.Add(1)
				case k < 60:
					_, err = c.Infer(ctx, "twin", "", &client.Request{Inputs: []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}, Data: fp32s(16, func(i int) float32 { return rng.Float32() })}}})
				default:
					_, err = c.Infer(ctx, "identity_fp32", "", &client.Request{
						Inputs:       []client.Tensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{4, 4}, Data: fp32s(16, func(i int) float32 { return float32(i) }), Binary: true}},
						BinaryOutput: true,
					})
				}
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
				}
			}
		})
	}

	rss := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb
			}
		}
		return 0
	}
	goroutines := func() int {
		for _, line := range strings.Split(scrapeMetrics(t, c), "\n") {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return int(n)
			}
		}
		t.Fatal("no go_goroutines in /metrics")
		return 0
	}
	rollout := `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [20, 50, 100], "interval_seconds": 5, "min_requests": 20, "threshold": 2, "max_p99_ratio": 4}}`
	begin := time.Now()
	warm := begin.Add(d / 5)
	var warmRSS int64
	var warmG, maxG, rollouts, swaps int
	nextSwap := begin.Add(time.Minute)
	for sample := 0; time.Since(begin) < d; sample++ {
		// A rollout at a time: start one whenever none runs.
		if status, b, _, err := c.Do(ctx, http.MethodGet, "/v2/repository/models/twin/rollout", nil, nil); err == nil &&
			(status == http.StatusNotFound || strings.Contains(string(b), `"promoted"`) || strings.Contains(string(b), `"rolled_back"`)) {
			if status, b, _, err := c.Do(ctx, http.MethodPut, "/v2/repository/models/twin/routing", []byte(rollout), nil); err != nil || status != 200 {
				t.Errorf("rollout: %d %s %v", status, b, err)
			}
			rollouts++
		}
		if time.Now().After(nextSwap) {
			// A hot swap: version 1's file replaced, then reloaded.
			writeFile(t, filepath.Join(root, "twin", "1", "model.onnx"), readModel(t, "mlp", 1+swaps%2))
			if status, b := post(t, c, "/v2/repository/models/twin/load", ""); status != 200 {
				t.Errorf("swap: %d %s", status, b)
			}
			swaps++
			nextSwap = nextSwap.Add(time.Minute)
		}
		r, g := rss(), goroutines()
		if warmRSS == 0 && time.Now().After(warm) {
			warmRSS, warmG = r, g
		}
		if warmRSS != 0 {
			maxG = max(maxG, g)
		}
		if sample%6 == 0 {
			t.Logf("%5.0fs: RSS %d MiB, %d goroutines, %d requests (%d failed), %d rollouts, %d swaps", time.Since(begin).Seconds(), r>>10, g, sent.Load(), failed.Load(), rollouts, swaps)
		}
		time.Sleep(5 * time.Second)
	}
	close(stop)
	wg.Wait()
	endRSS, endG := rss(), goroutines()
	t.Logf("after warm-up: RSS %d KiB, %d goroutines; at the end: RSS %d KiB (%+.1f %%), %d goroutines (at most %d meanwhile); %d requests, %d bad ones refused, %d failed; %d rollouts, %d swaps",
		warmRSS, warmG, endRSS, 100*float64(endRSS-warmRSS)/float64(warmRSS), endG, maxG, sent.Load(), bad.Load(), failed.Load(), rollouts, swaps)
	if float64(endRSS) > 1.05*float64(warmRSS) {
		t.Errorf("RSS grew from %d to %d KiB, more than 5 %%", warmRSS, endRSS)
	}
	if endG > warmG+8 {
		t.Errorf("goroutines grew from %d to %d", warmG, endG)
	}
}
