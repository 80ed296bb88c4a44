package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/infergate/infergate/gateway/client"
)

// Payload is a set of prebuilt request bodies for one model, sent in turn.
type Payload struct {
	// Bodies are complete request bodies.
	Bodies [][]byte
	// HeaderLens are the Inference-Header-Content-Length of each body:
	// the length of its JSON part when it carries binary tensors, else -1.
	HeaderLens []int
	// Rows is the number of items in each request: the leading dimension
	// of the first input when the model batches, else 1.
	Rows int
	// Binary says the inputs travel as binary tensors.
	Binary bool
	// Requests are the typed requests behind Bodies, in the same order:
	// the gRPC runner encodes them as raw contents.
	Requests []*client.Request
}

// PayloadOptions shape a Payload.
type PayloadOptions struct {
	// Binary sends the inputs, and asks for the outputs, as binary tensor
	// data (Triton's extension). Default false: JSON both ways.
	Binary bool
	// Rows is the batch size of each request, used for a variable leading
	// dimension. Default 1.
	Rows int
	// Shapes gives the full shape of named inputs (batch dimension
	// included), for models whose other dimensions are variable. Default:
	// none; a variable dimension past the first is then an error.
	Shapes map[string][]int64
	// Samples is the number of distinct random bodies built, sent in turn
	// so that no server can answer from a cache keyed on one body.
	// Default 4. Unused by SamplePayload.
	Samples int
	// Seed seeds the random data. Default 1.
	Seed uint64
}

func (o PayloadOptions) withDefaults() PayloadOptions {
	if o.Rows <= 0 {
		o.Rows = 1
	}
	if o.Samples <= 0 {
		o.Samples = 4
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// RandomPayload builds opts.Samples bodies of random data for the inputs of
// a model, as its metadata (GET /v2/models/{m}) describes them: floats in
// [-1, 1), integers in [0, 100), random booleans, short strings. A leading
// -1 becomes opts.Rows; any other -1 must be fixed by opts.Shapes.
func RandomPayload(md *client.ModelMetadata, opts PayloadOptions) (*Payload, error) {
	opts = opts.withDefaults()
	if len(md.Inputs) == 0 {
		return nil, fmt.Errorf("model %q has no inputs", md.Name)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed+1))
	shapes := make([][]int64, len(md.Inputs))
	rows := 1
	for i, in := range md.Inputs {
		s, err := inputShape(in, opts)
		if err != nil {
			return nil, err
		}
		shapes[i] = s
		if i == 0 && len(in.Shape) > 0 && in.Shape[0] < 0 {
			rows = int(s[0])
		}
	}
	p := &Payload{Rows: rows, Binary: opts.Binary}
	for range opts.Samples {
		req := &client.Request{BinaryOutput: opts.Binary}
		for i, in := range md.Inputs {
			n := int64(1)
			for _, d := range shapes[i] {
				n *= d
			}
			data, err := randomData(rng, in.Datatype, int(n))
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", in.Name, err)
			}
			req.Inputs = append(req.Inputs, client.Tensor{Name: in.Name, Datatype: in.Datatype, Shape: shapes[i], Data: data, Binary: opts.Binary})
		}
		body, headerLen, err := client.EncodeRequest(req)
		if err != nil {
			return nil, err
		}
		p.Bodies = append(p.Bodies, body)
		p.HeaderLens = append(p.HeaderLens, headerLen)
		p.Requests = append(p.Requests, req)
	}
	return p, nil
}

// inputShape is the concrete shape to send for in.
func inputShape(in client.TensorMetadata, opts PayloadOptions) ([]int64, error) {
	if s, ok := opts.Shapes[in.Name]; ok {
		if len(s) != len(in.Shape) {
			return nil, fmt.Errorf("input %q: shape %v given for a tensor of %d dimensions %v", in.Name, s, len(in.Shape), in.Shape)
		}
		for j, d := range s {
			if d < 0 || (in.Shape[j] >= 0 && d != in.Shape[j]) {
				return nil, fmt.Errorf("input %q: shape %v does not fit the model's %v", in.Name, s, in.Shape)
			}
		}
		return s, nil
	}
	s := append([]int64{}, in.Shape...)
	for j, d := range s {
		switch {
		case d >= 0:
		case j == 0:
			s[j] = int64(opts.Rows)
		default:
			return nil, fmt.Errorf("input %q has shape %v: give its shape (-shape %s=...)", in.Name, in.Shape, in.Name)
		}
	}
	return s, nil
}

// randomData returns n random elements of datatype, in the Go type that
// client.Tensor takes.
func randomData(rng *rand.Rand, datatype string, n int) (any, error) {
	switch datatype {
	case "BOOL":
		return fill(n, func() bool { return rng.IntN(2) == 1 }), nil
	case "UINT8":
		return fill(n, func() uint8 { return uint8(rng.IntN(100)) }), nil
	case "UINT16":
		return fill(n, func() uint16 { return uint16(rng.IntN(100)) }), nil
	case "UINT32":
		return fill(n, func() uint32 { return uint32(rng.IntN(100)) }), nil
	case "UINT64":
		return fill(n, func() uint64 { return uint64(rng.IntN(100)) }), nil
	case "INT8":
		return fill(n, func() int8 { return int8(rng.IntN(100)) }), nil
	case "INT16":
		return fill(n, func() int16 { return int16(rng.IntN(100)) }), nil
	case "INT32":
		return fill(n, func() int32 { return int32(rng.IntN(100)) }), nil
	case "INT64":
		return fill(n, func() int64 { return int64(rng.IntN(100)) }), nil
	case "FP16", "FP32":
		return fill(n, func() float32 { return float32(rng.Float64()*2 - 1) }), nil
	case "FP64":
		return fill(n, func() float64 { return rng.Float64()*2 - 1 }), nil
	case "BYTES":
		return fill(n, func() string { return "s" + strconv.Itoa(rng.IntN(1000)) }), nil
	}
	return nil, fmt.Errorf("unknown datatype %q", datatype)
}

func fill[T any](n int, f func() T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = f()
	}
	return out
}

// sampleRequest is the part of a KServe v2 JSON request that SamplePayload
// reads.
type sampleRequest struct {
	Inputs []struct {
		Name     string          `json:"name"`
		Shape    []int64         `json:"shape"`
		Datatype string          `json:"datatype"`
		Data     json.RawMessage `json:"data"`
	} `json:"inputs"`
}

// SamplePayload builds a payload from sample, a KServe v2 JSON inference
// request body (as curl would send it). In JSON mode the body is sent as
// it is; with opts.Binary its inputs are re-encoded as binary tensors and
// binary outputs are asked for. Rows is the first input's leading
// dimension (1 for a scalar).
func SamplePayload(sample []byte, opts PayloadOptions) (*Payload, error) {
	var sr sampleRequest
	dec := json.NewDecoder(bytes.NewReader(sample))
	dec.UseNumber()
	if err := dec.Decode(&sr); err != nil {
		return nil, fmt.Errorf("sample request: %w", err)
	}
	if len(sr.Inputs) == 0 {
		return nil, errors.New("sample request has no inputs")
	}
	p := &Payload{Rows: 1, Binary: opts.Binary}
	if s := sr.Inputs[0].Shape; len(s) > 0 && s[0] > 0 {
		p.Rows = int(s[0])
	}
	req := &client.Request{BinaryOutput: opts.Binary}
	for _, in := range sr.Inputs {
		data, err := client.DecodeJSONData(in.Datatype, in.Shape, in.Data)
		if err != nil {
			return nil, fmt.Errorf("sample input %q: %w", in.Name, err)
		}
		req.Inputs = append(req.Inputs, client.Tensor{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape, Data: data, Binary: opts.Binary})
	}
	p.Requests = []*client.Request{req}
	if !opts.Binary {
		var compact bytes.Buffer
		if err := json.Compact(&compact, sample); err != nil {
			return nil, fmt.Errorf("sample request: %w", err)
		}
		p.Bodies, p.HeaderLens = [][]byte{compact.Bytes()}, []int{-1}
		return p, nil
	}
	body, headerLen, err := client.EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("sample request: %w", err)
	}
	p.Bodies, p.HeaderLens = [][]byte{body}, []int{headerLen}
	return p, nil
}
