package packaging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// root is the infergate repository's root.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMain builds the infergate binary once, unless $INFERGATE_BIN
// names one (make test's bin/infergate).
func TestMain(m *testing.M) {
	if os.Getenv("INFERGATE_BIN") == "" {
		dir, err := os.MkdirTemp("", "infergate-packaging-")
		if err != nil {
			panic(err)
		}
		bin := filepath.Join(dir, "infergate")
		if b, err := exec.Command("go", "build", "-C", filepath.Join("..", ".."), "-o", bin, "./cmd/infergate").CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			panic(fmt.Sprintf("go build: %v\n%s", err, b))
		}
		os.Setenv("INFERGATE_BIN", bin)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// binary returns the infergate binary.
func binary(t *testing.T) string {
	t.Helper()
	return os.Getenv("INFERGATE_BIN")
}

// onnxruntime is the library the binary loads: $ONNXRUNTIME_LIB, or the
// fetch script's cache.
func onnxruntime(t *testing.T) string {
	t.Helper()
	if l := os.Getenv("ONNXRUNTIME_LIB"); l != "" {
		return l
	}
	l := filepath.Join(root(t), ".cache", "onnxruntime", "1.29.0", "libonnxruntime.so")
	if _, err := os.Stat(l); err != nil {
		t.Fatalf("no ONNX Runtime: run make deps, or set ONNXRUNTIME_LIB (%v)", err)
	}
	return l
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a running infergate process.
type server struct {
	base string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// startBinary runs infergate with args (a serve command line) and waits
// until port answers /v2/health/live; it is stopped with SIGTERM when the
// test ends, and must exit 0.
func startBinary(t *testing.T, port int, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--grpc-port") }) {
		args = append(args, "--grpc-port", "0") // a free port: never make run's 8001
	}
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB="+onnxruntime(t), "INFERGATE_ADMIN_TOKEN=", "POD_NAME=infergate-test", "POD_IP=127.0.0.1")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &server{base: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, logs: &logs}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("infergate %v exited with %v:\n%s", args, err, logs.String())
			}
		case <-time.After(60 * time.Second):
			cancel()
			<-exited
			t.Errorf("infergate %v did not stop on SIGINT:\n%s", args, logs.String())
		}
		cancel()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if status, _ := s.get(t, "/v2/health/live"); status == 200 {
			return s
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("infergate %v exited at start (%v):\n%s", args, err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("infergate %v did not answer on port %d:\n%s", args, port, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get returns the status of GET path (0 when nothing answers).
func (s *server) get(t *testing.T, path string) (int, error) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(s.base + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// mustGet fails unless GET path answers 200.
func (s *server) mustGet(t *testing.T, path string) {
	t.Helper()
	if status, err := s.get(t, path); status != 200 {
		t.Errorf("GET %s%s: %d %v\n%s", s.base, path, status, err, s.logs.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// run runs the infergate binary with args, returning its output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	// What the Deployment's env gives a pod.
	cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB="+onnxruntime(t), "POD_NAME=infergate-test", "POD_IP=127.0.0.1")
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// body returns the body of GET path, failing unless it answers 200.
func (s *server) body(t *testing.T, path string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(b)
}
