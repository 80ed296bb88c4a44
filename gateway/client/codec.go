package client

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/x448/float16"
)

// Tensor is one input of a Request or one output of a Response.
type Tensor struct {
	Name     string
	Datatype string // "BOOL", "UINT8" ... "UINT64", "INT8" ... "INT64", "FP16", "FP32", "FP64", "BYTES"
	Shape    []int64
	// Data is a flat, row-major typed slice: []bool, []uint8, []uint16,
	// []uint32, []uint64, []int8, []int16, []int32, []int64, []float32
	// (FP32 and FP16), []float64, or []string / [][]byte for BYTES.
	// Decoded responses use [][]byte for BYTES and []float32 for FP16.
	Data any
	// Binary sends this input as binary data after the JSON header. In a
	// Response it tells that the output came as binary data.
	Binary bool
}

// RequestedOutput names an output to return. Binary, when set, becomes
// the output's "binary_data" parameter.
type RequestedOutput struct {
	Name   string
	Binary *bool
}

// Request is an inference request.
type Request struct {
	ID      string
	Inputs  []Tensor
	Outputs []RequestedOutput // empty: all outputs
	// BinaryOutput sets the request parameter "binary_data_output": true,
	// asking for every output as binary data.
	BinaryOutput bool
	// Parameters are extra request parameters ("timeout", "priority", ...).
	// The map is copied, never modified.
	Parameters map[string]any
}

// Response is a decoded inference response.
type Response struct {
	ModelName    string
	ModelVersion string
	ID           string
	Outputs      []Tensor
}

type jsonRequest struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []jsonInput    `json:"inputs"`
	Outputs    []jsonOutput   `json:"outputs,omitempty"`
}

type jsonInput struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"`
}

type jsonOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type jsonResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	ID           string           `json:"id"`
	Outputs      []jsonOutputData `json:"outputs"`
}

type jsonOutputData struct {
	Name       string  `json:"name"`
	Datatype   string  `json:"datatype"`
	Shape      []int64 `json:"shape"`
	Parameters struct {
		BinaryDataSize *int64 `json:"binary_data_size"`
	} `json:"parameters"`
	Data json.RawMessage `json:"data"`
}

// EncodeRequest encodes req as a request body. When any input is binary,
// the body is the JSON header followed by the binary inputs' bytes in
// input order, and headerLen is the JSON's length (the value of the
// Inference-Header-Content-Length header); otherwise headerLen is -1.
//
// It checks each input's datatype, the Go type of its Data, and that the
// number of elements matches the shape.
func EncodeRequest(req *Request) (body []byte, headerLen int, err error) {
	if req == nil {
		return nil, 0, errors.New("nil request")
	}
	jr := jsonRequest{ID: req.ID, Inputs: make([]jsonInput, len(req.Inputs))}
	if len(req.Parameters) > 0 || req.BinaryOutput {
		jr.Parameters = make(map[string]any, len(req.Parameters)+1)
		for k, v := range req.Parameters {
			jr.Parameters[k] = v
		}
		if req.BinaryOutput {
			jr.Parameters["binary_data_output"] = true
		}
	}
	var bin []byte
	anyBinary := false
	for i, t := range req.Inputs {
		in, err := encodeInput(t, &bin)
		if err != nil {
			return nil, 0, fmt.Errorf("input %d (%q): %w", i, t.Name, err)
		}
		jr.Inputs[i] = in
		anyBinary = anyBinary || t.Binary
	}
	for _, o := range req.Outputs {
		out := jsonOutput{Name: o.Name}
		if o.Binary != nil {
			out.Parameters = map[string]any{"binary_data": *o.Binary}
		}
		jr.Outputs = append(jr.Outputs, out)
	}
	header, err := json.Marshal(jr)
	if err != nil {
		return nil, 0, fmt.Errorf("encode request: %w", err)
	}
	if !anyBinary {
		return header, -1, nil
	}
	return append(header, bin...), len(header), nil
}

// encodeInput returns t's JSON form; a binary input's bytes are appended
// to *bin.
func encodeInput(t Tensor, bin *[]byte) (jsonInput, error) {
	n, err := dataLen(t.Datatype, t.Data)
	if err != nil {
		return jsonInput{}, err
	}
	want, err := elements(t.Shape)
	if err != nil {
		return jsonInput{}, err
	}
	if int64(n) != want {
		return jsonInput{}, fmt.Errorf("shape %v wants %d elements, data has %d", t.Shape, want, n)
	}
	in := jsonInput{Name: t.Name, Shape: t.Shape, Datatype: t.Datatype}
	if in.Shape == nil {
		in.Shape = []int64{}
	}
	if t.Binary {
		start := len(*bin)
		*bin, err = appendBinary(*bin, t.Datatype, t.Data)
		if err != nil {
			return jsonInput{}, err
		}
		in.Parameters = map[string]any{"binary_data_size": len(*bin) - start}
		return in, nil
	}
	in.Data, err = jsonData(t.Data, n)
	return in, err
}

// dataLen checks that data is the Go type datatype calls for and returns
// its number of elements.
func dataLen(datatype string, data any) (int, error) {
	var n int
	ok := false
	switch datatype {
	case "BOOL":
		n, ok = sliceLen[bool](data)
	case "UINT8":
		n, ok = sliceLen[uint8](data)
	case "UINT16":
		n, ok = sliceLen[uint16](data)
	case "UINT32":
		n, ok = sliceLen[uint32](data)
	case "UINT64":
		n, ok = sliceLen[uint64](data)
	case "INT8":
		n, ok = sliceLen[int8](data)
	case "INT16":
		n, ok = sliceLen[int16](data)
	case "INT32":
		n, ok = sliceLen[int32](data)
	case "INT64":
		n, ok = sliceLen[int64](data)
	case "FP16", "FP32":
		n, ok = sliceLen[float32](data)
	case "FP64":
		n, ok = sliceLen[float64](data)
	case "BYTES":
		if n, ok = sliceLen[string](data); !ok {
			n, ok = sliceLen[[]byte](data)
		}
	default:
		return 0, fmt.Errorf("unknown datatype %q", datatype)
	}
	if !ok {
		return 0, fmt.Errorf("datatype %s cannot take data of type %T", datatype, data)
	}
	return n, nil
}

func sliceLen[T any](data any) (int, bool) {
	s, ok := data.([]T)
	return len(s), ok
}

// elements is the number of elements of shape; a scalar (empty shape) has one.
func elements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// jsonData returns data (of n elements, already type-checked) in a form
// encoding/json writes as a flat JSON array.
func jsonData(data any, n int) (any, error) {
	if n == 0 {
		return []any{}, nil // a nil slice would be written as null
	}
	switch v := data.(type) {
	case []uint8:
		// encoding/json writes []byte as base64: widen it to get numbers.
		out := make([]uint16, len(v))
		for i, x := range v {
			out[i] = uint16(x)
		}
		return out, nil
	case []float32:
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("element %d is %v, which JSON cannot carry: send the input as binary", i, x)
			}
		}
	case []float64:
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("element %d is %v, which JSON cannot carry: send the input as binary", i, x)
			}
		}
	case []string:
		for i, s := range v {
			if !utf8.ValidString(s) {
				return nil, fmt.Errorf("BYTES element %d is not valid UTF-8: send the input as binary", i)
			}
		}
	case [][]byte:
		out := make([]string, len(v))
		for i, b := range v {
			if !utf8.Valid(b) {
				return nil, fmt.Errorf("BYTES element %d is not valid UTF-8: send the input as binary", i)
			}
			out[i] = string(b)
		}
		return out, nil
	}
	return data, nil
}

// appendBinary appends data (already type-checked) to b in the binary
// tensor layout: little-endian, row-major, BOOL one byte, each BYTES
// element a 4-byte little-endian length and then its bytes.
func appendBinary(b []byte, datatype string, data any) ([]byte, error) {
	le := binary.LittleEndian
	switch v := data.(type) {
	case []bool:
		for _, x := range v {
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []uint8:
		b = append(b, v...)
	case []int8:
		for _, x := range v {
			b = append(b, byte(x))
		}
	case []uint16:
		for _, x := range v {
			b = le.AppendUint16(b, x)
		}
	case []int16:
		for _, x := range v {
			b = le.AppendUint16(b, uint16(x))
		}
	case []uint32:
		for _, x := range v {
			b = le.AppendUint32(b, x)
		}
	case []int32:
		for _, x := range v {
			b = le.AppendUint32(b, uint32(x))
		}
	case []uint64:
		for _, x := range v {
			b = le.AppendUint64(b, x)
		}
	case []int64:
		for _, x := range v {
			b = le.AppendUint64(b, uint64(x))
		}
	case []float32:
		for _, x := range v {
			if datatype == "FP16" {
				b = le.AppendUint16(b, float16.Fromfloat32(x).Bits())
			} else {
				b = le.AppendUint32(b, math.Float32bits(x))
			}
		}
	case []float64:
		for _, x := range v {
			b = le.AppendUint64(b, math.Float64bits(x))
		}
	case []string:
		for i, s := range v {
			if uint64(len(s)) > math.MaxUint32 {
				return nil, fmt.Errorf("BYTES element %d is longer than 4 GiB", i)
			}
			b = le.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	case [][]byte:
		for i, s := range v {
			if uint64(len(s)) > math.MaxUint32 {
				return nil, fmt.Errorf("BYTES element %d is longer than 4 GiB", i)
			}
			b = le.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	default:
		return nil, fmt.Errorf("datatype %s cannot take data of type %T", datatype, data)
	}
	return b, nil
}

// DecodeResponse decodes a response body. headerLen is the value of the
// Inference-Header-Content-Length header, or -1 when it is absent (the
// whole body is JSON). Outputs with a "binary_data_size" parameter take
// their bytes, in output order, from after the JSON header; every byte
// there must belong to some output.
//
// Data is decoded to the typed slices Tensor documents and is never
// shared with body. Element counts are checked against the shape.
func DecodeResponse(body []byte, headerLen int) (*Response, error) {
	header, bin := body, []byte(nil)
	if headerLen != -1 {
		if headerLen < 0 || headerLen > len(body) {
			return nil, fmt.Errorf("inference header length %d outside a %d-byte body", headerLen, len(body))
		}
		header, bin = body[:headerLen], body[headerLen:]
	}
	var jr jsonResponse
	if err := json.Unmarshal(header, &jr); err != nil {
		return nil, fmt.Errorf("decode response json: %w", err)
	}
	resp := &Response{ModelName: jr.ModelName, ModelVersion: jr.ModelVersion, ID: jr.ID, Outputs: make([]Tensor, len(jr.Outputs))}
	for i, o := range jr.Outputs {
		t, rest, err := decodeOutput(o, bin, headerLen != -1)
		if err != nil {
			return nil, fmt.Errorf("output %d (%q): %w", i, o.Name, err)
		}
		resp.Outputs[i], bin = t, rest
	}
	if len(bin) > 0 {
		return nil, fmt.Errorf("%d bytes of binary data after the last binary output", len(bin))
	}
	return resp, nil
}

// decodeOutput decodes one output; a binary one takes its bytes from the
// front of bin, and the rest of bin is returned.
func decodeOutput(o jsonOutputData, bin []byte, hasBinary bool) (Tensor, []byte, error) {
	t := Tensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape}
	n64, err := elements(o.Shape)
	if err != nil {
		return Tensor{}, nil, err
	}
	n := int(n64)
	if size := o.Parameters.BinaryDataSize; size != nil {
		if !hasBinary {
			return Tensor{}, nil, errors.New("binary_data_size without an Inference-Header-Content-Length header")
		}
		if *size < 0 || *size > int64(len(bin)) {
			return Tensor{}, nil, fmt.Errorf("binary_data_size %d, but %d bytes remain", *size, len(bin))
		}
		t.Binary = true
		t.Data, err = decodeBinary(o.Datatype, bin[:*size], n)
		return t, bin[*size:], err
	}
	if len(o.Data) == 0 || string(o.Data) == "null" {
		if n != 0 {
			return Tensor{}, nil, errors.New("neither data nor binary_data_size")
		}
		o.Data = json.RawMessage("[]")
	}
	t.Data, err = decodeJSON(o.Datatype, o.Data, n)
	return t, bin, err
}

// DecodeJSONData converts a KServe v2 JSON "data" array (flat or nested)
// of the given datatype and shape to the typed slice Tensor.Data holds:
// for a request read from a file, say.
func DecodeJSONData(datatype string, shape []int64, raw json.RawMessage) (any, error) {
	n, err := elements(shape)
	if err != nil {
		return nil, err
	}
	return decodeJSON(datatype, raw, int(n))
}

// decodeJSON decodes a JSON data array, flat or nested, of n elements.
func decodeJSON(datatype string, raw json.RawMessage, n int) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode data: %w", err)
	}
	leaves, ok := flatten(v, nil)
	if !ok {
		return nil, errors.New("data is not an array")
	}
	if len(leaves) != n {
		return nil, fmt.Errorf("shape wants %d elements, data has %d", n, len(leaves))
	}
	switch datatype {
	case "BOOL":
		return convert(leaves, func(x any) (bool, error) {
			b, ok := x.(bool)
			if !ok {
				return false, fmt.Errorf("%v is not a boolean", x)
			}
			return b, nil
		})
	case "UINT8":
		return convert(leaves, parseUint[uint8](8))
	case "UINT16":
		return convert(leaves, parseUint[uint16](16))
	case "UINT32":
		return convert(leaves, parseUint[uint32](32))
	case "UINT64":
		return convert(leaves, parseUint[uint64](64))
	case "INT8":
		return convert(leaves, parseInt[int8](8))
	case "INT16":
		return convert(leaves, parseInt[int16](16))
	case "INT32":
		return convert(leaves, parseInt[int32](32))
	case "INT64":
		return convert(leaves, parseInt[int64](64))
	case "FP16", "FP32":
		return convert(leaves, parseFloat[float32](32))
	case "FP64":
		return convert(leaves, parseFloat[float64](64))
	case "BYTES":
		return convert(leaves, func(x any) ([]byte, error) {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not a string", x)
			}
			return []byte(s), nil
		})
	}
	return nil, fmt.Errorf("unknown datatype %q", datatype)
}

// flatten appends the leaves of a (possibly nested) JSON array to out in
// row-major order; ok is false when v is not an array.
func flatten(v any, out []any) ([]any, bool) {
	a, ok := v.([]any)
	if !ok {
		return out, false
	}
	for _, x := range a {
		if inner, ok := x.([]any); ok {
			out, _ = flatten(inner, out)
		} else {
			out = append(out, x)
		}
	}
	return out, true
}

func convert[T any](leaves []any, f func(any) (T, error)) ([]T, error) {
	out := make([]T, len(leaves))
	for i, x := range leaves {
		v, err := f(x)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func parseUint[T uint8 | uint16 | uint32 | uint64](bits int) func(any) (T, error) {
	return func(x any) (T, error) {
		num, ok := x.(json.Number)
		if !ok {
			return 0, fmt.Errorf("%v is not a number", x)
		}
		v, err := strconv.ParseUint(string(num), 10, bits)
		return T(v), err
	}
}

func parseInt[T int8 | int16 | int32 | int64](bits int) func(any) (T, error) {
	return func(x any) (T, error) {
		num, ok := x.(json.Number)
		if !ok {
			return 0, fmt.Errorf("%v is not a number", x)
		}
		v, err := strconv.ParseInt(string(num), 10, bits)
		return T(v), err
	}
}

func parseFloat[T float32 | float64](bits int) func(any) (T, error) {
	return func(x any) (T, error) {
		num, ok := x.(json.Number)
		if !ok {
			return 0, fmt.Errorf("%v is not a number", x)
		}
		v, err := strconv.ParseFloat(string(num), bits)
		return T(v), err
	}
}

// decodeBinary decodes b, the binary data of one output of n elements.
func decodeBinary(datatype string, b []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch datatype {
	case "BOOL":
		if len(b) != n {
			return nil, fmt.Errorf("%d elements of 1 byte, got %d bytes", n, len(b))
		}
		out := make([]bool, 0, n)
		for i, x := range b {
			if x > 1 {
				return nil, fmt.Errorf("BOOL element %d is byte %d, want 0 or 1", i, x)
			}
			out = append(out, x == 1)
		}
		return out, nil
	case "UINT8":
		return fixed(b, n, 1, func(p []byte) uint8 { return p[0] })
	case "INT8":
		return fixed(b, n, 1, func(p []byte) int8 { return int8(p[0]) })
	case "UINT16":
		return fixed(b, n, 2, le.Uint16)
	case "INT16":
		return fixed(b, n, 2, func(p []byte) int16 { return int16(le.Uint16(p)) })
	case "UINT32":
		return fixed(b, n, 4, le.Uint32)
	case "INT32":
		return fixed(b, n, 4, func(p []byte) int32 { return int32(le.Uint32(p)) })
	case "UINT64":
		return fixed(b, n, 8, le.Uint64)
	case "INT64":
		return fixed(b, n, 8, func(p []byte) int64 { return int64(le.Uint64(p)) })
	case "FP16":
		return fixed(b, n, 2, func(p []byte) float32 { return float16.Frombits(le.Uint16(p)).Float32() })
	case "FP32":
		return fixed(b, n, 4, func(p []byte) float32 { return math.Float32frombits(le.Uint32(p)) })
	case "FP64":
		return fixed(b, n, 8, func(p []byte) float64 { return math.Float64frombits(le.Uint64(p)) })
	case "BYTES":
		var out [][]byte
		for len(b) > 0 {
			if len(b) < 4 {
				return nil, fmt.Errorf("BYTES element %d: %d bytes left, want a 4-byte length", len(out), len(b))
			}
			l := le.Uint32(b)
			if uint64(l) > uint64(len(b)-4) {
				return nil, fmt.Errorf("BYTES element %d: length %d, but %d bytes remain", len(out), l, len(b)-4)
			}
			out = append(out, bytes.Clone(b[4:4+l]))
			b = b[4+l:]
		}
		if len(out) != n {
			return nil, fmt.Errorf("shape wants %d elements, data has %d", n, len(out))
		}
		if out == nil {
			out = [][]byte{}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown datatype %q", datatype)
}

// fixed decodes n elements of size bytes each.
func fixed[T any](b []byte, n, size int, get func([]byte) T) ([]T, error) {
	if len(b) != n*size {
		return nil, fmt.Errorf("%d elements of %d bytes, got %d bytes", n, size, len(b))
	}
	out := make([]T, n)
	for i := range out {
		out[i] = get(b[i*size:])
	}
	return out, nil
}

// EncodeBinary returns data (a Tensor's Data for datatype) in the binary
// tensor layout, as raw contents: little-endian and row-major, BOOL one
// byte, each BYTES element a 4-byte little-endian length and its bytes;
// the KServe v2 gRPC protocol's raw_input_contents take the same bytes.
func EncodeBinary(datatype string, data any) ([]byte, error) {
	return appendBinary(nil, datatype, data)
}
