package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// replica is one gateway of a shared repository, with its log.
type replica struct {
	cl   *client.Client
	logs *syncBuffer
}

// startReplica serves root in poll mode on port, as a replica of a
// Kubernetes Deployment does.
func startReplica(t *testing.T, root string, port int) *replica {
	t.Helper()
	c := testConfig()
	c.ModelRepository = root
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", port
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.ModelControl = "poll"
	c.pollInterval = 200 * time.Millisecond
	c.ExitTimeout = 10 * time.Second
	logs := &syncBuffer{}
	cl := serveConfig(t, c, slog.New(slog.NewTextHandler(logs, nil)), nil)
	return &replica{cl: cl, logs: logs}
}

// decisions are a replica's own rollout decisions for model, from its
// log: "<pinned instant> <decision> <weight>" each.
func (r *replica) decisions(model string) []string {
	re := regexp.MustCompile(`msg=rollout model=` + model + ` decision=(\S+|"[^"]*") phase=\S+ step=\d+ weight=(\S+) reason=(?:"(?:[^"\\]|\\.)*"|\S*) at=(\S+)`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(r.logs.String(), -1) {
		out = append(out, m[3]+" "+strings.Trim(m[1], `"`)+" "+m[2])
	}
	return out
}

// phase is the rollout's phase on the replica.
func (r *replica) phase(t *testing.T, model string) string {
	t.Helper()
	status, b, _, err := r.cl.Do(context.Background(), "GET", "/v2/repository/models/"+model+"/rollout", nil, nil)
	if err != nil || status != 200 {
		t.Fatalf("GET rollout: %d %v %s", status, err, b)
	}
	var st rolloutStatus
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Phase
}

// TestRolloutAcrossReplicas: two gateways on one repository, scraped by
// a real Prometheus, run a rollout with prometheus_url: every step is
// judged at the same pinned instant from the figures of both, so they
// take the same decision at every step, at the same weight, and end in
// the same phase, for a canary that is promoted (the second replica
// joins late and replays the steps it missed), one that errors and is
// rolled back (its Prometheus starts late: the replicas read the steps
// whose queries failed again, and converge), and one whose outputs drift from stable's, rolled back by
// the drift check over both replicas' bin counters (issue 13).
func TestRolloutAcrossReplicas(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"1", "2"} {
		runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp", "1"), filepath.Join(root, "twin", v))
	}
	writeFile(t, filepath.Join(root, "twin", "config.yaml"), []byte("version_policy: {all: {}}\n"))
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "breaker"), filepath.Join(root, "breaker"))
	// mlp's two versions have other weights: other outputs, on the same
	// inputs. Version 1's reference file gives the bins the replicas
	// count both versions' outputs in.
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	writeFile(t, filepath.Join(root, "mlp", "config.yaml"), []byte("version_policy: {all: {}}\nmonitoring:\n  drift:\n    reference: {file: reference.json}\n"))
	buildMLPReference(t, root)
	ports := []int{freePort(t), freePort(t)}
	prom := startPrometheus(t, fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]))
	doc := `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [%s], "interval_seconds": 4,
		"min_requests": 50, "threshold": 2, "max_p99_ratio": 4, "prometheus_url": %q,
		"prometheus_selector": "job=\"infergate\"", "scrape_lag_seconds": 3}}`

	replicas := []*replica{startReplica(t, root, ports[0])}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	traffic := func(r *replica, model string, body func(*rand.Rand) []byte) {
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				for ctx.Err() == nil {
					r.cl.Do(ctx, "POST", "/v2/models/"+model+"/infer", body(rng), nil)
				}
			}()
		}
	}
	breakerBody := func(*rand.Rand) []byte {
		return []byte(`{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	}
	// The promoted canary: the PUT goes to the first replica, which
	// writes routing.yaml; the second starts one interval later.
	putRouting(t, replicas[0].cl, "twin", fmt.Sprintf(doc, "50, 75, 100", prom))
	traffic(replicas[0], "twin", randomMLP)
	time.Sleep(5 * time.Second)
	replicas = append(replicas, startReplica(t, root, ports[1]))
	traffic(replicas[1], "twin", randomMLP)
	waitEnded(t, replicas, "twin")
	compareReplicas(t, replicas, "twin", "promoted")

	// The rolled-back canary: both replicas from the start, judged by a
	// second Prometheus that starts only after the first steps were due,
	// so that their queries fail; the steps are read again once it
	// answers, and both replicas converge.
	late := freePort(t)
	putRouting(t, replicas[1].cl, "breaker", fmt.Sprintf(doc, "50, 100", fmt.Sprintf("http://127.0.0.1:%d", late)))
	for _, r := range replicas {
		traffic(r, "breaker", breakerBody)
	}
	for _, r := range replicas {
		waitFor(t, "a failed query in the status", func() bool {
			_, b, _, _ := r.cl.Do(context.Background(), "GET", "/v2/repository/models/breaker/rollout", nil, nil)
			return strings.Contains(string(b), `"last_error":"step at `)
		})
	}
	startPrometheusOn(t, late, fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]))
	waitEnded(t, replicas, "breaker")
	compareReplicas(t, replicas, "breaker", "rolled_back")

	// The drifting canary: rolled back by the drift check, computed from
	// both replicas' bin counters.
	putRouting(t, replicas[0].cl, "mlp", fmt.Sprintf(doc, "50, 100", prom))
	for _, r := range replicas {
		traffic(r, "mlp", randomMLP)
	}
	waitEnded(t, replicas, "mlp")
	compareReplicas(t, replicas, "mlp", "rolled_back")
	status, b, _, err := replicas[0].cl.Do(context.Background(), "GET", "/v2/repository/models/mlp/rollout", nil, nil)
	if err != nil || status != 200 || !strings.Contains(string(b), `failed checks: [drift]`) {
		t.Errorf("the drifting canary's rollout: %d %v %s", status, err, b)
	}
	for i, r := range replicas {
		if text := scrapeMetrics(t, r.cl); strings.Contains(text, `infergate_rollout_drift_bins_total{`) {
			t.Errorf("replica %d still exports the drift bins after the rollout", i)
		}
	}
}

// buildMLPReference writes root/mlp/{1,2}/reference.json from random
// requests with infergate reference build (version 2's is version 1's:
// each loaded version needs its file; the rollout reads stable's).
func buildMLPReference(t *testing.T, root string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var lines []byte
	for range 500 {
		lines = append(append(lines, randomMLP(rng)...), '\n')
	}
	samples := filepath.Join(t.TempDir(), "samples.jsonl")
	writeFile(t, samples, lines)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"reference", "build", "--model-repository", root, "--model", "mlp", "--version", "1",
		"--samples", samples, "--onnxruntime-lib", runtimetest.Library(t)}, &out, &out); err != nil {
		t.Fatalf("reference build: %v\n%s", err, out.String())
	}
	ref, err := os.ReadFile(filepath.Join(root, "mlp", "1", "reference.json"))
	if err != nil {
		t.Fatalf("no reference.json: %v\n%s", err, out.String())
	}
	writeFile(t, filepath.Join(root, "mlp", "2", "reference.json"), ref)
}

// waitRollout bounds the wait for a rollout's end.
const waitRollout = 90 * time.Second

// waitEnded waits until the rollout of model has ended on every replica.
func waitEnded(t *testing.T, replicas []*replica, model string) {
	t.Helper()
	deadline := time.Now().Add(waitRollout)
	for _, r := range replicas {
		for {
			p := r.phase(t, model)
			if p == "promoted" || p == "rolled_back" {
				break
			}
			if time.Now().After(deadline) {
				_, b, _, _ := r.cl.Do(context.Background(), "GET", "/v2/repository/models/"+model+"/rollout", nil, nil)
				t.Fatalf("%s: the rollout is still %s after %v; decisions %v\nstatus %s", model, p, waitRollout, r.decisions(model), b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// compareReplicas checks that the replicas took the same decisions, each
// at the same pinned instant and weight, in the same order (a replica
// that sees another's final document before its own last decision
// stops there: its sequence is then a prefix of the other's), and that
// they ended in phase.
func compareReplicas(t *testing.T, replicas []*replica, model, phase string) {
	t.Helper()
	var longest []string
	for i, r := range replicas {
		ds := r.decisions(model)
		t.Logf("%s: replica %d decided %v", model, i, ds)
		if len(ds) < 2 {
			t.Errorf("%s: replica %d decided %d steps itself, want 2 at least", model, i, len(ds))
		}
		if len(ds) > len(longest) {
			longest = ds
		}
		if got := r.phase(t, model); got != phase {
			t.Errorf("%s: replica %d ended %s, want %s", model, i, got, phase)
		}
	}
	for i, r := range replicas {
		if ds := r.decisions(model); !slices.Equal(ds, longest[:len(ds)]) {
			t.Errorf("%s: replica %d decided %v, another %v", model, i, ds, longest)
		}
	}
}
