package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/grpc/inference"
)

// TestAuditTrail: every admin action over HTTP and gRPC, and every
// decision of the rollout controller, is one entry of audit.file with
// its actor, and GET /v2/repository/audit returns them by model and
// time.
func TestAuditTrail(t *testing.T) {
	root := t.TempDir()
	for v := 1; v <= 2; v++ {
		writeFile(t, filepath.Join(root, "m", strconv.Itoa(v), "model.onnx"), readModel(t, "mlp", v))
	}
	writeFile(t, filepath.Join(root, "m", "config.yaml"), []byte("version_policy: {all: {}}\n"))
	file := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	tok := filepath.Join(t.TempDir(), "ops.token")
	writeFile(t, tok, []byte("s3cret-ops-token"))
	addrs := make(chan net.Addr, 1)
	c := startServer(t, root, func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"m"}
		c.Audit.File = file
		c.Admin.Tokens = []AdminTokenConfig{{"ops", tok, "write"}}
		c.onGRPCListen = func(a net.Addr) { addrs <- a }
	})
	g := dialGRPC(t, (<-addrs).String())
	ctx := context.Background()
	start := time.Now().UTC()
	do := func(method, path, body string, token bool) {
		t.Helper()
		h := http.Header{}
		if token {
			h.Set("Authorization", "Bearer s3cret-ops-token")
		}
		if _, _, _, err := c.Do(ctx, method, path, []byte(body), h); err != nil {
			t.Fatal(err)
		}
	}
	do("POST", "/v2/repository/models/m/load", "", true)
	do("PUT", "/v2/repository/models/m/labels/canary", `{"version": 2}`, true)
	do("DELETE", "/v2/repository/models/m/labels/canary", "", false)
	do("PUT", "/v2/repository/models/m/routing", `{"split": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}`, false)
	// A rollout without traffic: the controller holds, then rolls back
	// at the progress deadline, by itself.
	do("PUT", "/v2/repository/models/m/routing", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "interval_seconds": 0.05, "progress_deadline_seconds": 0.2}}`, false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, b, _, _ := c.Do(ctx, "GET", "/v2/repository/models/m/rollout", nil, nil)
		if strings.Contains(string(b), `"phase":"rolled_back"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout did not roll back: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	do("POST", "/v2/repository/models/m/rollout/abort", "", true) // refused: no rollout running
	// The controller writes its final document: stable's split.
	for {
		_, b, _, _ := c.Do(ctx, "GET", "/v2/repository/models/m/routing", nil, nil)
		if !strings.Contains(string(b), `"rollout":{`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no final document: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	do("DELETE", "/v2/repository/models/m/routing", "", false)
	if _, err := g.RepositoryModelUnload(ctx, &inference.RepositoryModelUnloadRequest{ModelName: "m"}); err != nil {
		t.Fatal(err)
	}
	do("POST", "/v2/repository/models/nope/load", "", true) // fails: another model

	get := func(query string) (int, []audit.Entry) {
		t.Helper()
		status, b, _, err := c.Do(ctx, "GET", "/v2/repository/audit"+query, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []audit.Entry
		if status == 200 {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		return status, out
	}
	_, entries := get("?model=m")
	var got []string
	for _, e := range entries {
		if e.Action == "rollout.hold" { // one an interval: as many as the timing makes
			continue
		}
		s := e.Actor + " " + e.Action
		if e.Error != "" {
			s += " (error)"
		}
		got = append(got, s)
	}
	want := []string{
		"ops load", "ops label.set", "127.0.0.1 label.delete", "127.0.0.1 routing.set", "127.0.0.1 routing.set",
		"rollout-controller rollout.rollback", "ops rollout.abort (error)", "127.0.0.1 routing.delete", "127.0.0.1 unload",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail of m:\n got %q\nwant %q", got, want)
	}
	for _, e := range entries {
		if e.Time.Before(start.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("entry %s at %v", e.Action, e.Time)
		}
	}
	byAction := map[string]audit.Entry{}
	for _, e := range entries {
		byAction[e.Action] = e
	}
	if e := byAction["label.set"]; string(e.Before) != `{}` || string(e.After) != `{"canary":2}` || e.Version != 2 || e.Protocol != "http" || e.RequestID == "" {
		t.Errorf("label.set: %+v", e)
	}
	if e := byAction["routing.delete"]; !strings.Contains(string(e.Before), `"split"`) {
		t.Errorf("routing.delete before: %s", e.Before)
	}
	if e := byAction["unload"]; e.Protocol != "grpc" || !strings.Contains(string(e.Before), `"state":"READY"`) || !strings.Contains(string(e.After), `"reason":"unloaded"`) {
		t.Errorf("unload: %s → %s (%s)", e.Before, e.After, e.Protocol)
	}
	if e := byAction["rollout.rollback"]; !strings.Contains(e.Reason, "progress_deadline_seconds") || !strings.Contains(string(e.After), `"phase":"rolled_back"`) {
		t.Errorf("rollout.rollback: %+v", e)
	}
	if _, all := get(""); len(all) != len(entries)+1 || all[len(all)-1].Model != "nope" || all[len(all)-1].Error == "" {
		t.Errorf("every model: %d entries, want m's %d and the failed load", len(all), len(entries))
	}
	since := entries[len(entries)-2].Time.Format(time.RFC3339Nano)
	if _, tail := get("?model=m&since=" + since); len(tail) != 2 {
		t.Errorf("since %s: %d entries, want 2", since, len(tail))
	}
	if _, one := get("?limit=1"); len(one) != 1 || one[0].Model != "nope" {
		t.Errorf("limit=1: %+v", one)
	}
	if status, _ := get("?since=yesterday"); status != 400 {
		t.Errorf("a bad since: %d, want 400", status)
	}
	// The file holds the same entries, one whole JSON line each, and no
	// token.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		if !json.Valid(sc.Bytes()) || strings.Contains(sc.Text(), "s3cret") {
			t.Fatalf("line %d: %s", lines+1, sc.Text())
		}
	}
	if _, all := get("?limit=100000"); lines != len(all) {
		t.Errorf("%d lines in the file, %d entries served", lines, len(all))
	}
}
