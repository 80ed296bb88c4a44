package runtime

import (
	"fmt"
	"math"
)

// Tensor is a named tensor in the form ONNX Runtime reads and writes.
type Tensor struct {
	Name     string
	DataType DataType
	// Shape is the tensor's shape; empty for a scalar.
	Shape []int64
	// Data holds the elements of a fixed-size DataType, row-major, each in
	// its little-endian binary form (BOOL is one byte, 0 or 1). Nil for
	// BYTES.
	Data []byte
	// Strings holds the elements of a BYTES tensor, row-major.
	Strings []string
}

// TensorInfo describes a model input or output.
type TensorInfo struct {
	Name     string
	DataType DataType
	// Shape has -1 for each dimension of variable size.
	Shape []int64
}

// ElementCount returns the number of elements of a tensor of the given
// shape: 1 for a scalar. It fails on a negative dimension or on overflow
// past maxElements.
func ElementCount(shape []int64, maxElements int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	if n > maxElements {
		return 0, fmt.Errorf("shape %v has %d elements, more than the limit of %d", shape, n, maxElements)
	}
	return n, nil
}

// Validate checks that the tensor's data matches its type and shape.
func (t *Tensor) Validate() error {
	n, err := ElementCount(t.Shape, math.MaxInt64)
	if err != nil {
		return err
	}
	switch {
	case t.DataType == Invalid || t.DataType >= numDataTypes:
		return fmt.Errorf("tensor %q has an invalid datatype", t.Name)
	case t.DataType == Bytes:
		if int64(len(t.Strings)) != n {
			return fmt.Errorf("tensor %q: shape %v needs %d strings, got %d", t.Name, t.Shape, n, len(t.Strings))
		}
	default:
		if want := n * int64(t.DataType.Size()); int64(len(t.Data)) != want {
			return fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, got %d", t.Name, t.Shape, t.DataType, want, len(t.Data))
		}
	}
	return nil
}
