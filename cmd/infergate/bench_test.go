package main

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// BenchmarkMLPLatency measures the latency of one request at a time on the
// small MLP (16 → 32 → 4), end to end over HTTP on loopback, beside the
// same model run in-process on ONNX Runtime (the compute floor). It reports
// p50 and p99 per request.
//
//	go test -run '^$' -bench MLPLatency ./cmd/infergate/
func BenchmarkMLPLatency(b *testing.B) {
	row := make([]float32, 16)
	for i := range row {
		row[i] = float32(i) / 16
	}
	b.Run("onnxruntime-in-process", func(b *testing.B) {
		env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer env.Close()
		s, err := env.NewSession(filepath.Join(runtimetest.Models(b), "mlp", "1", "model.onnx"), runtime.SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		data := make([]byte, 64)
		for i, v := range row {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		in := []runtime.Tensor{{DataType: runtime.FP32, Shape: []int64{1, 16}, Data: data}}
		measure(b, func() error {
			_, err := s.Run(context.Background(), in)
			return err
		})
	})

	c := startServer(b, runtimetest.Models(b), nil)
	// The same without the budget of bodies in flight, for its cost.
	unbudgeted := startServer(b, runtimetest.Models(b), func(c *Config) { c.HTTP.MaxInflightBodyBytes = -1 })
	// The same model with dynamic batching, for what it costs a lone
	// request (issue 10: within 10 % of batching off at c=1).
	batched := startServer(b, batchedRepo(b, "max_batch_size: 64\ndynamic_batching: {}\n"), nil)
	var nums []string
	for _, v := range row {
		nums = append(nums, strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	jsonBody := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Join(nums, ",") + `]}]}`)
	header := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}],"parameters":{"binary_data_output":true}}`
	binBody := append([]byte(header), make([]byte, 64)...)
	for i, v := range row {
		binary.LittleEndian.PutUint32(binBody[len(header)+4*i:], math.Float32bits(v))
	}
	for _, tc := range []struct {
		name      string
		server    *client.Client
		body      []byte
		headerLen int
	}{
		{"infergate-http-json", c, jsonBody, -1},
		{"infergate-http-json-no-body-budget", unbudgeted, jsonBody, -1},
		{"infergate-http-json-batching", batched, jsonBody, -1},
		{"infergate-http-binary", c, binBody, len(header)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			base := strings.TrimPrefix(tc.server.BaseURL(), "http://")
			hc := &fasthttp.HostClient{Addr: base, MaxConns: 1}
			defer hc.CloseIdleConnections()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + base + "/v2/models/mlp/versions/1/infer")
			req.Header.SetMethod("POST")
			if tc.headerLen >= 0 {
				req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(tc.headerLen))
			}
			req.SetBody(tc.body)
			measure(b, func() error {
				if err := hc.Do(req, resp); err != nil {
					return err
				}
				if resp.StatusCode() != 200 {
					b.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
				}
				return nil
			})
		})
	}
}

// measure runs f b.N times, one at a time, and reports the p50 and p99
// latencies in microseconds.
func measure(b *testing.B, f func() error) {
	b.Helper()
	for range 100 { // warm up
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
