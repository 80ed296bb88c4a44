package drift

import "slices"

// Clone returns a copy of the window that later Adds to w do not change:
// a snapshot that another goroutine may compare (CompareWindows) while
// the owner goes on. The reference and bin edges are shared, read-only.
func (w *Window) Clone() *Window {
	c := *w
	c.counts = slices.Clone(w.counts)
	c.nan = slices.Clone(w.nan)
	return &c
}
