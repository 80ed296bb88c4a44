package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

type rolloutStatus struct {
	Phase   string  `json:"phase"`
	Weight  float64 `json:"weight"`
	Reason  string  `json:"reason"`
	History []struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
		Checks   []struct {
			Name    string `json:"name"`
			Verdict string `json:"verdict"`
		} `json:"checks"`
	} `json:"history"`
}

// runRollout puts a rollout document, sends traffic from 8 clients until
// the rollout ends (or a minute passes), and returns its last status.
func runRollout(t *testing.T, cl *client.Client, model, doc string, body func(*rand.Rand) []byte) rolloutStatus {
	t.Helper()
	putRouting(t, cl, model, doc)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for ctx.Err() == nil {
				cl.Do(ctx, "POST", "/v2/models/"+model+"/infer", body(rng), nil)
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		status, b, _, err := cl.Do(context.Background(), "GET", "/v2/repository/models/"+model+"/rollout", nil, nil)
		if err != nil || status != 200 {
			t.Fatalf("GET rollout: %d %v %s", status, err, b)
		}
		var st rolloutStatus
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.Phase == "promoted" || st.Phase == "rolled_back" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout still %s after a minute: %s", st.Phase, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomMLP(rng *rand.Rand) []byte {
	v := make([]string, 16)
	for i := range v {
		v[i] = fmt.Sprintf("%.3f", rng.Float64()*2-1)
	}
	return []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Join(v, ",") + `]}]}`)
}

// The rollouts of the tests: one interval a second, two steps, and a
// p99 limit loose enough for a race-enabled build on a shared machine
// (the check needs 368 samples a side; 8 clients give more).
const rolloutDoc = `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [50, 100],
	"interval_seconds": 1, "min_requests": 50, "threshold": 2, "max_p99_ratio": 4%s}}`

// TestRolloutOverHTTP: a healthy canary is promoted, one that errors is
// rolled back by the error check, and one whose predictions differ from
// stable's is rolled back by the drift check; the document ends as its
// final split with the outcome in its status.
func TestRolloutOverHTTP(t *testing.T) {
	t.Run("healthy canary is promoted", func(t *testing.T) {
		root := t.TempDir()
		for _, v := range []string{"1", "2"} { // the same model twice
			runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp", "1"), filepath.Join(root, "twin", v))
		}
		writeFile(t, filepath.Join(root, "twin", "config.yaml"), []byte("version_policy: {all: {}}\n"))
		cl := startServer(t, root, func(c *Config) { c.ModelControl = "explicit"; c.LoadModels = []string{"*"} })
		st := runRollout(t, cl, "twin", fmt.Sprintf(rolloutDoc, ""), func(rng *rand.Rand) []byte {
			return randomMLP(rng)
		})
		if st.Phase != "promoted" || st.Weight != 100 {
			t.Fatalf("got %s at %v%% (%s), want promoted", st.Phase, st.Weight, st.Reason)
		}
		// The document is now the final split, with the outcome; and with
		// an explicit mode it is in routing.yaml.
		// The controller rewrites it right after its last decision.
		deadline := time.Now().Add(5 * time.Second)
		for {
			status, b, _, _ := cl.Do(context.Background(), "GET", "/v2/repository/models/twin/routing", nil, nil)
			if status == 200 && strings.Contains(string(b), `"split":[{"version":2,"weight":100}]`) && strings.Contains(string(b), `"phase":"promoted"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("routing after promotion: %d %s", status, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(root, "twin", "routing.yaml")); err != nil {
			t.Errorf("the final document was not written to routing.yaml: %v", err)
		}
		text := scrapeMetrics(t, cl)
		for _, want := range []string{`infergate_rollout_weight{model="twin"} 100`, `infergate_rollout_phase{model="twin",phase="promoted"} 1`} {
			if !strings.Contains(text, want) {
				t.Errorf("scrape lacks %s", want)
			}
		}
		// The audit trail has the document, each step the controller
		// advanced, and its promotion (issue 15).
		_, b, _, _ := cl.Do(context.Background(), "GET", "/v2/repository/audit?model=twin", nil, nil)
		var entries []struct {
			Actor, Action string
			After         json.RawMessage
		}
		json.Unmarshal(b, &entries)
		var got []string
		for _, e := range entries {
			if e.Action != "rollout.hold" {
				got = append(got, e.Actor+" "+e.Action)
			}
		}
		promotions := 0
		for _, g := range got {
			if g == "rollout-controller rollout.promote" {
				promotions++
			}
		}
		if len(got) < 3 || got[0] != "127.0.0.1 routing.set" || got[len(got)-1] != "rollout-controller rollout.promote" ||
			!slices.Contains(got, "rollout-controller rollout.advance") || promotions != 1 {
			t.Errorf("audit trail %q: want the routing.set, the controller's advances and its one promotion", got)
		}
	})
	t.Run("erroring canary is rolled back", func(t *testing.T) {
		root := t.TempDir()
		runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "breaker"), filepath.Join(root, "breaker"))
		cl := startServer(t, root, nil)
		st := runRollout(t, cl, "breaker", fmt.Sprintf(rolloutDoc, ""), func(*rand.Rand) []byte {
			return []byte(`{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`)
		})
		if st.Phase != "rolled_back" || st.Weight != 0 || !strings.Contains(st.Reason, "error_rate") {
			t.Fatalf("got %s at %v%% (%s), want rolled back by error_rate", st.Phase, st.Weight, st.Reason)
		}
	})
	t.Run("drifting canary is rolled back", func(t *testing.T) {
		root := t.TempDir()
		runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
		writeFile(t, filepath.Join(root, "mlp", "config.yaml"), []byte("version_policy: {all: {}}\nmonitoring:\n  drift:\n    reference: {first: 100}\n    window: 200\n"))
		cl := startServer(t, root, func(c *Config) { c.driftEvaluateEvery = -1 })
		st := runRollout(t, cl, "mlp", fmt.Sprintf(rolloutDoc, `, "max_drift_psi": 0.2`), randomMLP)
		if st.Phase != "rolled_back" || !strings.Contains(st.Reason, "drift") {
			t.Fatalf("got %s (%s), want rolled back by drift", st.Phase, st.Reason)
		}
	})
}
