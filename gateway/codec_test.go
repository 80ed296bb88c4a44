package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/valyala/fastjson"
	"github.com/x448/float16"

	"github.com/infergate/infergate/runtime"
)

// le encodes values as the little-endian elements of dt.
func le(dt runtime.DataType, values ...float64) []byte {
	b := make([]byte, 0, len(values)*dt.Size())
	for _, v := range values {
		switch dt {
		case runtime.Bool, runtime.Uint8:
			b = append(b, byte(v))
		case runtime.Int8:
			b = append(b, byte(int8(v)))
		case runtime.Uint16:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case runtime.Int16:
			b = binary.LittleEndian.AppendUint16(b, uint16(int16(v)))
		case runtime.Uint32:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case runtime.Int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
		case runtime.Uint64:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case runtime.Int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(int64(v)))
		case runtime.FP16:
			b = binary.LittleEndian.AppendUint16(b, float16.Fromfloat32(float32(v)).Bits())
		case runtime.FP32:
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
		case runtime.FP64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b
}

// u64 and i64 encode 64-bit integers that float64 cannot carry exactly.
func u64(values ...uint64) []byte {
	var b []byte
	for _, v := range values {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func i64(values ...int64) []byte {
	var b []byte
	for _, v := range values {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// lenPrefixed encodes strings as BYTES binary tensor data.
func lenPrefixed(strs ...string) []byte {
	var b []byte
	for _, s := range strs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// withBinary returns the body of a request with binary tensor data and its
// Inference-Header-Content-Length.
func withBinary(header string, bin ...[]byte) ([]byte, int) {
	body := []byte(header)
	for _, b := range bin {
		body = append(body, b...)
	}
	return body, len(header)
}

func info(name string, dt runtime.DataType, shape ...int64) runtime.TensorInfo {
	if shape == nil {
		shape = []int64{}
	}
	return runtime.TensorInfo{Name: name, DataType: dt, Shape: shape}
}

// The signature most tests decode against.
func testInputs() []runtime.TensorInfo {
	return []runtime.TensorInfo{info("x", runtime.FP32, -1, 4), info("s", runtime.Bytes, -1)}
}

func testOutputs() []runtime.TensorInfo {
	return []runtime.TensorInfo{info("y", runtime.FP32, -1, 4), info("z", runtime.Int64, -1)}
}

func decode(t *testing.T, body []byte, headerLen int, inputs, outputs []runtime.TensorInfo) (*inferRequest, error) {
	t.Helper()
	var p fastjson.Parser
	req := &inferRequest{}
	err := decodeRequest(&p, body, headerLen, inputs, outputs, req)
	return req, err
}

func mustDecode(t *testing.T, body []byte, headerLen int, inputs, outputs []runtime.TensorInfo) *inferRequest {
	t.Helper()
	req, err := decode(t, body, headerLen, inputs, outputs)
	if err != nil {
		t.Fatalf("decodeRequest(%s) = %v, want no error", body, err)
	}
	for i := range req.Inputs {
		if err := req.Inputs[i].Validate(); err != nil {
			t.Fatalf("decoded input %d is invalid: %v", i, err)
		}
	}
	return req
}

func TestDecodeJSONDataTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dt      runtime.DataType
		data    string
		want    []byte
		strings []string
	}{
		{name: "BOOL", dt: runtime.Bool, data: `[true,false,true]`, want: []byte{1, 0, 1}},
		{name: "UINT8", dt: runtime.Uint8, data: `[0,255,7]`, want: []byte{0, 255, 7}},
		{name: "UINT16", dt: runtime.Uint16, data: `[0,65535,-0]`, want: le(runtime.Uint16, 0, 65535, 0)},
		{name: "UINT32", dt: runtime.Uint32, data: `[0,4294967295,1]`, want: le(runtime.Uint32, 0, 4294967295, 1)},
		{name: "UINT64", dt: runtime.Uint64, data: `[0,18446744073709551615,1]`, want: u64(0, math.MaxUint64, 1)},
		{name: "INT8", dt: runtime.Int8, data: `[-128,127,0]`, want: le(runtime.Int8, -128, 127, 0)},
		{name: "INT16", dt: runtime.Int16, data: `[-32768,32767,-1]`, want: le(runtime.Int16, -32768, 32767, -1)},
		{name: "INT32", dt: runtime.Int32, data: `[-2147483648,2147483647,-1]`, want: le(runtime.Int32, math.MinInt32, math.MaxInt32, -1)},
		{name: "INT64", dt: runtime.Int64, data: `[-9223372036854775808,9223372036854775807,-1]`, want: i64(math.MinInt64, math.MaxInt64, -1)},
		{name: "FP16", dt: runtime.FP16, data: `[1.5,-2,65504]`, want: le(runtime.FP16, 1.5, -2, 65504)},
		{name: "FP32", dt: runtime.FP32, data: `[1.5,-0.1,3.4028235e38]`, want: le(runtime.FP32, 1.5, -0.1, math.MaxFloat32)},
		{name: "FP32 integers and exponents", dt: runtime.FP32, data: `[1,1e-7,-2E+3]`, want: le(runtime.FP32, 1, 1e-7, -2000)},
		{name: "FP64", dt: runtime.FP64, data: `[0.1,-1.5e-300,1.7976931348623157e308]`, want: le(runtime.FP64, 0.1, -1.5e-300, math.MaxFloat64)},
		{name: "BYTES", dt: runtime.Bytes, data: `["","héllo, 世界","a\"b\\\n"]`, strings: []string{"", "héllo, 世界", "a\"b\\\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inputs := []runtime.TensorInfo{info("in", tt.dt, -1)}
			body := fmt.Sprintf(`{"inputs":[{"name":"in","datatype":%q,"shape":[3],"data":%s}]}`, tt.dt, tt.data)
			req := mustDecode(t, []byte(body), -1, inputs, nil)
			got := req.Inputs[0]
			if got.Name != "in" || got.DataType != tt.dt || !slices.Equal(got.Shape, []int64{3}) {
				t.Fatalf("got tensor %q %s %v, want \"in\" %s [3]", got.Name, got.DataType, got.Shape, tt.dt)
			}
			if !bytes.Equal(got.Data, tt.want) {
				t.Errorf("got data %v, want %v", got.Data, tt.want)
			}
			if !slices.Equal(got.Strings, tt.strings) {
				t.Errorf("got strings %q, want %q", got.Strings, tt.strings)
			}
		})
	}
}

// responseToRequest turns an encoded response into the request that sends
// its outputs back as inputs, keeping binary data binary.
func responseToRequest(t *testing.T, resp []byte, jsonLen int) ([]byte, int) {
	t.Helper()
	header := resp
	var bin []byte
	if jsonLen >= 0 {
		header, bin = resp[:jsonLen], resp[jsonLen:]
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, header)
	}
	m["inputs"] = m["outputs"]
	delete(m, "outputs")
	req, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if jsonLen < 0 {
		return req, -1
	}
	return append(req, bin...), len(req)
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	tensors := []runtime.Tensor{
		{Name: "bool", DataType: runtime.Bool, Shape: []int64{2, 2}, Data: []byte{1, 0, 0, 1}},
		{Name: "uint8", DataType: runtime.Uint8, Shape: []int64{3}, Data: []byte{0, 128, 255}},
		{Name: "uint16", DataType: runtime.Uint16, Shape: []int64{3}, Data: le(runtime.Uint16, 0, 1, 65535)},
		{Name: "uint32", DataType: runtime.Uint32, Shape: []int64{3}, Data: le(runtime.Uint32, 0, 1, math.MaxUint32)},
		{Name: "uint64", DataType: runtime.Uint64, Shape: []int64{3}, Data: u64(0, 1<<63, math.MaxUint64)},
		{Name: "int8", DataType: runtime.Int8, Shape: []int64{3}, Data: le(runtime.Int8, -128, 0, 127)},
		{Name: "int16", DataType: runtime.Int16, Shape: []int64{3}, Data: le(runtime.Int16, -32768, 0, 32767)},
		{Name: "int32", DataType: runtime.Int32, Shape: []int64{3}, Data: le(runtime.Int32, math.MinInt32, 0, math.MaxInt32)},
		{Name: "int64", DataType: runtime.Int64, Shape: []int64{3}, Data: i64(math.MinInt64, 0, math.MaxInt64)},
		{Name: "fp16", DataType: runtime.FP16, Shape: []int64{4}, Data: le(runtime.FP16, 0.1, -65504, 6e-8, 1)},
		{Name: "fp32", DataType: runtime.FP32, Shape: []int64{2, 2}, Data: le(runtime.FP32, 0.1, -math.MaxFloat32, math.SmallestNonzeroFloat32, 1e10)},
		{Name: "fp64", DataType: runtime.FP64, Shape: []int64{4}, Data: le(runtime.FP64, 0.1, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.5e-7)},
		{Name: "bytes", DataType: runtime.Bytes, Shape: []int64{5}, Strings: []string{"", "héllo", "世界", "", "a\x00\"b\\"}},
		{Name: "scalar", DataType: runtime.FP32, Shape: []int64{}, Data: le(runtime.FP32, 42.5)},
		{Name: "empty", DataType: runtime.Int32, Shape: []int64{0, 3}, Data: []byte{}},
	}
	for _, mode := range []string{"json", "binary"} {
		for _, tensor := range tensors {
			t.Run(mode+"/"+tensor.Name, func(t *testing.T) {
				t.Parallel()
				inputs := []runtime.TensorInfo{{Name: tensor.Name, DataType: tensor.DataType, Shape: tensor.Shape}}
				resp, jsonLen := encodeResponse(nil, "m", 1, "", []runtime.Tensor{tensor}, []bool{mode == "binary"})
				if (jsonLen >= 0) != (mode == "binary") {
					t.Fatalf("got JSON length %d in %s mode", jsonLen, mode)
				}
				body, headerLen := responseToRequest(t, resp, jsonLen)
				req := mustDecode(t, body, headerLen, inputs, nil)
				got := req.Inputs[0]
				if got.DataType != tensor.DataType || !slices.Equal(got.Shape, tensor.Shape) {
					t.Fatalf("got %s %v, want %s %v", got.DataType, got.Shape, tensor.DataType, tensor.Shape)
				}
				if !bytes.Equal(got.Data, tensor.Data) || !slices.Equal(got.Strings, tensor.Strings) {
					t.Errorf("got data %v strings %q, want %v %q", got.Data, got.Strings, tensor.Data, tensor.Strings)
				}
			})
		}
	}
}

func TestDecodeNestedData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		model []int64
		shape string
		data  string
		want  []float64
	}{
		{name: "flat", model: []int64{2, 2}, shape: `[2,2]`, data: `[1,2,3,4]`, want: []float64{1, 2, 3, 4}},
		{name: "natural", model: []int64{2, 2}, shape: `[2,2]`, data: `[[1,2],[3,4]]`, want: []float64{1, 2, 3, 4}},
		{name: "rank 3", model: []int64{-1, 2, 2}, shape: `[2,2,2]`, data: `[[[1,2],[3,4]],[[5,6],[7,8]]]`, want: []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "ragged nesting is flattened", model: []int64{4}, shape: `[4]`, data: `[[1],2,[[3]],[],[4]]`, want: []float64{1, 2, 3, 4}},
		{name: "deeper than the shape", model: []int64{2}, shape: `[2]`, data: `[[[[1]]],[[[2]]]]`, want: []float64{1, 2}},
		{name: "zero elements", model: []int64{-1, 2}, shape: `[0,2]`, data: `[[],[]]`, want: []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inputs := []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: tt.model}}
			body := `{"inputs":[{"name":"x","datatype":"FP32","shape":` + tt.shape + `,"data":` + tt.data + `}]}`
			req := mustDecode(t, []byte(body), -1, inputs, nil)
			if want := le(runtime.FP32, tt.want...); !bytes.Equal(req.Inputs[0].Data, want) {
				t.Errorf("got %v, want %v", req.Inputs[0].Data, want)
			}
		})
	}
}

func TestDecodeScalar(t *testing.T) {
	t.Parallel()
	inputs := []runtime.TensorInfo{info("t", runtime.Int64)}
	tests := []struct {
		name      string
		body      []byte
		headerLen int
	}{
		{name: "json", body: []byte(`{"inputs":[{"name":"t","datatype":"INT64","shape":[],"data":[-7]}]}`), headerLen: -1},
		{name: "json nested", body: []byte(`{"inputs":[{"name":"t","datatype":"INT64","shape":[],"data":[[-7]]}]}`), headerLen: -1},
	}
	body, n := withBinary(`{"inputs":[{"name":"t","datatype":"INT64","shape":[],"parameters":{"binary_data_size":8}}]}`, i64(-7))
	tests = append(tests, struct {
		name      string
		body      []byte
		headerLen int
	}{name: "binary", body: body, headerLen: n})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := mustDecode(t, tt.body, tt.headerLen, inputs, nil)
			got := req.Inputs[0]
			if len(got.Shape) != 0 || !bytes.Equal(got.Data, i64(-7)) {
				t.Errorf("got shape %v data %v, want [] %v", got.Shape, got.Data, i64(-7))
			}
		})
	}
}

func TestDecodeBinaryBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		strs []string
	}{
		{name: "empty strings", strs: []string{"", "", ""}},
		{name: "non-ASCII", strs: []string{"héllo", "日本語", "🙂"}},
		{name: "raw bytes", strs: []string{"\xff\xfe", "\x00", "a"}},
		{name: "no elements", strs: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inputs := []runtime.TensorInfo{info("s", runtime.Bytes, -1)}
			bin := lenPrefixed(tt.strs...)
			header := fmt.Sprintf(`{"inputs":[{"name":"s","datatype":"BYTES","shape":[%d],"parameters":{"binary_data_size":%d}}]}`, len(tt.strs), len(bin))
			body, n := withBinary(header, bin)
			req := mustDecode(t, body, n, inputs, nil)
			if got := req.Inputs[0].Strings; !slices.Equal(got, tt.strs) {
				t.Errorf("got %q, want %q", got, tt.strs)
			}
			// The strings are copies: the body is reused after the request.
			clear(body)
			if got := req.Inputs[0].Strings; !slices.Equal(got, tt.strs) {
				t.Errorf("after the body was cleared got %q, want %q", got, tt.strs)
			}
		})
	}
}

func TestDecodeMixedJSONAndBinary(t *testing.T) {
	t.Parallel()
	inputs := []runtime.TensorInfo{info("a", runtime.Int32, 2), info("b", runtime.Bool, 3), info("c", runtime.FP64, -1)}
	// Binary inputs take the data in the order they appear in the JSON,
	// which need not be the model's.
	header := `{"inputs":[` +
		`{"name":"c","datatype":"FP64","shape":[1],"parameters":{"binary_data_size":8}},` +
		`{"name":"b","datatype":"BOOL","shape":[3],"data":[false,true,false]},` +
		`{"name":"a","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}}]}`
	body, n := withBinary(header, le(runtime.FP64, 2.5), le(runtime.Int32, 7, -8))
	req := mustDecode(t, body, n, inputs, nil)
	want := [][]byte{le(runtime.Int32, 7, -8), {0, 1, 0}, le(runtime.FP64, 2.5)}
	for i, w := range want {
		if got := req.Inputs[i]; got.Name != inputs[i].Name || !bytes.Equal(got.Data, w) {
			t.Errorf("input %d: got %q %v, want %q %v", i, got.Name, got.Data, inputs[i].Name, w)
		}
	}
}

func TestDecodeBinaryAlignment(t *testing.T) {
	t.Parallel()
	inputs := []runtime.TensorInfo{info("x", runtime.FP32, 2)}
	header := `{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}`
	for pad := range runtime.TensorAlign {
		t.Run(fmt.Sprintf("pad %d", pad), func(t *testing.T) {
			t.Parallel()
			// JSON allows trailing whitespace, which moves the binary part.
			h := header + strings.Repeat(" ", pad)
			buf := make([]byte, 0, 256) // 8-aligned by the allocator
			body, n := withBinary(h, le(runtime.FP32, 1, 2))
			body = append(buf, body...)
			req := mustDecode(t, body, n, inputs, nil)
			data := req.Inputs[0].Data
			if !bytes.Equal(data, le(runtime.FP32, 1, 2)) {
				t.Fatalf("got %v, want %v", data, le(runtime.FP32, 1, 2))
			}
			aligned := uintptr(unsafe.Pointer(&body[n]))%runtime.TensorAlign == 0
			aliased := &data[0] == &body[n]
			if aliased != aligned {
				t.Errorf("got aliased %v for an offset aligned %v, want them equal", aliased, aligned)
			}
			if a := uintptr(unsafe.Pointer(&data[0])) % runtime.TensorAlign; a != 0 {
				t.Errorf("data is %d bytes past a %d-byte boundary", a, runtime.TensorAlign)
			}
			if cap(data) != len(data) {
				t.Errorf("got cap %d, want %d so appends cannot write into the body", cap(data), len(data))
			}
		})
	}
}

func TestDecodeRequestFields(t *testing.T) {
	t.Parallel()
	valid := `{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}`
	tests := []struct {
		name string
		body string
		want inferRequest
	}{
		{
			name: "minimal",
			body: `{"inputs":[` + valid + `]}`,
		},
		{
			name: "all fields",
			body: `{"id":"req-1","model_name":"m","model_version":"2","parameters":{"binary_data_output":true,"timeout":1500,"priority":2,"custom":"x"},` +
				`"inputs":[` + valid + `],"outputs":[{"name":"z","parameters":{"binary_data":false}},{"name":"y"}]}`,
			want: inferRequest{ID: "req-1", BinaryOutput: true, Timeout: 1500, Priority: 2,
				Outputs: []requestedOutput{{Index: 1, Binary: 0}, {Index: 0, Binary: -1}}},
		},
		{
			name: "nulls are absent",
			body: `{"id":null,"parameters":null,"inputs":[` + valid + `],"outputs":null}`,
		},
		{
			name: "empty outputs means all",
			body: `{"inputs":[` + valid + `],"outputs":[]}`,
		},
		{
			name: "binary_data true and unknown output parameters",
			body: `{"inputs":[` + valid + `],"outputs":[{"name":"y","parameters":{"binary_data":true,"other":1}}]}`,
			want: inferRequest{Outputs: []requestedOutput{{Index: 0, Binary: 1}}},
		},
		{
			name: "escaped id",
			body: `{"id":"a\"\u00e9","inputs":[` + valid + `]}`,
			want: inferRequest{ID: "a\"é"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := mustDecode(t, []byte(tt.body), -1, testInputs(), testOutputs())
			if req.ID != tt.want.ID || req.BinaryOutput != tt.want.BinaryOutput || req.Timeout != tt.want.Timeout || req.Priority != tt.want.Priority {
				t.Errorf("got id %q binary %v timeout %d priority %d, want %q %v %d %d",
					req.ID, req.BinaryOutput, req.Timeout, req.Priority, tt.want.ID, tt.want.BinaryOutput, tt.want.Timeout, tt.want.Priority)
			}
			if !slices.Equal(req.Outputs, tt.want.Outputs) {
				t.Errorf("got outputs %+v, want %+v", req.Outputs, tt.want.Outputs)
			}
			if len(req.Inputs) != 2 || !bytes.Equal(req.Inputs[0].Data, le(runtime.FP32, 1, 2, 3, 4)) || !slices.Equal(req.Inputs[1].Strings, []string{"a"}) {
				t.Errorf("got inputs %+v", req.Inputs)
			}
		})
	}
}

func TestDecodeReuse(t *testing.T) {
	t.Parallel()
	var p fastjson.Parser
	var req inferRequest
	first := []byte(`{"id":"1","parameters":{"timeout":5},"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"data":["one"]},` +
		`{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"outputs":[{"name":"y"}]}`)
	if err := decodeRequest(&p, first, -1, testInputs(), testOutputs(), &req); err != nil {
		t.Fatal(err)
	}
	strs := req.Inputs[1].Strings
	second := []byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[0,4],"data":[]},{"name":"s","datatype":"BYTES","shape":[2],"data":["two","three"]}]}`)
	if err := decodeRequest(&p, second, -1, testInputs(), testOutputs(), &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != "" || req.Timeout != 0 || len(req.Outputs) != 0 {
		t.Errorf("got id %q timeout %d outputs %v left from the first request", req.ID, req.Timeout, req.Outputs)
	}
	if !slices.Equal(req.Inputs[1].Strings, []string{"two", "three"}) || !slices.Equal(req.Inputs[0].Shape, []int64{0, 4}) {
		t.Errorf("got inputs %+v", req.Inputs)
	}
	// The first request's strings are copies, unaffected by the parser's
	// and the body's reuse.
	clear(first)
	if !slices.Equal(strs, []string{"one"}) {
		t.Errorf("got first strings %q, want [\"one\"]", strs)
	}
	req.reset()
	if len(req.Inputs) != 0 || req.Inputs[:cap(req.Inputs)][0].Data != nil {
		t.Errorf("reset kept tensors: %+v", req.Inputs[:cap(req.Inputs)])
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	// x FP32 [-1,4] and s BYTES [-1] in, y FP32 [-1,4] and z INT64 [-1] out.
	x := `{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}`
	s := `{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}`
	xs := x + "," + s
	typed := []runtime.TensorInfo{info("b", runtime.Bool, 2), info("n", runtime.Int8, -1), info("u", runtime.Uint8, -1)}
	hostile := `{"inputs":[{"name":"x","datatype":"FP32","shape":[1000000000,4],"data":[]}]}`

	binBody := func(header string, bin ...[]byte) func() ([]byte, int) {
		return func() ([]byte, int) { return withBinary(header, bin...) }
	}
	tests := []struct {
		name   string
		body   string
		binary func() ([]byte, int) // body and header length, instead of body
		hl     *int                 // header length for body, instead of -1
		inputs []runtime.TensorInfo // instead of testInputs()
		want   string
		// withLen: want has a %d for the body's length.
		withLen bool
	}{
		{name: "empty body", body: ``, want: `malformed JSON: empty request`},
		{name: "truncated JSON", body: `{"inputs":[`, want: `malformed JSON: cannot parse object: cannot parse object value: cannot parse array: missing ']'; unparsed tail: ""`},
		{name: "trailing garbage", body: `{"inputs":[]} x`, want: `malformed JSON: unexpected tail: "x"`},
		{name: "not an object", body: `[1,2]`, want: `request must be a JSON object, got array`},
		{name: "no inputs", body: `{"model_name":"m"}`, want: `missing "inputs"`},
		{name: "inputs not an array", body: `{"inputs":{}}`, want: `"inputs" must be an array, got object`},
		{name: "empty inputs", body: `{"inputs":[]}`, want: `"inputs" must not be empty`},
		{name: "input not an object", body: `{"inputs":[1]}`, want: `inputs[0] must be a JSON object, got 1`},
		{name: "input without name", body: `{"inputs":[{"shape":[1]}]}`, want: `inputs[0]: missing "name"`},
		{name: "input name not a string", body: `{"inputs":[` + x + `,{"name":5}]}`, want: `inputs[1]: "name" must be a string, got 5`},
		{name: "unknown input", body: `{"inputs":[{"name":"foo","datatype":"FP32","shape":[1],"data":[1]}]}`, want: `unknown input "foo"`},
		{name: "input twice", body: `{"inputs":[` + x + "," + x + `]}`, want: `input "x" given twice`},
		{name: "missing input", body: `{"inputs":[` + x + `]}`, want: `missing input "s"`},
		{name: "no datatype", body: `{"inputs":[{"name":"x","shape":[1,4],"data":[1,2,3,4]}]}`, want: `input "x": missing "datatype"`},
		{name: "datatype not a string", body: `{"inputs":[{"name":"x","datatype":11,"shape":[1,4]}]}`, want: `input "x": "datatype" must be a string, got 11`},
		{name: "unknown datatype", body: `{"inputs":[{"name":"x","datatype":"fp32","shape":[1,4]}]}`, want: `input "x": unknown datatype "fp32", expected FP32`},
		{name: "wrong datatype", body: `{"inputs":[{"name":"x","datatype":"INT64","shape":[1,4],"data":[1,2,3,4]}]}`, want: `input "x": expected datatype FP32, got INT64`},
		{name: "no shape", body: `{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3,4]}]}`, want: `input "x": missing "shape"`},
		{name: "shape not an array", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":"1,4"}]}`, want: `input "x": "shape" must be an array, got "1,4"`},
		{name: "negative dimension", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,-4]}]}`, want: `input "x": shape dimension 1 must be a non-negative integer, got -4`},
		{name: "fractional dimension", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1.5,4]}]}`, want: `input "x": shape dimension 0 must be a non-negative integer, got 1.5`},
		{name: "wrong rank", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[8],"data":[1,2,3,4,5,6,7,8]}]}`, want: `input "x": expected shape [-1,4], got [8]`},
		{name: "wrong fixed dimension", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,3],"data":[1,2,3,4,5,6]}]}`, want: `input "x": expected shape [-1,4], got [2,3]`},
		{name: "too few elements", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,4],"data":[1,2,3,4,5,6]}]}`, want: `input "x": shape [2,4] needs 8 elements, got 6`},
		{name: "too many nested elements", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[[1,2,3,4],[5]]}]}`, want: `input "x": shape [1,4] needs 4 elements, got 5`},
		{name: "hostile shape", body: hostile, want: fmt.Sprintf(`input "x": shape [1000000000,4] has too many elements for a request body of %d bytes`, len(hostile))},
		{name: "overflowing shape", body: `{"inputs":[{"name":"s","datatype":"BYTES","shape":[9223372036854775807],"data":[]}]}`, want: `input "s": shape [9223372036854775807] has too many elements for a request body of %d bytes`, withLen: true},
		{name: "data not an array", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":5}]}`, want: `input "x": "data" must be an array, got 5`},
		{name: "string in FP32 data", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,"3",4]}]}`, want: `input "x": element 2 must be a number, got "3"`},
		{name: "null in FP32 data", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[[1,2],[3,null]]}]}`, want: `input "x": element 3 must be a number, got null`},
		{name: "number in BYTES data", body: `{"inputs":[` + x + `,{"name":"s","datatype":"BYTES","shape":[2],"data":["a",5]}]}`, want: `input "s": element 1 must be a string, got 5`},
		{name: "number in BOOL data", body: `{"inputs":[{"name":"b","datatype":"BOOL","shape":[2],"data":[true,1]}]}`, inputs: typed, want: `input "b": element 1 must be true or false, got 1`},
		{name: "INT8 out of range", body: `{"inputs":[{"name":"n","datatype":"INT8","shape":[2],"data":[1,128]}]}`, inputs: typed, want: `input "n": element 1 is out of range for INT8, got 128`},
		{name: "fractional INT8", body: `{"inputs":[{"name":"n","datatype":"INT8","shape":[2],"data":[1,1.5]}]}`, inputs: typed, want: `input "n": element 1 must be an integer, got 1.5`},
		{name: "exponent INT8", body: `{"inputs":[{"name":"n","datatype":"INT8","shape":[1],"data":[1e2]}]}`, inputs: typed, want: `input "n": element 0 must be an integer, got 1e2`},
		{name: "string INT8", body: `{"inputs":[{"name":"n","datatype":"INT8","shape":[1],"data":["1"]}]}`, inputs: typed, want: `input "n": element 0 must be an integer, got "1"`},
		{name: "negative UINT8", body: `{"inputs":[{"name":"u","datatype":"UINT8","shape":[1],"data":[-1]}]}`, inputs: typed, want: `input "u": element 0 is out of range for UINT8, got -1`},
		{name: "UINT8 out of range", body: `{"inputs":[{"name":"u","datatype":"UINT8","shape":[1],"data":[256]}]}`, inputs: typed, want: `input "u": element 0 is out of range for UINT8, got 256`},
		{name: "no data", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4]}]}`, want: `input "x": missing "data" or binary_data_size`},
		{name: "input parameters not an object", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":[]}]}`, want: `input "x": "parameters" must be a JSON object, got array`},
		{name: "shared memory", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"shared_memory_region":"r","shared_memory_byte_size":16}}]}`, want: `input "x": shared memory is not supported`},
		{name: "binary without header", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}]}`, want: `input "x": binary_data_size needs the Inference-Header-Content-Length header`},
		{
			name:   "data and binary",
			binary: binBody(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4],"parameters":{"binary_data_size":16}}]}`, le(runtime.FP32, 1, 2, 3, 4)),
			want:   `input "x": has both "data" and binary_data_size`,
		},
		{
			name:   "negative binary size",
			binary: binBody(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":-16}}]}`, le(runtime.FP32, 1, 2, 3, 4)),
			want:   `input "x": binary_data_size must be a non-negative integer, got -16`,
		},
		{
			name:   "binary size past the body",
			binary: binBody(`{"inputs":[{"name":"x","datatype":"FP32","shape":[2,4],"parameters":{"binary_data_size":32}}]}`, le(runtime.FP32, 1, 2, 3, 4)),
			want:   `input "x": binary_data_size 32 exceeds the 16 bytes of binary data left`,
		},
		{
			name:   "binary shape larger than the body",
			binary: binBody(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1000000000,4],"parameters":{"binary_data_size":16}}]}`, le(runtime.FP32, 1, 2, 3, 4)),
			want:   `input "x": shape [1000000000,4] of FP32 needs 16000000000 bytes, got binary_data_size 16`,
		},
		{
			name:   "binary size not the shape's",
			binary: binBody(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":12}}]}`, le(runtime.FP32, 1, 2, 3)),
			want:   `input "x": shape [1,4] of FP32 needs 16 bytes, got binary_data_size 12`,
		},
		{
			name:    "hostile binary shape",
			binary:  binBody(`{"inputs":[{"name":"x","datatype":"FP32","shape":[4611686018427387904,4],"parameters":{"binary_data_size":16}}]}`, le(runtime.FP32, 1, 2, 3, 4)),
			want:    `input "x": shape [4611686018427387904,4] has too many elements for a request body of %d bytes`,
			withLen: true,
		},
		{
			name:   "binary data left over",
			binary: binBody(`{"inputs":[`+s+`,{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}]}`, le(runtime.FP32, 1, 2, 3, 4, 5)),
			want:   `4 bytes of binary data left after the inputs`,
		},
		{
			name:   "binary data without binary inputs",
			binary: binBody(`{"inputs":[`+xs+`]}`, []byte{0}),
			want:   `1 bytes of binary data left after the inputs`,
		},
		{
			name:   "BYTES length past the data",
			binary: binBody(`{"inputs":[`+x+`,{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":9}}]}`, lenPrefixed("a"), []byte{9, 0, 0, 0}),
			want:   `input "s": binary data of 9 bytes ends inside element 1`,
		},
		{
			name:   "BYTES length prefix cut",
			binary: binBody(`{"inputs":[`+x+`,{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":7}}]}`, lenPrefixed("a"), []byte{0, 0}),
			want:   `input "s": shape [2] of BYTES needs at least 8 bytes, got binary_data_size 7`,
		},
		{
			name:   "BYTES length prefix cut after an empty string",
			binary: binBody(`{"inputs":[`+x+`,{"name":"s","datatype":"BYTES","shape":[3],"parameters":{"binary_data_size":14}}]}`, lenPrefixed("", "aaaaaa")),
			want:   `input "s": binary data of 14 bytes ends inside element 2`,
		},
		{
			name:   "BYTES data left over",
			binary: binBody(`{"inputs":[`+x+`,{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}]}`, lenPrefixed("a"), []byte{0, 0}),
			want:   `input "s": binary data has 2 bytes left after 1 elements`,
		},
		{
			name:   "BOOL byte not 0 or 1",
			binary: binBody(`{"inputs":[{"name":"b","datatype":"BOOL","shape":[2],"parameters":{"binary_data_size":2}}]}`, []byte{1, 2}),
			inputs: typed,
			want:   `input "b": element 1 must be 0 or 1, got 2`,
		},
		{name: "header length past the body", body: `{"inputs":[]}`, hl: new(100), want: `header Inference-Header-Content-Length is 100, outside the body of 13 bytes`},
		{name: "negative header length", body: `{"inputs":[]}`, hl: new(-2), want: `header Inference-Header-Content-Length is -2, outside the body of 13 bytes`},
		{name: "zero header length", body: `{"inputs":[]}`, hl: new(0), want: `malformed JSON: empty request`},
		{name: "id not a string", body: `{"id":42,"inputs":[` + xs + `]}`, want: `"id" must be a string, got 42`},
		{name: "parameters not an object", body: `{"parameters":[],"inputs":[` + xs + `]}`, want: `"parameters" must be a JSON object, got array`},
		{name: "binary_data_output not a boolean", body: `{"parameters":{"binary_data_output":"yes"},"inputs":[` + xs + `]}`, want: `parameter "binary_data_output" must be a boolean, got "yes"`},
		{name: "negative timeout", body: `{"parameters":{"timeout":-1},"inputs":[` + xs + `]}`, want: `parameter "timeout" must be a non-negative integer, got -1`},
		{name: "fractional priority", body: `{"parameters":{"priority":1.5},"inputs":[` + xs + `]}`, want: `parameter "priority" must be a non-negative integer, got 1.5`},
		{name: "outputs not an array", body: `{"inputs":[` + xs + `],"outputs":{"name":"y"}}`, want: `"outputs" must be an array, got object`},
		{name: "output not an object", body: `{"inputs":[` + xs + `],"outputs":["y"]}`, want: `outputs[0] must be a JSON object, got "y"`},
		{name: "output without name", body: `{"inputs":[` + xs + `],"outputs":[{"parameters":{}}]}`, want: `outputs[0]: missing "name"`},
		{name: "output name not a string", body: `{"inputs":[` + xs + `],"outputs":[{"name":["y"]}]}`, want: `outputs[0]: "name" must be a string, got array`},
		{name: "unknown output", body: `{"inputs":[` + xs + `],"outputs":[{"name":"y"},{"name":"w"}]}`, want: `unknown output "w"`},
		{name: "output twice", body: `{"inputs":[` + xs + `],"outputs":[{"name":"y"},{"name":"z"},{"name":"y"}]}`, want: `output "y" given twice`},
		{name: "classification", body: `{"inputs":[` + xs + `],"outputs":[{"name":"y","parameters":{"classification":3}}]}`, want: `output "y": classification extension is not supported`},
		{name: "output shared memory", body: `{"inputs":[` + xs + `],"outputs":[{"name":"y","parameters":{"shared_memory_region":"r"}}]}`, want: `output "y": shared memory is not supported`},
		{name: "output parameters not an object", body: `{"inputs":[` + xs + `],"outputs":[{"name":"y","parameters":true}]}`, want: `output "y": "parameters" must be a JSON object, got true`},
		{name: "binary_data not a boolean", body: `{"inputs":[` + xs + `],"outputs":[{"name":"z","parameters":{"binary_data":"true"}}]}`, want: `output "z": parameter "binary_data" must be a boolean, got "true"`},
		{name: "long value is cut", body: `{"id":` + strings.Repeat("1", 70) + `,"inputs":[` + xs + `]}`, want: `"id" must be a string, got ` + strings.Repeat("1", 64) + `...`},
		{name: "long name is cut", body: `{"inputs":[{"name":"` + strings.Repeat("n", 70) + `"}]}`, want: `unknown input "` + strings.Repeat("n", 64) + `"...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, hl := []byte(tt.body), -1
			if tt.binary != nil {
				body, hl = tt.binary()
			}
			if tt.hl != nil {
				hl = *tt.hl
			}
			inputs := tt.inputs
			if inputs == nil {
				inputs = testInputs()
			}
			want := tt.want
			if tt.withLen {
				want = fmt.Sprintf(want, len(body))
			}
			_, err := decode(t, body, hl, inputs, testOutputs())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v (%T), want an *Error", err, err)
			}
			if e.Status != http.StatusBadRequest || e.Msg != want {
				t.Errorf("got %d %q\nwant %d %q", e.Status, e.Msg, http.StatusBadRequest, want)
			}
		})
	}
}

func TestDecodeAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts the whole process's allocations.
	body := fp32Request(256)
	inputs := []runtime.TensorInfo{info("x", runtime.FP32, -1, 256)}
	outputs := []runtime.TensorInfo{info("y", runtime.FP32, -1, 10)}
	var p fastjson.Parser
	var req inferRequest
	allocs := testing.AllocsPerRun(200, func() {
		if err := decodeRequest(&p, body, -1, inputs, outputs, &req); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("decoding a 256-element FP32 JSON request allocates %v times", allocs)
	// The one-pass decoder writes into the pooled request's buffers: a
	// request that repeats allocates nothing.
	if allocs > 0 {
		t.Errorf("got %v allocations, want none", allocs)
	}
}

// fp32Request returns a JSON request with one FP32 input x of shape [1,n].
func fp32Request(n int) []byte {
	return fp32RequestWith(n, func(b []byte, f float32) []byte { return fmt.Appendf(b, "%g", f) })
}

// fp32RequestWith is fp32Request with each element written by appendFloat.
func fp32RequestWith(n int, appendFloat func([]byte, float32) []byte) []byte {
	b := []byte(`{"id":"","inputs":[{"name":"x","datatype":"FP32","shape":[1,`)
	b = fmt.Appendf(b, "%d", n)
	b = append(b, `],"data":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, float32(i)*0.37-40.125)
	}
	return append(b, `]}],"outputs":[{"name":"y"}]}`...)
}

func TestEncodeResponse(t *testing.T) {
	t.Parallel()
	y := runtime.Tensor{Name: "y", DataType: runtime.FP32, Shape: []int64{2}, Data: le(runtime.FP32, 1.5, -0.25)}
	s := runtime.Tensor{Name: "s", DataType: runtime.Bytes, Shape: []int64{2}, Strings: []string{"a", "é\n"}}
	b := runtime.Tensor{Name: "b", DataType: runtime.Bool, Shape: []int64{1, 1}, Data: []byte{1}}
	tests := []struct {
		name    string
		id      string
		outputs []runtime.Tensor
		binary  []bool
		json    string
		bin     []byte
	}{
		{
			name:    "json",
			id:      "42",
			outputs: []runtime.Tensor{y, s, b},
			json: `{"model_name":"m","model_version":"3","id":"42","outputs":[` +
				`{"name":"y","datatype":"FP32","shape":[2],"data":[1.5,-0.25]},` +
				`{"name":"s","datatype":"BYTES","shape":[2],"data":["a","é\n"]},` +
				`{"name":"b","datatype":"BOOL","shape":[1,1],"data":[true]}]}`,
		},
		{
			name:    "binary and json",
			outputs: []runtime.Tensor{y, s, b},
			binary:  []bool{true, false, true},
			json: `{"model_name":"m","model_version":"3","outputs":[` +
				`{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},` +
				`{"name":"s","datatype":"BYTES","shape":[2],"data":["a","é\n"]},` +
				`{"name":"b","datatype":"BOOL","shape":[1,1],"parameters":{"binary_data_size":1}}]}`,
			bin: append(le(runtime.FP32, 1.5, -0.25), 1),
		},
		{
			name:    "binary BYTES",
			outputs: []runtime.Tensor{s},
			binary:  []bool{true},
			json: `{"model_name":"m","model_version":"3","outputs":[` +
				`{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":12}}]}`,
			bin: lenPrefixed("a", "é\n"),
		},
		{
			name:    "scalar and empty",
			outputs: []runtime.Tensor{{Name: "c", DataType: runtime.Int64, Shape: []int64{}, Data: i64(-3)}, {Name: "e", DataType: runtime.FP64, Shape: []int64{0}, Data: nil}},
			json: `{"model_name":"m","model_version":"3","outputs":[` +
				`{"name":"c","datatype":"INT64","shape":[],"data":[-3]},{"name":"e","datatype":"FP64","shape":[0],"data":[]}]}`,
		},
		{
			name:    "no outputs",
			json:    `{"model_name":"m","model_version":"3","outputs":[]}`,
			outputs: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prefix := []byte("kept")
			got, jsonLen := encodeResponse(prefix, "m", 3, tt.id, tt.outputs, tt.binary)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("got %q, want it to start with the buffer given", got)
			}
			got = got[len(prefix):]
			wantLen := -1
			if tt.bin != nil {
				wantLen = len(tt.json)
			}
			if jsonLen != wantLen {
				t.Errorf("got JSON length %d, want %d", jsonLen, wantLen)
			}
			want := append([]byte(tt.json), tt.bin...)
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
			if !json.Valid([]byte(tt.json)) {
				t.Errorf("the JSON part is not valid JSON")
			}
		})
	}
}

func TestEncodeResponseDataTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tensor runtime.Tensor
		data   string
	}{
		{name: "BOOL", tensor: runtime.Tensor{DataType: runtime.Bool, Data: []byte{0, 1, 2}}, data: `[false,true,true]`},
		{name: "UINT8", tensor: runtime.Tensor{DataType: runtime.Uint8, Data: []byte{0, 255}}, data: `[0,255]`},
		{name: "UINT16", tensor: runtime.Tensor{DataType: runtime.Uint16, Data: le(runtime.Uint16, 0, 65535)}, data: `[0,65535]`},
		{name: "UINT32", tensor: runtime.Tensor{DataType: runtime.Uint32, Data: le(runtime.Uint32, 0, math.MaxUint32)}, data: `[0,4294967295]`},
		{name: "UINT64", tensor: runtime.Tensor{DataType: runtime.Uint64, Data: u64(0, math.MaxUint64)}, data: `[0,18446744073709551615]`},
		{name: "INT8", tensor: runtime.Tensor{DataType: runtime.Int8, Data: le(runtime.Int8, -128, 127)}, data: `[-128,127]`},
		{name: "INT16", tensor: runtime.Tensor{DataType: runtime.Int16, Data: le(runtime.Int16, -32768, 32767)}, data: `[-32768,32767]`},
		{name: "INT32", tensor: runtime.Tensor{DataType: runtime.Int32, Data: le(runtime.Int32, math.MinInt32, math.MaxInt32)}, data: `[-2147483648,2147483647]`},
		{name: "INT64", tensor: runtime.Tensor{DataType: runtime.Int64, Data: i64(math.MinInt64, math.MaxInt64)}, data: `[-9223372036854775808,9223372036854775807]`},
		{name: "FP16", tensor: runtime.Tensor{DataType: runtime.FP16, Data: le(runtime.FP16, 0.1, -65504, 1)}, data: `[0.099975586,-65504,1]`},
		{name: "FP32", tensor: runtime.Tensor{DataType: runtime.FP32, Data: le(runtime.FP32, 0.1, 1e-7, 1e6, math.MaxFloat32)}, data: `[0.1,1e-07,1e+06,3.4028235e+38]`},
		{name: "FP64", tensor: runtime.Tensor{DataType: runtime.FP64, Data: le(runtime.FP64, 0.1, 1.0/3, -5e-324)}, data: `[0.1,0.3333333333333333,-5e-324]`},
		{name: "BYTES", tensor: runtime.Tensor{DataType: runtime.Bytes, Strings: []string{"", "x"}}, data: `["","x"]`},
		{name: "FP32 non-finite", tensor: runtime.Tensor{DataType: runtime.FP32, Data: le(runtime.FP32, math.NaN(), math.Inf(1), math.Inf(-1))}, data: `[NaN,Infinity,-Infinity]`},
		{name: "FP16 non-finite", tensor: runtime.Tensor{DataType: runtime.FP16, Data: le(runtime.FP16, math.NaN(), math.Inf(1), math.Inf(-1))}, data: `[NaN,Infinity,-Infinity]`},
		{name: "FP64 non-finite", tensor: runtime.Tensor{DataType: runtime.FP64, Data: le(runtime.FP64, math.NaN(), math.Inf(1), math.Inf(-1))}, data: `[NaN,Infinity,-Infinity]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.tensor.Name = "t"
			tt.tensor.Shape = []int64{int64(max(len(tt.tensor.Strings), len(tt.tensor.Data)/max(1, tt.tensor.DataType.Size())))}
			got, jsonLen := encodeResponse(nil, "m", 1, "", []runtime.Tensor{tt.tensor}, nil)
			want := fmt.Sprintf(`{"model_name":"m","model_version":"1","outputs":[{"name":"t","datatype":"%s","shape":%s,"data":%s}]}`,
				tt.tensor.DataType, runtime.FormatShape(tt.tensor.Shape), tt.data)
			if string(got) != want || jsonLen != -1 {
				t.Errorf("got %s (%d)\nwant %s (-1)", got, jsonLen, want)
			}
			if !strings.Contains(tt.name, "non-finite") && !json.Valid(got) {
				t.Errorf("got invalid JSON %s", got)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: `""`},
		{name: "plain", in: "hello world", want: `"hello world"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "short escapes", in: "\n\r\t\b\f", want: `"\n\r\t\b\f"`},
		{name: "other control characters", in: "\x00\x01\x1f\x7f", want: `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{name: "non-ASCII", in: "héllo 世界 🙂", want: `"héllo 世界 🙂"`},
		{name: "invalid byte", in: "a\xffb", want: `"a\ufffdb"`},
		{name: "truncated sequence", in: "a\xe4\xb8", want: `"a\ufffd\ufffd"`},
		{name: "HTML is not escaped", in: "<a&b>", want: `"<a&b>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := appendJSONString([]byte("x"), tt.in)
			if string(got) != "x"+tt.want {
				t.Errorf("got %s, want x%s", got, tt.want)
			}
			var back string
			if err := json.Unmarshal(got[1:], &back); err != nil {
				t.Fatalf("got invalid JSON %s: %v", got[1:], err)
			}
			if want := string([]rune(tt.in)); back != want {
				t.Errorf("got %q back, want %q", back, want)
			}
		})
	}
}
