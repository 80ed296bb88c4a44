package load

import (
	"syscall"
	"time"
)

// tuneThread sets the calling thread's timer slack to 1 µs (from the
// default 50 µs), so that preciseSleep wakes when asked.
func tuneThread() {
	const prSetTimerSlack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
}

// preciseSleep blocks the calling thread for d with nanosleep(2).
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
