package batching

import (
	"fmt"
	"sync"

	"github.com/infergate/infergate/runtime"
)

// bufferPool pools the merged input buffers of batches. Buffers above
// maxPooled are left to the garbage collector.
type bufferPool struct{ p sync.Pool }

const maxPooled = 16 << 20

func (bp *bufferPool) get(n int) *[]byte {
	if v, ok := bp.p.Get().(*[]byte); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n)
	return &b
}

func (bp *bufferPool) put(b *[]byte) {
	if cap(*b) <= maxPooled {
		bp.p.Put(b)
	}
}

// merge concatenates the batch's inputs along axis 0 into pooled buffers.
func (bp *bufferPool) merge(b []*pending, rows int) ([]runtime.Tensor, []*[]byte) {
	first := b[0].inputs
	out := make([]runtime.Tensor, len(first))
	var bufs []*[]byte
	for i, t := range first {
		shape := append([]int64{int64(rows)}, t.Shape[1:]...)
		out[i] = runtime.Tensor{Name: t.Name, DataType: t.DataType, Shape: shape}
		if t.DataType == runtime.Bytes {
			strs := make([]string, 0, len(t.Strings)*rows/b[0].rows)
			for _, p := range b {
				strs = append(strs, p.inputs[i].Strings...)
			}
			out[i].Strings = strs
			continue
		}
		n := 0
		for _, p := range b {
			n += len(p.inputs[i].Data)
		}
		buf := bp.get(n)
		off := 0
		for _, p := range b {
			off += copy((*buf)[off:], p.inputs[i].Data)
		}
		out[i].Data = *buf
		bufs = append(bufs, buf)
	}
	return out, bufs
}

// checkOutputs fails when an output's leading dimension is not the
// batch's rows: the outputs of a model that batches along axis 0 must
// keep the batch first (a model declaring symbolic dimensions may not,
// as a transpose). It is checked for every batch, of one request too, so
// that the answer does not depend on which requests share a run.
func checkOutputs(outs []runtime.Tensor, rows int) error {
	for _, o := range outs {
		if len(o.Shape) == 0 || o.Shape[0] != int64(rows) {
			return fmt.Errorf("%w: output %q does not keep the batch as its leading dimension, as a model served with dynamic batching must: a run of %d rows gave shape %v",
				runtime.ErrInvalidInput, o.Name, rows, o.Shape)
		}
	}
	return nil
}

// split cuts each output along axis 0 into the batch's requests, once
// checkOutputs has passed. The parts share the outputs' memory, which
// nothing else holds.
func split(outs []runtime.Tensor, b []*pending) [][]runtime.Tensor {
	parts := make([][]runtime.Tensor, len(b))
	flat := make([]runtime.Tensor, len(b)*len(outs))
	for i := range b {
		parts[i] = flat[i*len(outs) : (i+1)*len(outs) : (i+1)*len(outs)]
	}
	for j, o := range outs {
		per := 1 // elements per row
		for _, d := range o.Shape[1:] {
			per *= int(d)
		}
		rowBytes := per * o.DataType.Size()
		shapes := make([]int64, len(b)*len(o.Shape))
		off := 0
		for i, p := range b {
			shape := shapes[i*len(o.Shape) : (i+1)*len(o.Shape) : (i+1)*len(o.Shape)]
			copy(shape, o.Shape)
			shape[0] = int64(p.rows)
			t := runtime.Tensor{Name: o.Name, DataType: o.DataType, Shape: shape}
			if o.DataType == runtime.Bytes {
				t.Strings = o.Strings[off*per : (off+p.rows)*per : (off+p.rows)*per]
			} else {
				t.Data = o.Data[off*rowBytes : (off+p.rows)*rowBytes : (off+p.rows)*rowBytes]
			}
			parts[i][j] = t
			off += p.rows
		}
	}
	return parts
}
