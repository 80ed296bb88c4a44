package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestModelFileDeletedWhileServing: the model file of the serving
// version is deleted under traffic, with the repository polled. The
// loaded session does not need the file: every request is answered,
// none fails, and the index says what happened.
func TestModelFileDeletedWhileServing(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "m", "1", "model.onnx")
	writeFile(t, path, readModel(t, "mlp", 1))
	c := startServer(t, root, func(c *Config) {
		c.ModelControl = "poll"
		c.pollInterval = 20 * time.Millisecond
	})
	body := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	trafficDone := repeat(stop, 4, func() bool {
		sent.Add(1)
		if status, b := post(t, c, "/v2/models/m/infer", body); status != 200 {
			failed.Add(1)
			t.Errorf("%d %s", status, b)
		}
		return true
	})
	time.Sleep(100 * time.Millisecond)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		for _, e := range index(t, c) {
			if e.Name == "m" {
				return string(e.State) + " " + e.Reason
			}
		}
		return ""
	}
	waitFor(t, "the poll to see the deletion", func() bool { return state() != "READY " })
	time.Sleep(200 * time.Millisecond) // traffic after the poll saw it
	close(stop)
	trafficDone()
	t.Logf("%d requests, %d failed; index: %s", sent.Load(), failed.Load(), state())
	if got := state(); !strings.HasPrefix(got, "READY reload of version 1 failed, the loaded one keeps serving: ") {
		t.Errorf("index: %q", got)
	}
}

// TestKillAndRestart: the server is killed with SIGKILL under traffic
// and started again on the same repository; it is ready again and
// answers. The time from the restart to ready is logged.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	start := func() (*exec.Cmd, *client.Client, time.Duration) {
		return runBinary(t, bin, "serve", "--model-repository", root, "--http-address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
			"--onnxruntime-lib", runtimetest.Library(t))
	}
	cmd, c, first := start()
	body := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if _, _, _, err := c.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", body, nil); err != nil {
					return // killed
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait()
	c.CloseIdleConnections()
	cmd2, c2, again := start()
	defer func() {
		cmd2.Process.Signal(syscall.SIGTERM)
		cmd2.Wait()
	}()
	defer c2.CloseIdleConnections()
	if status, b, _, err := c2.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", body, nil); err != nil || status != 200 {
		t.Fatalf("after the restart: %d %s %v", status, b, err)
	}
	t.Logf("start to ready: %v the first time, %v after kill -9", first.Round(time.Millisecond), again.Round(time.Millisecond))
}

// buildBinary builds the infergate binary into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "infergate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary starts bin with args (an HTTP port of 0), waits until it is
// ready and returns it, a client, and the time from start to ready. The
// caller stops it.
func runBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, *client.Client, time.Duration) {
	t.Helper()
	began := time.Now()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`address=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "serving KServe") {
				addr <- m[1]
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start")
	}
	c := client.New("http://"+a, nil)
	waitFor(t, "ready", func() bool {
		ok, err := c.ServerReady(context.Background())
		return err == nil && ok
	})
	return cmd, c, time.Since(began)
}
