package router

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/infergate/infergate/runtime"
)

type dropCounter struct {
	nopObserver
	dropped int64
}

func (o *dropCounter) ObserveShadowDropped(_ string, n int64) { o.dropped += n }

// TestShadowDrops: a full pool drops the shadow at once, on the request
// path, and the drops are counted.
func TestShadowDrops(t *testing.T) {
	obs := &dropCounter{}
	r := &Router{obs: obs}
	r.shadow = &shadows{r: r, queue: make(chan *shadowJob, ShadowQueue)} // no workers: nothing drains it
	d := Decision{r: r, model: "m", pol: &policy{doc: &Document{Shadow: &Shadow{Version: 2, Percent: 100}}}}
	in := []runtime.Tensor{{Name: "x", DataType: runtime.FP32, Shape: []int64{1}, Data: make([]byte, 4)}}
	for range ShadowQueue + 5 {
		d.Shadow(in, in)
	}
	r.shadow.flushDrops()
	if len(r.shadow.queue) != ShadowQueue || obs.dropped != 5 {
		t.Errorf("got %d queued and %d dropped, want %d and 5", len(r.shadow.queue), obs.dropped, ShadowQueue)
	}
}

func fp32(shape []int64, v ...float32) runtime.Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[i*4:], math.Float32bits(x))
	}
	return runtime.Tensor{Name: "y", DataType: runtime.FP32, Shape: shape, Data: b}
}

// TestCompareOutputs: the largest absolute difference, the rows of an
// [N, C] output whose argmax differs, and outputs that cannot be
// compared.
func TestCompareOutputs(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name           string
		primary, other runtime.Tensor
		wantDiff       float64
		wantDisagree   int
		wantOK         bool
	}{
		{"equal", fp32([]int64{2, 2}, 1, 0, 0, 1), fp32([]int64{2, 2}, 1, 0, 0, 1), 0, 0, true},
		{"one row flips", fp32([]int64{2, 2}, 0.9, 0.1, 0.2, 0.8), fp32([]int64{2, 2}, 0.4, 0.6, 0.2, 0.8), 0.5, 1, true},
		{"NaN against NaN", fp32([]int64{2}, nan, 1), fp32([]int64{2}, nan, 1), 0, 0, true},
		{"NaN against a number", fp32([]int64{2}, nan, 1), fp32([]int64{2}, 0, 1), math.Inf(1), 0, true},
		{"other shape", fp32([]int64{2}, 1, 2), fp32([]int64{1, 2}, 1, 2), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diff, disagree, ok := compareOutputs([]runtime.Tensor{tt.primary}, []runtime.Tensor{tt.other})
			if ok != tt.wantOK || (ok && (math.Abs(diff-tt.wantDiff) > 1e-6 && !(math.IsInf(diff, 1) && math.IsInf(tt.wantDiff, 1)) || disagree != tt.wantDisagree)) {
				t.Errorf("got %v, %d, %v; want %v, %d, %v", diff, disagree, ok, tt.wantDiff, tt.wantDisagree, tt.wantOK)
			}
		})
	}
}
