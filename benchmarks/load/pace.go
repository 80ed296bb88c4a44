package load

import (
	"runtime"
	"time"
)

// pace sends the index of each offset on sends at start+offset, until
// the schedule ends (then it closes exhausted) or stop is closed; it
// closes sends when it returns.
//
// Go's timers fire up to a millisecond late on an idle process (the
// netpoller sleeps in whole milliseconds), which would add up to a
// millisecond of the generator's own lag to every open-loop latency, and
// bunch requests that were meant to be spread. The pacer instead runs on
// an OS thread of its own and sleeps there with the operating system's
// high-resolution sleep (preciseSleep), which wakes within tens of
// microseconds. The thread is never returned to Go's pool: it ends with
// the pacer.
func pace(start time.Time, offsets []time.Duration, sends chan<- int, stop, exhausted chan struct{}) {
	defer close(sends)
	runtime.LockOSThread() // and never unlocked: the thread exits with the pacer
	tuneThread()
	const slice = 5 * time.Millisecond // the longest sleep before looking at stop
	for i, off := range offsets {
		at := start.Add(off)
		for d := time.Until(at); d > 0; d = time.Until(at) {
			select {
			case <-stop:
				return
			default:
			}
			preciseSleep(min(d, slice))
		}
		select {
		case sends <- i:
		case <-stop:
			return
		}
	}
	close(exhausted)
}
