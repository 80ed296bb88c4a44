package grpc

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/grpc/inference"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

// FuzzDecodeInputs: any ModelInferRequest message decodes against a
// signature (FP32 x [-1,4], BYTES s [-1]) to tensors that validate, or
// to an Invalid error; never a panic.
func FuzzDecodeInputs(f *testing.F) {
	v := &repository.Version{Batched: true, MaxBatchSize: 8, Inputs: []runtime.TensorInfo{
		{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, 4}},
		{Name: "s", DataType: runtime.Bytes, Shape: []int64{-1}},
	}}
	seed, _ := proto.Marshal(&inference.ModelInferRequest{ModelName: "m", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "FP32", Shape: []int64{1, 4}}, {Name: "s", Datatype: "BYTES", Shape: []int64{1}}},
		RawInputContents: [][]byte{make([]byte, 16), {1, 0, 0, 0, 'a'}}})
	f.Add(seed)
	typed, _ := proto.Marshal(&inference.ModelInferRequest{ModelName: "m", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "FP32", Shape: []int64{1, 4}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4}}},
		{Name: "s", Datatype: "BYTES", Shape: []int64{1}, Contents: &inference.InferTensorContents{BytesContents: [][]byte{[]byte("a")}}}}})
	f.Add(typed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req inference.ModelInferRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		tensors, err := decodeInputs(&req, v)
		if err != nil {
			if errdefs.KindOf(err) != errdefs.Invalid || err.Error() == "" {
				t.Fatalf("got %v (kind %v), want an Invalid error with a message", err, errdefs.KindOf(err))
			}
			return
		}
		for i := range tensors {
			if err := tensors[i].Validate(); err != nil {
				t.Fatalf("decoded tensor %d does not validate: %v", i, err)
			}
		}
	})
}
