package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// BenchmarkDynamicBatching drives the benchmark MLPs over HTTP (JSON, one
// row a request) at concurrency 1 and 64, with dynamic batching off and on
// side by side, and reports items/s and latency percentiles. The models
// come from `make bench-models` (scripts/gen_test_models.py --bench).
//
//	go test -run '^$' -bench DynamicBatching -benchtime 4000x ./cmd/infergate/
func BenchmarkDynamicBatching(b *testing.B) {
	models := filepath.Join(runtimetest.Root(b), ".cache", "bench-models")
	for _, tc := range []struct {
		model string
		width int
	}{
		{"mlp_2048", 512},
		{"mlp_256", 256},
	} {
		src := filepath.Join(models, tc.model, "1", "model.onnx")
		if _, err := os.Stat(src); err != nil {
			b.Skipf("%s not generated: run make bench-models (%v)", tc.model, err)
		}
		nums := make([]string, tc.width)
		for i := range nums {
			nums[i] = strconv.FormatFloat(float64(i%17)/17-0.5, 'g', -1, 32)
		}
		body := []byte(fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,%d],"datatype":"FP32","data":[%s]}]}`, tc.width, strings.Join(nums, ",")))
		addrs := map[string]string{}
		for _, mode := range []string{"off", "on"} {
			config := "max_batch_size: 64\n"
			if mode == "on" {
				config += "dynamic_batching: {}\n"
			}
			root := b.TempDir()
			if err := os.MkdirAll(filepath.Join(root, tc.model, "1"), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, tc.model, "config.yaml"), []byte(config), 0o644); err != nil {
				b.Fatal(err)
			}
			// A copy, not a symlink: links out of the repository are refused.
			data, err := os.ReadFile(src)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, tc.model, "1", "model.onnx"), data, 0o644); err != nil {
				b.Fatal(err)
			}
			c := startServer(b, root, nil)
			addrs[mode] = strings.TrimPrefix(c.BaseURL(), "http://")
		}
		for _, conc := range []int{1, 64} {
			for _, mode := range []string{"off", "on"} {
				b.Run(fmt.Sprintf("%s/c%d/batching-%s", tc.model, conc, mode), func(b *testing.B) {
					load(b, addrs[mode], "/v2/models/"+tc.model+"/infer", body, conc)
				})
			}
		}
	}
}

// load sends b.N requests from conc closed-loop workers and reports
// items/s (one item a request) and latency percentiles.
func load(b *testing.B, addr, path string, body []byte, conc int) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: conc}
	defer hc.CloseIdleConnections()
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed atomic.Int64
	worker := func(count int, record bool) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + path)
		req.Header.SetMethod("POST")
		req.SetBody(body)
		for {
			i := next.Add(1) - 1
			if i >= int64(count) {
				return
			}
			start := time.Now()
			if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				failed.Add(1)
			}
			if record {
				lat[i] = time.Since(start)
			}
		}
	}
	// Warm up: every worker's connection, and the model.
	next.Store(0)
	for range conc {
		wg.Go(func() { worker(4*conc, false) })
	}
	wg.Wait()
	next.Store(0)
	failed.Store(0)
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Go(func() { worker(b.N, true) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
