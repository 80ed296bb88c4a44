package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/benchmarks/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		// fasthttp's process-wide goroutines: the Date ticker, and
		// cleaners that sleep then exit once their work is gone.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	)
}

func TestParseLevels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		list, rng, want string
		err             bool
	}{
		{list: "1,4,16,64", want: "[1 4 16 64]"},
		{list: "1", rng: "2:8:2", want: "[2 4 6 8]"},
		{rng: "1:3", want: "[1 2 3]"},
		{list: "1,x", err: true},
		{list: "0", err: true},
		{rng: "8:2", err: true},
		{rng: "1:2:3:4", err: true},
	} {
		got, err := parseLevels(tc.list, tc.rng)
		if (err != nil) != tc.err || (!tc.err && fmt.Sprint(got) != tc.want) {
			t.Errorf("%q %q: got %v, %v; want %s (error %v)", tc.list, tc.rng, got, err, tc.want, tc.err)
		}
	}
}

func TestShapesFlag(t *testing.T) {
	t.Parallel()
	s := shapesFlag{}
	if err := s.Set("x=1,3,48,192"); err != nil || len(s["x"]) != 4 || s["x"][3] != 192 {
		t.Errorf("got %v, %v", s, err)
	}
	for _, bad := range []string{"x", "=1", "x=1,a", "x=-1"} {
		if err := s.Set(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"fly"}, `unknown command "fly"`},
		{[]string{"load"}, "--url and --model are required"},
		{[]string{"load", "--url", "http://127.0.0.1:1", "--model", "m"}, "model metadata"},
		{[]string{"suite"}, "at least one scenario"},
		{[]string{"suite", "--out", t.TempDir(), "nope.yaml"}, "nope.yaml"},
		{[]string{"serve-handwritten"}, "--model-name and --model are required"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestLoadCommand runs the load command against a transport server, in
// closed and open loop, and checks its JSON and CSV output.
func TestLoadCommand(t *testing.T) {
	t.Parallel()
	srv := transport.New(transport.Options{Metadata: []byte(`{"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[]}`)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	dir := t.TempDir()
	common := []string{"--url", "http://" + ln.Addr().String(), "--model", "m", "--window", "20ms", "--stable-windows", "2", "--max-windows", "3", "--stability", "0.9"}
	for _, tc := range []struct {
		desc  string
		args  []string
		modes []string
	}{
		{"closed", []string{"--concurrency", "1,2", "--rows", "3", "--binary"}, []string{"closed", "closed"}},
		{"open", []string{"--request-rate", "500", "--poisson"}, []string{"poisson"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			jsonPath, csvPath := filepath.Join(dir, tc.desc+".json"), filepath.Join(dir, tc.desc+".csv")
			var stdout, stderr bytes.Buffer
			args := append(append([]string{"load"}, common...), tc.args...)
			args = append(args, "--json", jsonPath, "--csv", csvPath)
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, stderr.String())
			}
			b, _ := os.ReadFile(jsonPath)
			var results []load.Result
			if err := json.Unmarshal(b, &results); err != nil || len(results) != len(tc.modes) {
				t.Fatalf("json: got %d results (%v): %s", len(results), err, b)
			}
			for i, r := range results {
				if r.Mode != tc.modes[i] || r.OK == 0 || r.Failed() != 0 {
					t.Errorf("result %d: got mode %s, %d ok, %d failed", i, r.Mode, r.OK, r.Failed())
				}
			}
			if tc.desc == "closed" && (results[0].Rows != 3 || results[0].Protocol != "binary" || results[1].Concurrency != 2) {
				t.Errorf("got rows %d, protocol %s, concurrency %d", results[0].Rows, results[0].Protocol, results[1].Concurrency)
			}
			c, _ := os.ReadFile(csvPath)
			if lines := strings.Count(string(c), "\n"); lines != 1+len(tc.modes) {
				t.Errorf("csv: got %d lines:\n%s", lines, c)
			}
			if !strings.Contains(stdout.String(), "req/s") || stderr.Len() != 0 {
				t.Errorf("stdout %q, stderr %q: want a table and no progress off a terminal", stdout.String(), stderr.String())
			}
		})
	}
}
