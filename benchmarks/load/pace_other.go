//go:build !linux

package load

import "time"

// tuneThread does nothing where the timer slack cannot be set.
func tuneThread() {}

// preciseSleep falls back to Go's timers, which may wake late.
func preciseSleep(d time.Duration) { time.Sleep(d) }
