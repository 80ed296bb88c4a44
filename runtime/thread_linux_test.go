package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// threadsAt returns the process's threads at the given nice value and the
// CPU time each has had (schedstat, ns), by thread id.
func threadsAt(t *testing.T, nice int) map[string]int64 {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "stat"))
		if err != nil {
			continue // the thread has exited
		}
		if n, err := niceOf(stat); err != nil || n != nice {
			continue
		}
		sched, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "schedstat"))
		if err != nil {
			continue
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(sched))[0], 10, 64)
		out[task.Name()] = ns
	}
	return out
}

func cpuOf(m map[string]int64) (sum int64) {
	for _, ns := range m {
		sum += ns
	}
	return sum
}

// processNice returns the process's nice value, as the thread running the
// test has it (not the main thread's: Go parks the main thread, at the
// execution nice, when a goroutine locked to it ends).
func processNice(t *testing.T) int {
	t.Helper()
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	stat, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	n, err := niceOf(stat)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// niceOf reads the nice value from a /proc stat file: the fields after the
// command's closing parenthesis start at the third (state); nice is the
// nineteenth.
func niceOf(stat []byte) (int, error) {
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 17 {
		return 0, fmt.Errorf("short stat line %q", stat)
	}
	return strconv.Atoi(f[16])
}

// TestExecutionNice: with Options.ExecutionNice, a session's executions
// run on threads of their own that many nice steps below the process
// (the CPU time of a run shows on them), one per instance, and Close ends
// them; ONNX Runtime's intra-op threads inherit it. An out-of-range value
// fails Open.
func TestExecutionNice(t *testing.T) {
	const steps = 13
	base := processNice(t)
	if base+steps > 19 {
		t.Skipf("the test runs at nice %d: no room for %d steps below it", base, steps)
	}
	nice := base + steps // no other test's threads run at it
	for _, bad := range []int{-1, runtime.MaxExecutionNice + 1} {
		if env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(t), ExecutionNice: bad}); err == nil {
			env.Close()
			t.Errorf("Open with ExecutionNice %d succeeded", bad)
		}
	}
	env := openEnvWith(t, runtime.Options{ExecutionNice: steps})
	// Go parks the main thread for good, rather than ending it, when a
	// goroutine locked to it exits: it never runs again, but stays at the
	// nice of an earlier run of the test (-count).
	parked := threadsAt(t, nice)
	if _, ok := parked[strconv.Itoa(os.Getpid())]; len(parked) > 1 || len(parked) == 1 && !ok {
		t.Fatalf("%d threads at nice %d before any session", len(parked), nice)
	}
	s, err := env.NewSession(filepath.Join(runtimetest.Models(t), "slow", "1", "model.onnx"), runtime.SessionOptions{Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	// 16,384 rows of the slow model: about 0.2 s of compute.
	const rows = 1 << 14
	in := []runtime.Tensor{{Name: "x", DataType: runtime.FP32, Shape: []int64{rows, 32}, Data: make([]byte, rows*32*4)}}
	before := threadsAt(t, nice)
	for tid := range parked {
		delete(before, tid)
	}
	if len(before) != 2 {
		t.Errorf("%d threads at nice %d for 2 instances, want 2", len(before), nice)
	}
	allBefore := cpuOf(threadsAt(t, base)) + cpuOf(before)
	if _, err := s.Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	after := threadsAt(t, nice)
	for tid := range parked {
		delete(after, tid)
	}
	niced := cpuOf(after) - cpuOf(before)
	all := cpuOf(threadsAt(t, base)) + cpuOf(after) - allBefore
	if niced < all/2 { // the rest: the Go side of the run (-race makes it heavier)
		t.Errorf("threads at nice %d had %v of the run's %v of CPU, want most", nice, time.Duration(niced), time.Duration(all))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, nice)
	// Two intra-op threads: ONNX Runtime starts one more thread for the
	// session, which inherits the nice of the thread that made it.
	parked = threadsAt(t, nice) // the main thread, if s had it
	pooled, err := env.NewSession(filepath.Join(runtimetest.Models(t), "slow", "1", "model.onnx"), runtime.SessionOptions{Instances: 2, IntraOpThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	m := threadsAt(t, nice)
	for tid := range parked {
		delete(m, tid)
	}
	if len(m) < 3 {
		t.Errorf("%d threads at nice %d for 2 instances of 2 intra-op threads, want the pool's too", len(m), nice)
	}
	if err := pooled.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, nice)
}

// waitGone waits until no thread but the main one runs at nice.
func waitGone(t *testing.T, nice int) {
	t.Helper()
	main := strconv.Itoa(os.Getpid())
	left := func() int {
		m := threadsAt(t, nice)
		delete(m, main)
		return len(m)
	}
	for deadline := time.Now().Add(5 * time.Second); left() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads at nice %d after Close", left(), nice)
		}
	}
}
