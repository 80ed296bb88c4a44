package runtime

import (
	"errors"
	"fmt"
	goruntime "runtime"
)

// MaxExecutionNice is the largest Options.ExecutionNice: from a process
// at nice 0, Linux's lowest nice, 19.
const MaxExecutionNice = 19

var errNiceUnsupported = errors.New("per-thread priority is supported on Linux only")

// thread is an OS thread of its own for one execution slot, at a lower
// priority than the rest of the process for its whole life: the
// scheduler then gives the goroutines that read, refuse and answer
// requests the CPU first, and the executions what is left. Raising a
// thread's nice needs no privilege; lowering it back would
// (CAP_SYS_NICE), which is why the thread is never shared.
//
// Its goroutine is owned by the Session: stop ends it, and with it the
// thread (a goroutine that exits locked takes its thread along), except
// when Go had run it on the process's main thread, which Go parks for
// good instead: it never runs again, but tools that show a process's
// nice by its main thread (ps, top) then show the execution nice.
type thread struct {
	jobs chan func()
	ack  chan struct{}
	done chan struct{}
}

// startThread starts a thread nice steps below the thread that starts it
// (at most at nice 19) and returns once it runs there.
func startThread(nice int) (*thread, error) {
	t := &thread{jobs: make(chan func()), ack: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go t.loop(nice, ready)
	if err := <-ready; err != nil {
		<-t.done
		return nil, fmt.Errorf("execution thread %d nice steps below the server: %w", nice, err)
	}
	return t, nil
}

func (t *thread) loop(nice int, ready chan<- error) {
	defer close(t.done)
	goruntime.LockOSThread() // never unlocked: the thread ends with the goroutine
	base, err := threadNice()
	if err == nil {
		err = setThreadNice(min(base+nice, 19))
	}
	if err != nil {
		ready <- err
		return
	}
	ready <- nil
	for f := range t.jobs {
		f()
		t.ack <- struct{}{}
	}
}

// do runs f on the thread and returns when it has. One caller at a time:
// the slot that owns the thread is held by one run.
func (t *thread) do(f func()) {
	t.jobs <- f
	<-t.ack
}

// stop ends the thread and waits for it.
func (t *thread) stop() {
	close(t.jobs)
	<-t.done
}
