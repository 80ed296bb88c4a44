package runtime

import (
	"testing"
	"unsafe"
)

// TestLayout: aligned buffers and copies are aligned and hold their
// bytes; shapes match and format as error messages show them.
func TestLayout(t *testing.T) {
	for n := 1; n <= 130; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		c := AlignedCopy(b[1:])
		if len(c) != n-1 || (len(c) > 0 && !Aligned(c)) || string(c) != string(b[1:]) {
			t.Fatalf("AlignedCopy of %d bytes: %d bytes at %p", n-1, len(c), unsafe.SliceData(c))
		}
		if buf := AlignedBuffer(n); len(buf) != n || cap(buf) != n || (n > 0 && !Aligned(buf)) {
			t.Fatalf("AlignedBuffer(%d): len %d cap %d", n, len(buf), cap(buf))
		}
	}
	for _, tc := range []struct {
		model, shape []int64
		want         bool
	}{
		{[]int64{-1, 16}, []int64{3, 16}, true},
		{[]int64{-1, 16}, []int64{3, 15}, false},
		{[]int64{-1, 16}, []int64{-1, 16}, false},
		{[]int64{-1}, []int64{3, 1}, false},
		{nil, nil, true},
	} {
		if got := ShapeMatches(tc.model, tc.shape); got != tc.want {
			t.Errorf("ShapeMatches(%v, %v) = %v", tc.model, tc.shape, got)
		}
	}
	if s := FormatShape([]int64{-1, 16}); s != "[-1,16]" {
		t.Errorf("FormatShape: %s", s)
	}
}
