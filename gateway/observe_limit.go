package gateway

import (
	"sync/atomic"
	"time"
)

// lineLimit allows at most limit lines a second, lock-free: the error
// path under overload is taken by every request at once, and a mutex
// there would make the overload worse. A burst at the turn of a second
// may pass up to twice the limit.
type lineLimit struct {
	limit  int64
	second atomic.Int64 // the Unix second being counted
	count  atomic.Int64 // lines allowed in it
}

func (l *lineLimit) allow(now time.Time) bool {
	sec := now.Unix()
	if cur := l.second.Load(); cur != sec && l.second.CompareAndSwap(cur, sec) {
		l.count.Store(0)
	}
	return l.count.Add(1) <= l.limit
}
