package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// answered is an inference's answer as feedback needs it.
type answered struct {
	id      string // the request id infergate returned
	version string
	classes []int // argmax of each row
}

// inferMLP sends rows random rows to the mlp (16 → 4), with bodyID as
// the request's id when not empty.
func inferMLP(t *testing.T, cl *client.Client, model string, rng *rand.Rand, rows int, bodyID string) answered {
	t.Helper()
	data := make([]string, 16*rows)
	for i := range data {
		data[i] = strconv.FormatFloat(rng.Float64()*2-1, 'f', 3, 64)
	}
	id := ""
	if bodyID != "" {
		id = `"id":"` + bodyID + `",`
	}
	body := `{` + id + `"inputs":[{"name":"input","shape":[` + strconv.Itoa(rows) + `,16],"datatype":"FP32","data":[` + strings.Join(data, ",") + `]}]}`
	status, b, h, err := cl.Do(context.Background(), "POST", "/v2/models/"+model+"/infer", []byte(body), nil)
	if err != nil || status != 200 {
		t.Fatalf("infer: %d %v %s", status, err, b)
	}
	var r struct {
		Version string `json:"model_version"`
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	a := answered{id: h.Get("X-Request-Id"), version: r.Version}
	if bodyID != "" {
		a.id = bodyID
	}
	d := r.Outputs[0].Data
	for row := range rows {
		best := 0
		for j := 1; j < 4; j++ {
			if d[row*4+j] > d[row*4+best] {
				best = j
			}
		}
		a.classes = append(a.classes, best)
	}
	return a
}

func giveFeedback(t *testing.T, cl *client.Client, model, body string) (int, string) {
	t.Helper()
	status, b, _, err := cl.Do(context.Background(), "POST", "/v2/models/"+model+"/feedback", []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	return status, string(b)
}

// metric returns the value of the series of name whose labels contain
// every one of want (none: the first series, or the family's only one
// when it has no labels), NaN when there is none.
func metric(t *testing.T, cl *client.Client, name string, want ...string) float64 {
	t.Helper()
	text, _ := scrape(t, cl, "")
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name); !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v
		}
	}
	return math.NaN()
}

// TestFeedback: feedback by the body's id or by the X-Request-Id, one
// label for all rows or one a row, values; the figures are exact on
// known data; unknown ids get 404 and bad bodies 400.
func TestFeedback(t *testing.T) {
	cl := startServer(t, runtimetest.Models(t), func(c *Config) { c.Metrics.Allow = true })
	rng := rand.New(rand.NewPCG(5, 6))
	// 10 one-row requests, 7 labelled right and 3 wrong; every other one
	// by its X-Request-Id rather than a body id.
	for i := range 10 {
		bodyID := ""
		if i%2 == 0 {
			bodyID = "req-" + strconv.Itoa(i)
		}
		a := inferMLP(t, cl, "mlp", rng, 1, bodyID)
		if a.id == "" {
			t.Fatal("no request id")
		}
		label := a.classes[0]
		if i >= 7 {
			label = (label + 1) % 4
		}
		status, b := giveFeedback(t, cl, "mlp", fmt.Sprintf(`{"id": %q, "label": %d}`, a.id, label))
		want := fmt.Sprintf(`{"model":"mlp","version":2,"rows":1,"correct":%d,"replaced":false}`, map[bool]int{true: 1, false: 0}[i < 7])
		if status != 200 || b != want {
			t.Fatalf("feedback %d: %d %s, want %s", i, status, b, want)
		}
	}
	if got := metric(t, cl, "infergate_feedback_accuracy", `model="mlp"`, `version="2"`); got != 0.7 {
		t.Errorf("accuracy %v, want 0.7", got)
	}
	// A 3-row request: a label a row (2 right), then replaced by one
	// label for all.
	a := inferMLP(t, cl, "mlp", rng, 3, "rows")
	status, b := giveFeedback(t, cl, "mlp", fmt.Sprintf(`{"id": "rows", "label": [%d, %d, %d]}`, a.classes[0], a.classes[1], (a.classes[2]+1)%4))
	if status != 200 || !strings.Contains(b, `"rows":3,"correct":2,"replaced":false`) {
		t.Fatalf("a label a row: %d %s", status, b)
	}
	status, b = giveFeedback(t, cl, "mlp", fmt.Sprintf(`{"id": "rows", "label": %d}`, (a.classes[0]+1)%4))
	wantCorrect := 0
	for _, c := range a.classes {
		if c == (a.classes[0]+1)%4 {
			wantCorrect++
		}
	}
	if status != 200 || !strings.Contains(b, fmt.Sprintf(`"rows":3,"correct":%d,"replaced":true`, wantCorrect)) {
		t.Fatalf("one label for all rows: %d %s", status, b)
	}
	if got, want := metric(t, cl, "infergate_feedback_accuracy", `model="mlp"`, `version="2"`), float64(7+wantCorrect)/13; math.Abs(got-want) > 1e-12 {
		t.Errorf("accuracy after the replacement %v, want %v", got, want)
	}
	if got := metric(t, cl, "infergate_feedback_total", `model="mlp"`, `version="2"`, `kind="label"`); got != 16 {
		t.Errorf("infergate_feedback_total %v, want 16 (10 + 3 + 3 replaced)", got)
	}
	// Values: the error against the prediction (for a [N, C] output the
	// class), exact.
	v := inferMLP(t, cl, "mlp", rng, 2, "values")
	status, b = giveFeedback(t, cl, "mlp", fmt.Sprintf(`{"id": "values", "value": [%v, %v]}`, float64(v.classes[0])+0.5, float64(v.classes[1])-1.5))
	if status != 200 || !strings.Contains(b, `"rows":2,"abs_error":1,`) {
		t.Fatalf("values: %d %s", status, b)
	}
	if got := metric(t, cl, "infergate_feedback_mae", `model="mlp"`, `version="2"`); math.Abs(got-1) > 1e-6 {
		t.Errorf("mae %v, want 1", got)
	}
	bad := []struct {
		name, model, body string
		status            int
		want              string
	}{
		{"unknown id", "mlp", `{"id": "never-served", "label": 1}`, 404, `{"error":"unknown request id \"never-served\" for model \"mlp\": it was not served here in the last 1h0m0s (feedback.ttl) or was pushed out by newer requests (feedback.max_ids)"}`},
		{"another model's id", "identity_fp32", `{"id": "rows", "label": 1}`, 404, `unknown request id "rows" for model "identity_fp32"`},
		{"unknown model", "nope", `{"id": "rows", "label": 1}`, 404, `{"error":"unknown model \"nope\""}`},
		{"malformed", "mlp", `{"id": `, 400, `malformed JSON`},
		{"no id", "mlp", `{"label": 1}`, 400, `"id" must be the inference request's id`},
		{"neither", "mlp", `{"id": "rows"}`, 400, `give "label" or "value", one of them`},
		{"both", "mlp", `{"id": "rows", "label": 1, "value": 2}`, 400, `give "label" or "value", one of them`},
		{"label not an integer", "mlp", `{"id": "rows", "label": "cat"}`, 400, `"label" must be an integer class or a list of them`},
		{"wrong count", "mlp", `{"id": "rows", "label": [1, 2]}`, 400, `the request had 3 rows: give one answer for all or a list of 3, got 2`},
		{"empty list", "mlp", `{"id": "rows", "value": []}`, 400, `"value" must not be an empty list`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			status, b := giveFeedback(t, cl, tt.model, tt.body)
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal([]byte(b), &e)
			if status != tt.status || (!strings.Contains(e.Error, tt.want) && !strings.Contains(b, tt.want)) {
				t.Errorf("got %d %s, want %d %s", status, b, tt.status, tt.want)
			}
		})
	}
}

// TestFeedbackAcrossReplicas: two gateways on loopback, each the
// other's peer; feedback sent to the replica that did not serve the
// request is forwarded to the one that did, by the replica its id names
// or, for a client's own id, by asking every peer.
func TestFeedbackAcrossReplicas(t *testing.T) {
	ports := []int{freePort(t), freePort(t)}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	var cls []*client.Client
	for i := range 2 {
		cls = append(cls, startServer(t, runtimetest.Models(t), func(c *Config) {
			c.HTTP.Port = ports[i]
			c.Feedback.Advertise = addr(i)
			c.Feedback.Peers = []string{addr(0), addr(1)} // its own is left out
		}))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	a := inferMLP(t, cls[0], "mlp", rng, 1, "")
	if !strings.HasSuffix(a.id, "@"+addr(0)) {
		t.Fatalf("request id %q does not name its replica %s", a.id, addr(0))
	}
	status, b := giveFeedback(t, cls[1], "mlp", fmt.Sprintf(`{"id": %q, "label": %d}`, a.id, a.classes[0]))
	if status != 200 || !strings.Contains(b, `"correct":1`) {
		t.Fatalf("feedback through the other replica: %d %s", status, b)
	}
	own := inferMLP(t, cls[1], "mlp", rng, 1, "client-chosen-id")
	status, b = giveFeedback(t, cls[0], "mlp", fmt.Sprintf(`{"id": "client-chosen-id", "label": %d}`, (own.classes[0]+1)%4))
	if status != 200 || !strings.Contains(b, `"correct":0`) {
		t.Fatalf("a client's id through the other replica: %d %s", status, b)
	}
	// Each replica counts the feedback of what it served.
	for i, want := range []float64{1, 0} {
		if got := metric(t, cls[i], "infergate_feedback_accuracy", `model="mlp"`); got != want {
			t.Errorf("replica %d: accuracy %v, want %v", i, got, want)
		}
	}
	if status, b := giveFeedback(t, cls[1], "mlp", `{"id": "nobody-served", "label": 1}`); status != 404 || !strings.Contains(b, "unknown request id") {
		t.Errorf("an id no replica served: %d %s", status, b)
	}
	// A bad answer from the serving replica comes back as it is.
	if status, b := giveFeedback(t, cls[1], "mlp", fmt.Sprintf(`{"id": %q, "label": [1, 2]}`, a.id)); status != 400 || !strings.Contains(b, "the request had 1 rows") {
		t.Errorf("a refused forward: %d %s", status, b)
	}
}

// TestRolloutFeedbackRollback: a canary whose predictions the feedback
// shows wrong is rolled back by min_accuracy_ratio, whatever its errors
// and latency.
func TestRolloutFeedbackRollback(t *testing.T) {
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	cl := startServer(t, root, func(c *Config) { c.ModelControl = "explicit"; c.LoadModels = []string{"mlp"} })
	putRouting(t, cl, "mlp", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [50, 100],
		"interval_seconds": 1, "min_requests": 10, "min_accuracy_ratio": 0.95, "min_feedback": 20, "threshold": 2}}`)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				data := make([]string, 16)
				for j := range data {
					data[j] = strconv.FormatFloat(rng.Float64()*2-1, 'f', 3, 64)
				}
				status, b, _, err := cl.Do(ctx, "POST", "/v2/models/mlp/infer", []byte(`{"id":"`+id+`","inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[`+strings.Join(data, ",")+`]}]}`), nil)
				if err != nil || status != http.StatusOK {
					continue
				}
				var r struct {
					Version string `json:"model_version"`
					Outputs []struct {
						Data []float64 `json:"data"`
					} `json:"outputs"`
				}
				json.Unmarshal(b, &r)
				best := 0
				for j := 1; j < 4; j++ {
					if r.Outputs[0].Data[j] > r.Outputs[0].Data[best] {
						best = j
					}
				}
				label := best // stable is right
				if r.Version == "2" {
					label = (best + 1) % 4 // the canary is wrong
				}
				cl.Do(ctx, "POST", "/v2/models/mlp/feedback", []byte(fmt.Sprintf(`{"id":%q,"label":%d}`, id, label)), nil)
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, b, _, _ := cl.Do(context.Background(), "GET", "/v2/repository/models/mlp/rollout", nil, nil)
		var st rolloutStatus
		json.Unmarshal(b, &st)
		if st.Phase == "rolled_back" {
			if !strings.Contains(st.Reason, "accuracy_ratio") {
				t.Errorf("rolled back for %q, want the accuracy check", st.Reason)
			}
			return
		}
		if st.Phase == "promoted" || time.Now().After(deadline) {
			t.Fatalf("rollout %s: %s", st.Phase, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
