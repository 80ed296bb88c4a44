package runtime

import (
	"strconv"
	"unsafe"
)

// TensorAlign is the alignment tensor data is given to ONNX Runtime
// with: its kernels read unaligned data markedly slower (PaddleOCR's
// classifier ran 1.21 to 1.44 ms an image from a request body at an odd
// offset, 1.14 ms from an aligned buffer). The protocol packages use
// request bytes in place when they are aligned, and AlignedCopy
// otherwise.
const TensorAlign = 64

// Aligned reports whether b starts at a TensorAlign boundary.
func Aligned(b []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))%TensorAlign == 0
}

// AlignedBuffer returns a new zeroed buffer of n bytes aligned to
// TensorAlign bytes.
func AlignedBuffer(n int) []byte {
	buf := make([]byte, n+TensorAlign-1)
	off := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(buf))) % TensorAlign); r != 0 {
		off = TensorAlign - r
	}
	return buf[off : off+n : off+n]
}

// AlignedCopy copies b into a new buffer aligned to TensorAlign bytes.
func AlignedCopy(b []byte) []byte {
	out := AlignedBuffer(len(b))
	copy(out, b)
	return out
}

// ShapeMatches reports whether shape has the rank of model (a signature's
// shape, -1 for a variable dimension), no negative dimension, and each of
// model's fixed dimensions.
func ShapeMatches(model, shape []int64) bool {
	if len(model) != len(shape) {
		return false
	}
	for i, m := range model {
		if shape[i] < 0 || (m != -1 && m != shape[i]) {
			return false
		}
	}
	return true
}

// FormatShape writes a shape as error messages show it: [1,16].
func FormatShape(shape []int64) string {
	b := make([]byte, 0, 2+len(shape)*4)
	b = append(b, '[')
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}
