package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// How long a server may take to start, and to stop after SIGTERM.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second
)

// addressLine finds the listening address in a server's log: infergate's
// `msg="serving KServe v2 over HTTP" address=127.0.0.1:8000`, which the
// reference servers log too. A server that logs "over gRPC" serves gRPC
// alone: its url is then host:port.
var addressLine = regexp.MustCompile(`serving.*\baddress="?([^\s"]+)`)

// process is a server the suite started. Its one goroutine copies the
// server's stderr to its log, finds the address there, and reaps the
// process; stop ends both.
type process struct {
	name string
	cmd  *exec.Cmd
	url  string
	done chan error // the result of Wait, sent once
}

// startProcess starts argv with its output in logPath, waits until it logs
// its address and answers /v2/health/ready, and returns it. env is added
// to the suite's environment.
func startProcess(ctx context.Context, name, logPath string, argv, env []string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan error, 1)}
	addrs := make(chan string, 1) // the first address found: sent at most once
	grpcOnly := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if m := addressLine.FindStringSubmatch(line); m != nil && !found {
				found = true
				grpcOnly <- strings.Contains(line, "over gRPC")
				addrs <- m[1]
			}
		}
		_, _ = io.Copy(logFile, stderr) // after a too-long line
		err := cmd.Wait()
		logFile.Close()
		p.done <- err
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case addr := <-addrs:
		if <-grpcOnly {
			// It logs its address once listening: it is ready.
			p.url = addr
			return p, nil
		}
		p.url = "http://" + addr
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("%s exited before serving (%v): see %s", name, err, logPath)
	case <-deadline.C:
		p.stop()
		return nil, fmt.Errorf("%s did not log its address within %v: see %s", name, startTimeout, logPath)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	if err := waitReady(ctx, p, deadline.C); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w: see %s", name, err, logPath)
	}
	return p, nil
}

// waitReady polls the server's readiness until it answers 200.
func waitReady(ctx context.Context, p *process, deadline <-chan time.Time) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/v2/health/ready", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("exited before ready (%v)", err)
		case <-deadline:
			return errors.New("not ready in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop sends SIGTERM, waits stopTimeout for the process to exit, then
// kills it, and returns when it is reaped. An exit on SIGTERM with a
// non-zero status is an error.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		err = <-p.done
		if err == nil {
			err = errors.New("killed")
		}
	}
	p.done <- err // stop may be called again
	if err != nil {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	return nil
}
