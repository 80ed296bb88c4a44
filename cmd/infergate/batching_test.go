package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// batchedRepo copies the MLP into a repository with the given config.
func batchedRepo(t testing.TB, config string) string {
	t.Helper()
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp", "1"), filepath.Join(root, "mlp", "1"))
	if err := os.WriteFile(filepath.Join(root, "mlp", "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDynamicBatchingOverHTTP sends many concurrent requests of 1 to 3
// rows, JSON and binary, to a server that batches them; every answer must
// equal the answer of a server that does not batch.
func TestDynamicBatchingOverHTTP(t *testing.T) {
	ctx := context.Background()
	plain := startServer(t, batchedRepo(t, "max_batch_size: 16\n"), nil)
	batched := startServer(t, batchedRepo(t, "max_batch_size: 16\ndynamic_batching: {}\ninstance_group: [{count: 2}]\n"), nil)
	const n = 96
	reqs := make([]*client.Request, n)
	want := make([]any, n)
	for i := range reqs {
		rows := 1 + i%3
		reqs[i] = &client.Request{
			Inputs:       []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{int64(rows), 16}, Data: fp32s(16*rows, func(j int) float32 { return float32((i*31+j)%13)/6 - 1 }), Binary: i%2 == 0}},
			BinaryOutput: i%4 < 2,
		}
		resp, err := plain.Infer(ctx, "mlp", "", reqs[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = resp.Outputs[0].Data
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 24 {
		wg.Go(func() {
			for i := w; i < n; i += 24 {
				resp, err := batched.Infer(ctx, "mlp", "", reqs[i])
				switch {
				case err != nil:
					errs <- err
				case !reflect.DeepEqual(resp.Outputs[0].Data, want[i]):
					errs <- fmt.Errorf("request %d: batched %v, alone %v", i, resp.Outputs[0].Data, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestQueueFullOverHTTP floods a one-request queue: the requests that do
// not fit get 503 with Retry-After and a KServe error, and every other
// request succeeds. A malformed request sent meanwhile gets the same
// refusal while the queue is full, and its 400 otherwise: the queue is
// checked before the body is decoded.
func TestQueueFullOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		config string
		status int
	}{
		{"max_batch_size: 1\ninstance_group: [{count: 1}]\ndynamic_batching: {default_queue_policy: {max_queue_size: 1}}\n", 503},
		{"max_batch_size: 1\ninstance_group: [{count: 1}]\ndynamic_batching: {default_queue_policy: {max_queue_size: 1}, reject_status: 429}\n", 429},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			c := startServer(t, batchedRepo(t, tc.config), nil)
			body := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("0.5,", 15) + `0.5]}]}`)
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			flooding := make(chan struct{})
			malformed := map[int]int{}
			malformedDone := repeat(flooding, 4, func() bool {
				status, resp, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", []byte(`{"inputs":[`), nil)
				if err != nil {
					t.Error(err)
					return false
				}
				switch got := errorBody(t, resp); {
				case status == tc.status && got == `model "mlp" version 1: queue is full (1 requests): retry later`:
				case status == http.StatusBadRequest:
				default:
					t.Errorf("malformed request: %d %q", status, got)
				}
				mu.Lock()
				malformed[status]++
				mu.Unlock()
				return true
			})
			for range 64 {
				wg.Go(func() {
					for range 8 {
						status, resp, h, err := c.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", body, nil)
						if err != nil {
							t.Error(err)
							return
						}
						if status == tc.status {
							if got := errorBody(t, resp); got != `model "mlp" version 1: queue is full (1 requests): retry later` || h.Get("Retry-After") != "1" {
								t.Errorf("rejection: %q, Retry-After %q", got, h.Get("Retry-After"))
							}
						} else if status != http.StatusOK {
							t.Errorf("got %d %s", status, resp)
						}
						mu.Lock()
						statuses[status]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(flooding)
			malformedDone()
			t.Logf("statuses: %v; malformed requests meanwhile: %v", statuses, malformed)
			if statuses[tc.status] == 0 || statuses[http.StatusOK] == 0 {
				t.Errorf("got statuses %v, want both 200 and %d", statuses, tc.status)
			}
			if malformed[tc.status] == 0 {
				t.Errorf("malformed requests during the flood got %v: none was refused for the full queue before its body was decoded", malformed)
			}
		})
	}
}

// TestQueueParametersOverHTTP sends the KServe "timeout" and "priority"
// parameters to a batched model: requests whose timeout expires in the
// queue get 504 and the others succeed; an unknown priority level is a
// 400.
func TestQueueParametersOverHTTP(t *testing.T) {
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "slow", "1"), filepath.Join(root, "slow", "1"))
	config := "max_batch_size: 1\ninstance_group: [{count: 1}]\ndynamic_batching: {priority_levels: 2, default_queue_policy: {allow_timeout_override: true}}\n"
	if err := os.WriteFile(filepath.Join(root, "slow", "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startServer(t, root, nil)
	body := func(params string) []byte {
		return []byte(`{"parameters":{` + params + `},"inputs":[{"name":"x","shape":[1,32],"datatype":"FP32","data":[` + strings.Repeat("0.5,", 31) + `0.5]}]}`)
	}
	status, b, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/slow/infer", body(`"priority":3`), nil)
	if err != nil || status != 400 || errorBody(t, b) != `model "slow" version 1: invalid input: priority 3 is outside 1..2` {
		t.Errorf("priority 3: %d %s %v", status, b, err)
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			params := `"priority":1`
			if w%2 == 0 {
				params = `"priority":2,"timeout":50`
			}
			for range 10 {
				status, b, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/slow/infer", body(params), nil)
				if err != nil {
					t.Error(err)
					return
				}
				switch status {
				case http.StatusOK:
				case http.StatusGatewayTimeout:
					if got := errorBody(t, b); got != `model "slow" version 1: request timed out after 50µs in the queue` {
						t.Errorf("timeout: %q", got)
					}
				default:
					t.Errorf("got %d %s", status, b)
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	if statuses[http.StatusGatewayTimeout] == 0 || statuses[http.StatusOK] == 0 {
		t.Errorf("got %v, want both 200 and 504", statuses)
	}
}

// TestOutputLosesBatch: a model whose outputs do not keep the batch first
// (a reshape to [2*batch, 1]) is refused with the same 400 whether a
// request runs alone or shares a run with others.
func TestOutputLosesBatch(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	req := &client.Request{Inputs: []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}, Data: []float32{1, 2}}}}
	const want = `model "unbatched_output" version 1: invalid input: output "y" does not keep the batch as its leading dimension, as a model served with dynamic batching must: a run of `
	check := func(err error) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || !strings.HasPrefix(ce.Msg, want) {
			t.Errorf("got %v, want a 400 starting %q", err, want)
		}
	}
	_, err := c.Infer(context.Background(), "unbatched_output", "", req)
	check(err)
	if err != nil && !strings.HasSuffix(err.Error(), "a run of 1 rows gave shape [2 1]") {
		t.Errorf("alone: got %v", err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := c.Infer(context.Background(), "unbatched_output", "", req)
			check(err)
		})
	}
	wg.Wait()
}
