package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ptr[T any](v T) *T { return &v }

func TestEncodeRequestJSON(t *testing.T) {
	t.Parallel()
	one := func(dt string, shape []int64, data any, want string) (*Request, string) {
		return &Request{Inputs: []Tensor{{Name: "x", Datatype: dt, Shape: shape, Data: data}}},
			`{"inputs":[{"name":"x","shape":` + shapeJSON(shape) + `,"datatype":"` + dt + `","data":` + want + `}]}`
	}
	type testCase struct {
		name string
		req  *Request
		want string
	}
	var tests []testCase
	add := func(name string, req *Request, want string) {
		tests = append(tests, testCase{name, req, want})
	}
	for _, c := range []struct {
		name  string
		shape []int64
		data  any
		want  string
	}{
		{"BOOL", []int64{2}, []bool{true, false}, `[true,false]`},
		// encoding/json would write a []byte as base64: UINT8 must stay numbers.
		{"UINT8", []int64{3}, []uint8{0, 1, 255}, `[0,1,255]`},
		{"UINT16", []int64{2}, []uint16{0, 65535}, `[0,65535]`},
		{"UINT32", []int64{1}, []uint32{4294967295}, `[4294967295]`},
		{"UINT64", []int64{1}, []uint64{math.MaxUint64}, `[18446744073709551615]`},
		{"INT8", []int64{2}, []int8{-128, 127}, `[-128,127]`},
		{"INT16", []int64{1}, []int16{-32768}, `[-32768]`},
		{"INT32", []int64{2, 1}, []int32{-2147483648, 5}, `[-2147483648,5]`},
		{"INT64", []int64{1}, []int64{math.MinInt64}, `[-9223372036854775808]`},
		{"FP16", []int64{2}, []float32{1.5, -2}, `[1.5,-2]`},
		{"FP32", []int64{2}, []float32{0.1, 3}, `[0.1,3]`},
		{"FP64", []int64{2}, []float64{0.1, 1e300}, `[0.1,1e+300]`},
		{"BYTES", []int64{2}, []string{"ab", "é"}, `["ab","é"]`},
		{"BYTES", []int64{1}, [][]byte{[]byte("hi")}, `["hi"]`},
	} {
		req, want := one(c.name, c.shape, c.data, c.want)
		add(fmt.Sprintf("%s %T", c.name, c.data), req, want)
	}
	req, want := one("INT32", nil, []int32{7}, `[7]`)
	add("scalar has shape []", req, want)
	req, want = one("FP32", []int64{0, 3}, []float32(nil), `[]`)
	add("empty tensor has data []", req, want)
	add("id, parameters and outputs", &Request{
		ID:           "r1",
		Inputs:       []Tensor{{Name: "x", Datatype: "INT64", Shape: []int64{1}, Data: []int64{1}}},
		Outputs:      []RequestedOutput{{Name: "a"}, {Name: "b", Binary: ptr(false)}, {Name: "c", Binary: ptr(true)}},
		BinaryOutput: true,
		Parameters:   map[string]any{"timeout": 5, "priority": "high"},
	}, `{"id":"r1","parameters":{"binary_data_output":true,"priority":"high","timeout":5},`+
		`"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}],`+
		`"outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":false}},{"name":"c","parameters":{"binary_data":true}}]}`)
	add("no inputs", &Request{}, `{"inputs":[]}`)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, headerLen, err := EncodeRequest(tt.req)
			if err != nil {
				t.Fatalf("EncodeRequest: %v", err)
			}
			if headerLen != -1 {
				t.Errorf("headerLen = %d, want -1", headerLen)
			}
			if string(body) != tt.want {
				t.Errorf("body:\ngot  %s\nwant %s", body, tt.want)
			}
		})
	}
}

func TestEncodeRequestLeavesParameters(t *testing.T) {
	t.Parallel()
	params := map[string]any{"timeout": 5}
	if _, _, err := EncodeRequest(&Request{BinaryOutput: true, Parameters: params}); err != nil {
		t.Fatalf("EncodeRequest: %v", err)
	}
	if len(params) != 1 {
		t.Errorf("caller's parameters changed: %v", params)
	}
}

func shapeJSON(shape []int64) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func TestEncodeRequestBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Tensor
		want []byte
	}{
		{"BOOL", Tensor{Datatype: "BOOL", Shape: []int64{3}, Data: []bool{true, false, true}}, []byte{1, 0, 1}},
		{"UINT8", Tensor{Datatype: "UINT8", Shape: []int64{2}, Data: []uint8{7, 255}}, []byte{7, 255}},
		{"INT8", Tensor{Datatype: "INT8", Shape: []int64{2}, Data: []int8{-1, 2}}, []byte{0xff, 2}},
		{"UINT16", Tensor{Datatype: "UINT16", Shape: []int64{1}, Data: []uint16{0x0102}}, []byte{2, 1}},
		{"INT16", Tensor{Datatype: "INT16", Shape: []int64{1}, Data: []int16{-2}}, []byte{0xfe, 0xff}},
		{"UINT32", Tensor{Datatype: "UINT32", Shape: []int64{1}, Data: []uint32{0x01020304}}, []byte{4, 3, 2, 1}},
		{"INT32", Tensor{Datatype: "INT32", Shape: []int64{2}, Data: []int32{-1, 1}}, []byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}},
		{"UINT64", Tensor{Datatype: "UINT64", Shape: []int64{1}, Data: []uint64{0x0102030405060708}}, []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{"INT64", Tensor{Datatype: "INT64", Shape: []int64{1}, Data: []int64{-2}}, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		// FP16 bits: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 (max) = 0x7bff.
		{"FP16", Tensor{Datatype: "FP16", Shape: []int64{3}, Data: []float32{1, -2, 65504}}, []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b}},
		{"FP16 NaN and Inf", Tensor{Datatype: "FP16", Shape: []int64{2}, Data: []float32{float32(math.Inf(1)), float32(math.Inf(-1))}}, []byte{0x00, 0x7c, 0x00, 0xfc}},
		// 1.0f = 0x3f800000.
		{"FP32", Tensor{Datatype: "FP32", Shape: []int64{2}, Data: []float32{1, float32(math.Inf(-1))}}, []byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xff}},
		// 1.0 = 0x3ff0000000000000.
		{"FP64", Tensor{Datatype: "FP64", Shape: []int64{1}, Data: []float64{1}}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"BYTES string", Tensor{Datatype: "BYTES", Shape: []int64{3}, Data: []string{"ab", "", "\xff"}},
			[]byte{2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0, 1, 0, 0, 0, 0xff}},
		{"BYTES []byte", Tensor{Datatype: "BYTES", Shape: []int64{1, 1}, Data: [][]byte{{0, 1, 2}}}, []byte{3, 0, 0, 0, 0, 1, 2}},
		{"empty", Tensor{Datatype: "FP32", Shape: []int64{0}, Data: []float32{}}, []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			in.Name, in.Binary = "x", true
			body, headerLen, err := EncodeRequest(&Request{Inputs: []Tensor{in}})
			if err != nil {
				t.Fatalf("EncodeRequest: %v", err)
			}
			wantHeader := fmt.Sprintf(`{"inputs":[{"name":"x","shape":%s,"datatype":"%s","parameters":{"binary_data_size":%d}}]}`,
				shapeJSON(in.Shape), in.Datatype, len(tt.want))
			if headerLen != len(wantHeader) {
				t.Fatalf("headerLen = %d, want %d (body %q)", headerLen, len(wantHeader), body)
			}
			if got := string(body[:headerLen]); got != wantHeader {
				t.Errorf("header:\ngot  %s\nwant %s", got, wantHeader)
			}
			if got := body[headerLen:]; !bytes.Equal(got, tt.want) {
				t.Errorf("binary data:\ngot  % x\nwant % x", got, tt.want)
			}
		})
	}
}

func TestEncodeRequestMixed(t *testing.T) {
	t.Parallel()
	req := &Request{Inputs: []Tensor{
		{Name: "a", Datatype: "INT16", Shape: []int64{1}, Data: []int16{1}, Binary: true},
		{Name: "b", Datatype: "FP32", Shape: []int64{1}, Data: []float32{2}},
		{Name: "c", Datatype: "BYTES", Shape: []int64{1}, Data: []string{"z"}, Binary: true},
	}}
	body, headerLen, err := EncodeRequest(req)
	if err != nil {
		t.Fatalf("EncodeRequest: %v", err)
	}
	wantHeader := `{"inputs":[` +
		`{"name":"a","shape":[1],"datatype":"INT16","parameters":{"binary_data_size":2}},` +
		`{"name":"b","shape":[1],"datatype":"FP32","data":[2]},` +
		`{"name":"c","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}}]}`
	want := append([]byte(wantHeader), 1, 0, 1, 0, 0, 0, 'z')
	if headerLen != len(wantHeader) || !bytes.Equal(body, want) {
		t.Errorf("got headerLen %d, body %q\nwant headerLen %d, body %q", headerLen, body, len(wantHeader), want)
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  *Request
		want string
	}{
		{"nil request", nil, "nil request"},
		{"too few elements", &Request{Inputs: []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}, Data: make([]float32, 5)}}},
			`input 0 ("x"): shape [2 3] wants 6 elements, data has 5`},
		{"too many elements for scalar", &Request{Inputs: []Tensor{{Name: "x", Datatype: "INT8", Data: []int8{1, 2}}}},
			`input 0 ("x"): shape [] wants 1 elements, data has 2`},
		{"wrong Go type", &Request{Inputs: []Tensor{{Name: "x", Datatype: "FP64", Shape: []int64{1}, Data: []float32{1}}}},
			`input 0 ("x"): datatype FP64 cannot take data of type []float32`},
		{"nil data", &Request{Inputs: []Tensor{{Name: "x", Datatype: "BOOL", Shape: []int64{1}}}},
			`input 0 ("x"): datatype BOOL cannot take data of type <nil>`},
		{"unknown datatype", &Request{Inputs: []Tensor{{Name: "x", Datatype: "FP8", Shape: []int64{1}, Data: []float32{1}}}},
			`input 0 ("x"): unknown datatype "FP8"`},
		{"negative dimension", &Request{Inputs: []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{-1}, Data: []float32{1}}}},
			`input 0 ("x"): shape [-1] has a negative dimension`},
		{"NaN in JSON", &Request{Inputs: []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Data: []float32{float32(math.NaN())}}}},
			`input 0 ("x"): element 0 is NaN, which JSON cannot carry: send the input as binary`},
		{"invalid UTF-8 in JSON", &Request{Inputs: []Tensor{{Name: "x", Datatype: "BYTES", Shape: []int64{2}, Data: [][]byte{{'a'}, {0xff}}}}},
			`input 0 ("x"): BYTES element 1 is not valid UTF-8: send the input as binary`},
		{"second input", &Request{Inputs: []Tensor{
			{Name: "x", Datatype: "INT32", Shape: []int64{1}, Data: []int32{1}},
			{Name: "y", Datatype: "INT32", Shape: []int64{2}, Data: []int32{1}, Binary: true},
		}}, `input 1 ("y"): shape [2] wants 2 elements, data has 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := EncodeRequest(tt.req)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\ngot  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// binaryBody returns header followed by the binary parts, and the header length.
func binaryBody(header string, parts ...[]byte) ([]byte, int) {
	body := []byte(header)
	for _, p := range parts {
		body = append(body, p...)
	}
	return body, len(header)
}

func TestDecodeResponse(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name      string
		body      []byte
		headerLen int
		want      *Response
	}
	resp := func(outputs ...Tensor) *Response {
		return &Response{ModelName: "m", ModelVersion: "2", ID: "r", Outputs: outputs}
	}
	wrap := func(outputs string) string {
		return `{"model_name":"m","model_version":"2","id":"r","outputs":[` + outputs + `]}`
	}
	var tests []testCase

	jsonCases := []struct {
		datatype, shape, data string
		want                  any
	}{
		{"BOOL", "[2]", "[true,false]", []bool{true, false}},
		{"UINT8", "[2]", "[0,255]", []uint8{0, 255}},
		{"UINT16", "[1]", "[65535]", []uint16{65535}},
		{"UINT32", "[1]", "[4294967295]", []uint32{4294967295}},
		{"UINT64", "[1]", "[18446744073709551615]", []uint64{math.MaxUint64}},
		{"INT8", "[2]", "[-128,127]", []int8{-128, 127}},
		{"INT16", "[1]", "[-32768]", []int16{-32768}},
		{"INT32", "[1]", "[-2147483648]", []int32{-2147483648}},
		{"INT64", "[1]", "[-9223372036854775808]", []int64{math.MinInt64}},
		{"FP16", "[2]", "[1.5,-2]", []float32{1.5, -2}},
		{"FP32", "[2]", "[0.1,3e3]", []float32{0.1, 3000}},
		{"FP64", "[2]", "[0.1,1e300]", []float64{0.1, 1e300}},
		{"BYTES", "[2]", `["ab","é"]`, [][]byte{[]byte("ab"), []byte("é")}},
		{"INT32", "[2,2]", "[[1,2],[3,4]]", []int32{1, 2, 3, 4}}, // nested data is flattened row-major
		{"FP32", "[]", "[7]", []float32{7}},
		{"FP32", "[0]", "[]", []float32{}},
	}
	for _, c := range jsonCases {
		tests = append(tests, testCase{
			name:      fmt.Sprintf("JSON %s %s", c.datatype, c.data),
			body:      []byte(wrap(`{"name":"o","datatype":"` + c.datatype + `","shape":` + c.shape + `,"data":` + c.data + `}`)),
			headerLen: -1,
			want:      resp(Tensor{Name: "o", Datatype: c.datatype, Shape: parseShape(c.shape), Data: c.want}),
		})
	}

	binaryCases := []struct {
		datatype, shape string
		bin             []byte
		want            any
	}{
		{"BOOL", "[3]", []byte{1, 0, 1}, []bool{true, false, true}},
		{"UINT8", "[2]", []byte{7, 255}, []uint8{7, 255}},
		{"INT8", "[2]", []byte{0xff, 2}, []int8{-1, 2}},
		{"UINT16", "[1]", []byte{2, 1}, []uint16{0x0102}},
		{"INT16", "[1]", []byte{0xfe, 0xff}, []int16{-2}},
		{"UINT32", "[1]", []byte{4, 3, 2, 1}, []uint32{0x01020304}},
		{"INT32", "[2]", []byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}, []int32{-1, 1}},
		{"UINT64", "[1]", []byte{8, 7, 6, 5, 4, 3, 2, 1}, []uint64{0x0102030405060708}},
		{"INT64", "[1]", []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []int64{-2}},
		{"FP16", "[3]", []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b}, []float32{1, -2, 65504}},
		{"FP32", "[1,2]", []byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xff}, []float32{1, float32(math.Inf(-1))}},
		{"FP64", "[1]", []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, []float64{1}},
		{"BYTES", "[3]", []byte{2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0, 1, 0, 0, 0, 0xff}, [][]byte{[]byte("ab"), {}, {0xff}}},
		{"BYTES", "[0]", []byte{}, [][]byte{}},
	}
	for _, c := range binaryCases {
		body, headerLen := binaryBody(wrap(fmt.Sprintf(`{"name":"o","datatype":"%s","shape":%s,"parameters":{"binary_data_size":%d}}`,
			c.datatype, c.shape, len(c.bin))), c.bin)
		tests = append(tests, testCase{
			name:      fmt.Sprintf("binary %s % x", c.datatype, c.bin),
			body:      body,
			headerLen: headerLen,
			want:      resp(Tensor{Name: "o", Datatype: c.datatype, Shape: parseShape(c.shape), Data: c.want, Binary: true}),
		})
	}

	body, headerLen := binaryBody(wrap(
		`{"name":"a","datatype":"INT16","shape":[1],"parameters":{"binary_data_size":2}},`+
			`{"name":"b","datatype":"FP32","shape":[1],"data":[2]},`+
			`{"name":"c","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}`),
		[]byte{1, 0}, []byte{1, 0, 0, 0, 'z'})
	tests = append(tests, testCase{"mixed JSON and binary outputs", body, headerLen, resp(
		Tensor{Name: "a", Datatype: "INT16", Shape: []int64{1}, Data: []int16{1}, Binary: true},
		Tensor{Name: "b", Datatype: "FP32", Shape: []int64{1}, Data: []float32{2}},
		Tensor{Name: "c", Datatype: "BYTES", Shape: []int64{1}, Data: [][]byte{[]byte("z")}, Binary: true},
	)})
	tests = append(tests, testCase{"JSON body with header length", []byte(wrap(`{"name":"o","datatype":"INT8","shape":[1],"data":[1]}`)),
		len(wrap(`{"name":"o","datatype":"INT8","shape":[1],"data":[1]}`)),
		resp(Tensor{Name: "o", Datatype: "INT8", Shape: []int64{1}, Data: []int8{1}})})
	tests = append(tests, testCase{"empty data may be omitted", []byte(wrap(`{"name":"o","datatype":"INT8","shape":[2,0]}`)), -1,
		resp(Tensor{Name: "o", Datatype: "INT8", Shape: []int64{2, 0}, Data: []int8{}})})
	tests = append(tests, testCase{"no outputs", []byte(`{"model_name":"m"}`), -1, &Response{ModelName: "m", Outputs: []Tensor{}}})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeResponse(tt.body, tt.headerLen)
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func parseShape(s string) []int64 {
	shape := []int64{}
	for f := range strings.SplitSeq(strings.Trim(s, "[]"), ",") {
		if f != "" {
			var d int64
			fmt.Sscan(f, &d)
			shape = append(shape, d)
		}
	}
	return shape
}

func TestDecodeResponseDoesNotAlias(t *testing.T) {
	t.Parallel()
	body, headerLen := binaryBody(`{"outputs":[{"name":"o","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]}`,
		[]byte{1, 0, 0, 0, 'z'})
	resp, err := DecodeResponse(body, headerLen)
	if err != nil {
		t.Fatalf("DecodeResponse: %v", err)
	}
	body[len(body)-1] = 'y'
	if got := string(resp.Outputs[0].Data.([][]byte)[0]); got != "z" {
		t.Errorf("element after changing the body = %q, want %q", got, "z")
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	t.Parallel()
	out := func(o string) []byte { return []byte(`{"outputs":[` + o + `]}`) }
	binary := func(o string, bin ...byte) ([]byte, int) { return binaryBody(`{"outputs":[`+o+`]}`, bin) }
	type testCase struct {
		name      string
		body      []byte
		headerLen int
		want      string
	}
	tests := []testCase{
		{"not JSON", []byte("oops"), -1, "decode response json: invalid character 'o' looking for beginning of value"},
		{"count mismatch", out(`{"name":"o","datatype":"FP32","shape":[3],"data":[1,2]}`), -1,
			`output 0 ("o"): shape wants 3 elements, data has 2`},
		{"out of range", out(`{"name":"o","datatype":"UINT8","shape":[1],"data":[300]}`), -1,
			`output 0 ("o"): element 0: strconv.ParseUint: parsing "300": value out of range`},
		{"fraction in integer tensor", out(`{"name":"o","datatype":"INT32","shape":[1],"data":[1.5]}`), -1,
			`output 0 ("o"): element 0: strconv.ParseInt: parsing "1.5": invalid syntax`},
		{"string in BOOL tensor", out(`{"name":"o","datatype":"BOOL","shape":[1],"data":["true"]}`), -1,
			`output 0 ("o"): element 0: true is not a boolean`},
		{"data not an array", out(`{"name":"o","datatype":"INT32","shape":[],"data":1}`), -1,
			`output 0 ("o"): data is not an array`},
		{"no data", out(`{"name":"o","datatype":"INT32","shape":[1]}`), -1,
			`output 0 ("o"): neither data nor binary_data_size`},
		{"unknown datatype", out(`{"name":"o","datatype":"FP8","shape":[1],"data":[1]}`), -1,
			`output 0 ("o"): unknown datatype "FP8"`},
		{"negative dimension", out(`{"name":"o","datatype":"FP32","shape":[-1],"data":[1]}`), -1,
			`output 0 ("o"): shape [-1] has a negative dimension`},
		{"binary without header", out(`{"name":"o","datatype":"INT8","shape":[1],"parameters":{"binary_data_size":1}}`), -1,
			`output 0 ("o"): binary_data_size without an Inference-Header-Content-Length header`},
		{"header length past the body", []byte(`{}`), 3, "inference header length 3 outside a 2-byte body"},
		{"header length negative", []byte(`{}`), -2, "inference header length -2 outside a 2-byte body"},
	}
	add := func(name, want string, body []byte, headerLen int) {
		tests = append(tests, testCase{name, body, headerLen, want})
	}
	body, n := binary(`{"name":"o","datatype":"INT8","shape":[1],"parameters":{"binary_data_size":2}}`, 1)
	add("binary size past the body", `output 0 ("o"): binary_data_size 2, but 1 bytes remain`, body, n)
	body, n = binary(`{"name":"o","datatype":"INT16","shape":[2],"parameters":{"binary_data_size":2}}`, 1, 0)
	add("binary size and shape disagree", `output 0 ("o"): 2 elements of 2 bytes, got 2 bytes`, body, n)
	body, n = binary(`{"name":"o","datatype":"INT8","shape":[1],"parameters":{"binary_data_size":1}}`, 1, 2)
	add("trailing bytes", "1 bytes of binary data after the last binary output", body, n)
	body, n = binary(`{"name":"o","datatype":"BOOL","shape":[2],"parameters":{"binary_data_size":2}}`, 1, 2)
	add("BOOL byte 2", `output 0 ("o"): BOOL element 1 is byte 2, want 0 or 1`, body, n)
	body, n = binary(`{"name":"o","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}`, 3, 0, 0, 0, 'a', 'b')
	add("BYTES length past its data", `output 0 ("o"): BYTES element 0: length 3, but 2 bytes remain`, body, n)
	body, n = binary(`{"name":"o","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":7}}`, 1, 0, 0, 0, 'a', 0, 0)
	add("BYTES truncated length", `output 0 ("o"): BYTES element 1: 2 bytes left, want a 4-byte length`, body, n)
	body, n = binary(`{"name":"o","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":5}}`, 1, 0, 0, 0, 'a')
	add("BYTES count mismatch", `output 0 ("o"): shape wants 2 elements, data has 1`, body, n)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeResponse(tt.body, tt.headerLen)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\ngot  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestRoundTrip decodes, as a binary response, the bytes EncodeRequest
// writes for a binary input.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Tensor
		want any // when the decoded data differs from the input's
	}{
		{name: "BOOL", in: Tensor{Datatype: "BOOL", Shape: []int64{2}, Data: []bool{false, true}}},
		{name: "UINT8", in: Tensor{Datatype: "UINT8", Shape: []int64{2}, Data: []uint8{0, 255}}},
		{name: "UINT16", in: Tensor{Datatype: "UINT16", Shape: []int64{2}, Data: []uint16{1, 65535}}},
		{name: "UINT32", in: Tensor{Datatype: "UINT32", Shape: []int64{1}, Data: []uint32{math.MaxUint32}}},
		{name: "UINT64", in: Tensor{Datatype: "UINT64", Shape: []int64{1}, Data: []uint64{math.MaxUint64}}},
		{name: "INT8", in: Tensor{Datatype: "INT8", Shape: []int64{2}, Data: []int8{math.MinInt8, math.MaxInt8}}},
		{name: "INT16", in: Tensor{Datatype: "INT16", Shape: []int64{2}, Data: []int16{math.MinInt16, math.MaxInt16}}},
		{name: "INT32", in: Tensor{Datatype: "INT32", Shape: []int64{2}, Data: []int32{math.MinInt32, math.MaxInt32}}},
		{name: "INT64", in: Tensor{Datatype: "INT64", Shape: []int64{2}, Data: []int64{math.MinInt64, math.MaxInt64}}},
		{name: "FP16", in: Tensor{Datatype: "FP16", Shape: []int64{3}, Data: []float32{0.5, -0.25, 1.0 / 3}},
			want: []float32{0.5, -0.25, 0.33325195}}, // 1/3 rounds to the nearest half
		{name: "FP32", in: Tensor{Datatype: "FP32", Shape: []int64{2}, Data: []float32{math.SmallestNonzeroFloat32, math.MaxFloat32}}},
		{name: "FP64", in: Tensor{Datatype: "FP64", Shape: []int64{2}, Data: []float64{math.SmallestNonzeroFloat64, math.MaxFloat64}}},
		{name: "BYTES", in: Tensor{Datatype: "BYTES", Shape: []int64{2}, Data: []string{"", "hello"}}, want: [][]byte{{}, []byte("hello")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			in.Name, in.Binary = "x", true
			body, headerLen, err := EncodeRequest(&Request{Inputs: []Tensor{in}})
			if err != nil {
				t.Fatalf("EncodeRequest: %v", err)
			}
			bin := body[headerLen:]
			resp, headerLen := binaryBody(fmt.Sprintf(`{"outputs":[{"name":"x","datatype":"%s","shape":%s,"parameters":{"binary_data_size":%d}}]}`,
				in.Datatype, shapeJSON(in.Shape), len(bin)), bin)
			got, err := DecodeResponse(resp, headerLen)
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			want := tt.want
			if want == nil {
				want = in.Data
			}
			if !reflect.DeepEqual(got.Outputs[0].Data, want) {
				t.Errorf("data:\ngot  %v\nwant %v", got.Outputs[0].Data, want)
			}
		})
	}
}

// received is what a test server saw of one request.
type received struct {
	method, path, contentType, headerLen string
	body                                 []byte
}

// cannedServer answers every request with status, header and body, and
// sends what it received on the returned channel (size one: one request
// per test, read after the call returns).
func cannedServer(t *testing.T, status int, header http.Header, body []byte) (*Client, <-chan received) {
	t.Helper()
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		got <- received{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get(HeaderInferenceHeaderLength), b}
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	c := New(srv.URL+"/", nil)
	t.Cleanup(func() {
		c.CloseIdleConnections()
		srv.Close()
	})
	return c, got
}

func TestInfer(t *testing.T) {
	t.Parallel()
	jsonReq := &Request{ID: "1", Inputs: []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{2}, Data: []float32{1, 2}}}}
	jsonReqBody := `{"id":"1","inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]}`
	binReq := &Request{
		Inputs:       []Tensor{{Name: "x", Datatype: "INT32", Shape: []int64{1}, Data: []int32{3}, Binary: true}},
		BinaryOutput: true,
	}
	binReqHeader := `{"parameters":{"binary_data_output":true},"inputs":[{"name":"x","shape":[1],"datatype":"INT32","parameters":{"binary_data_size":4}}]}`
	binRespHeader := `{"model_name":"m","model_version":"3","outputs":[{"name":"y","datatype":"INT32","shape":[1],"parameters":{"binary_data_size":4}}]}`

	tests := []struct {
		name          string
		model, ver    string
		req           *Request
		status        int
		header        http.Header
		body          []byte
		wantReceived  received
		want          *Response
		wantErr       error  // compared with errors.As and DeepEqual when a *Error
		wantErrString string // otherwise
	}{
		{
			name: "JSON", model: "m", req: jsonReq,
			status: 200, header: http.Header{"Content-Type": {"application/json"}},
			body:         []byte(`{"model_name":"m","model_version":"1","id":"1","outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[3]}]}`),
			wantReceived: received{"POST", "/v2/models/m/infer", "application/json", "", []byte(jsonReqBody)},
			want: &Response{ModelName: "m", ModelVersion: "1", ID: "1",
				Outputs: []Tensor{{Name: "y", Datatype: "FP32", Shape: []int64{1}, Data: []float32{3}}}},
		},
		{
			name: "binary, with version", model: "m", ver: "3", req: binReq,
			status: 200, header: http.Header{HeaderInferenceHeaderLength: {fmt.Sprint(len(binRespHeader))}},
			body: append([]byte(binRespHeader), 9, 0, 0, 0),
			wantReceived: received{"POST", "/v2/models/m/versions/3/infer", "application/octet-stream",
				fmt.Sprint(len(binReqHeader)), append([]byte(binReqHeader), 3, 0, 0, 0)},
			want: &Response{ModelName: "m", ModelVersion: "3",
				Outputs: []Tensor{{Name: "y", Datatype: "INT32", Shape: []int64{1}, Data: []int32{9}, Binary: true}}},
		},
		{
			name: "model name is escaped", model: "a/b c", req: jsonReq,
			status: 200, body: []byte(`{"model_name":"a/b c"}`),
			wantReceived: received{"POST", "/v2/models/a%2Fb%20c/infer", "application/json", "", []byte(jsonReqBody)},
			want:         &Response{ModelName: "a/b c", Outputs: []Tensor{}},
		},
		{
			name: "KServe error", model: "m", req: jsonReq,
			status: 400, body: []byte(`{"error":"x"}`),
			wantReceived: received{"POST", "/v2/models/m/infer", "application/json", "", []byte(jsonReqBody)},
			wantErr:      &Error{Status: 400, Msg: "x"},
		},
		{
			name: "plain text error", model: "m", req: jsonReq,
			status: 502, body: []byte("bad gateway\n"),
			wantReceived: received{"POST", "/v2/models/m/infer", "application/json", "", []byte(jsonReqBody)},
			wantErr:      &Error{Status: 502, Msg: "bad gateway\n"},
		},
		{
			name: "bad inference header length", model: "m", req: jsonReq,
			status: 200, header: http.Header{HeaderInferenceHeaderLength: {"abc"}}, body: []byte(`{}`),
			wantReceived:  received{"POST", "/v2/models/m/infer", "application/json", "", []byte(jsonReqBody)},
			wantErrString: `invalid Inference-Header-Content-Length header "abc"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := cannedServer(t, tt.status, tt.header, tt.body)
			got, err := c.Infer(context.Background(), tt.model, tt.ver, tt.req)
			if r := <-rec; !reflect.DeepEqual(r, tt.wantReceived) {
				t.Errorf("server received:\ngot  %+v\nwant %+v\n(bodies %q and %q)", r, tt.wantReceived, r.body, tt.wantReceived.body)
			}
			switch {
			case tt.wantErr != nil:
				var e *Error
				if !errors.As(err, &e) || !reflect.DeepEqual(e, tt.wantErr) {
					t.Errorf("error: got %#v, want %#v", err, tt.wantErr)
				}
			case tt.wantErrString != "":
				if err == nil || err.Error() != tt.wantErrString {
					t.Errorf("error: got %v, want %s", err, tt.wantErrString)
				}
			case err != nil:
				t.Fatalf("Infer: %v", err)
			case !reflect.DeepEqual(got, tt.want):
				t.Errorf("response:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestInferEncodeErrorSendsNothing(t *testing.T) {
	t.Parallel()
	c, rec := cannedServer(t, 200, nil, nil)
	_, err := c.Infer(context.Background(), "m", "", &Request{Inputs: []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{2}, Data: []float32{1}}}})
	if want := `input 0 ("x"): shape [2] wants 2 elements, data has 1`; err == nil || err.Error() != want {
		t.Errorf("error: got %v, want %s", err, want)
	}
	select {
	case r := <-rec:
		t.Errorf("server received %+v, want nothing", r)
	default:
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	if got, want := (&Error{Status: 404, Msg: "unknown model"}).Error(), "status 404: unknown model"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDo(t *testing.T) {
	t.Parallel()
	c, got := cannedServer(t, 400, http.Header{"X-Answer": {"42"}}, []byte(`{"error":"malformed"}`))
	status, body, header, err := c.Do(context.Background(), http.MethodPost, "/v2/models/m/infer", []byte(`{"inputs":`),
		http.Header{"Content-Type": {"application/json"}, HeaderInferenceHeaderLength: {"99"}})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if status != 400 || string(body) != `{"error":"malformed"}` || header.Get("X-Answer") != "42" {
		t.Errorf("got status %d, body %q, X-Answer %q; want 400, %q, 42", status, body, header.Get("X-Answer"), `{"error":"malformed"}`)
	}
	want := received{"POST", "/v2/models/m/infer", "application/json", "99", []byte(`{"inputs":`)}
	if r := <-got; !reflect.DeepEqual(r, want) {
		t.Errorf("server received:\ngot  %+v\nwant %+v", r, want)
	}
}

func TestDoTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens any more
	c := New(srv.URL, nil)
	defer c.CloseIdleConnections()
	_, _, _, err := c.Do(context.Background(), http.MethodGet, "/v2", nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "GET /v2: ") {
		t.Errorf("error: got %v, want one starting GET /v2: ", err)
	}
}

func TestDoContextCanceled(t *testing.T) {
	t.Parallel()
	c, _ := cannedServer(t, 200, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, _, err := c.Do(ctx, http.MethodGet, "/v2", nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error: got %v, want context.Canceled", err)
	}
}

// metadataServer answers the health and metadata endpoints like infergate.
func metadataServer(t *testing.T) *Client {
	t.Helper()
	mux := http.NewServeMux()
	reply := func(pattern string, status int, body string) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				t.Errorf("%s: method %s, want GET", pattern, r.Method)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		})
	}
	reply("/v2/health/live", 200, "")
	reply("/v2/health/ready", 503, "")
	reply("/v2/models/m/ready", 200, "")
	reply("/v2/models/m/versions/2/ready", 503, "")
	reply("/v2/models/x/ready", 404, `{"error":"unknown model \"x\""}`)
	reply("/v2/models/odd/ready", 500, "kaput")
	reply("/v2", 200, `{"name":"infergate","version":"0.1.0","extensions":["binary_tensor_data","model_configuration"],"onnxruntime_version":"1.22"}`)
	reply("/v2/models/m", 200, `{"name":"m","versions":["1","2"],"platform":"onnxruntime_onnx",`+
		`"inputs":[{"name":"x","datatype":"FP32","shape":[-1,3]}],"outputs":[{"name":"y","datatype":"INT64","shape":[-1]}]}`)
	reply("/v2/models/m/versions/2", 200, `{"name":"m","versions":["2"],"platform":"onnxruntime_onnx","inputs":[],"outputs":[]}`)
	reply("/v2/models/m/versions/9", 404, `{"error":"unknown version 9"}`)
	reply("/v2/models/bad", 200, `{"name":`)
	srv := httptest.NewServer(mux)
	c := New(srv.URL, nil)
	t.Cleanup(func() {
		c.CloseIdleConnections()
		srv.Close()
	})
	return c
}

func TestHealth(t *testing.T) {
	t.Parallel()
	c := metadataServer(t)
	tests := []struct {
		name    string
		call    func(context.Context) (bool, error)
		want    bool
		wantErr error
	}{
		{"server live", c.ServerLive, true, nil},
		{"server not ready (503)", c.ServerReady, false, nil},
		{"model ready", func(ctx context.Context) (bool, error) { return c.ModelReady(ctx, "m", "") }, true, nil},
		{"version not ready (503)", func(ctx context.Context) (bool, error) { return c.ModelReady(ctx, "m", "2") }, false, nil},
		{"unknown model (404)", func(ctx context.Context) (bool, error) { return c.ModelReady(ctx, "x", "") }, false,
			&Error{Status: 404, Msg: `unknown model "x"`}},
		{"server error (500)", func(ctx context.Context) (bool, error) { return c.ModelReady(ctx, "odd", "") }, false,
			&Error{Status: 500, Msg: "kaput"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.call(context.Background())
			if got != tt.want || !reflect.DeepEqual(err, tt.wantErr) {
				t.Errorf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	c := metadataServer(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		call    func() (any, error)
		want    any
		wantErr string
	}{
		{"server", func() (any, error) { return c.ServerMetadata(ctx) },
			&ServerMetadata{Name: "infergate", Version: "0.1.0", Extensions: []string{"binary_tensor_data", "model_configuration"}}, ""},
		{"model", func() (any, error) { return c.ModelMetadata(ctx, "m", "") },
			&ModelMetadata{Name: "m", Versions: []string{"1", "2"}, Platform: "onnxruntime_onnx",
				Inputs:  []TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 3}}},
				Outputs: []TensorMetadata{{Name: "y", Datatype: "INT64", Shape: []int64{-1}}}}, ""},
		{"model version", func() (any, error) { return c.ModelMetadata(ctx, "m", "2") },
			&ModelMetadata{Name: "m", Versions: []string{"2"}, Platform: "onnxruntime_onnx",
				Inputs: []TensorMetadata{}, Outputs: []TensorMetadata{}}, ""},
		{"unknown version", func() (any, error) { return c.ModelMetadata(ctx, "m", "9") },
			(*ModelMetadata)(nil), "status 404: unknown version 9"},
		{"malformed answer", func() (any, error) { return c.ModelMetadata(ctx, "bad", "") },
			(*ModelMetadata)(nil), "decode /v2/models/bad: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.call()
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %q; want %+v, %q", got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"outputs":[{"name":"o","datatype":"INT32","shape":[2,2],"data":[[1,2],[3,4]]}]}`), -1)
	f.Add([]byte(`{"outputs":[{"name":"o","datatype":"BYTES","shape":[2],"data":["a","b"]}]}`), -1)
	for _, dt := range []string{"BOOL", "INT8", "UINT16", "FP16", "FP32", "FP64", "BYTES"} {
		body, n := binaryBody(`{"outputs":[{"name":"o","datatype":"`+dt+`","shape":[2],"parameters":{"binary_data_size":8}}]}`,
			[]byte{1, 0, 0, 0, 1, 0, 0, 0})
		f.Add(body, n)
	}
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		resp, err := DecodeResponse(body, headerLen)
		if err != nil {
			return
		}
		for _, o := range resp.Outputs {
			want, err := elements(o.Shape)
			if err != nil {
				t.Fatalf("decoded output %q with invalid shape %v", o.Name, o.Shape)
			}
			if got := reflect.ValueOf(o.Data).Len(); int64(got) != want {
				t.Fatalf("output %q: %d elements, shape %v wants %d", o.Name, got, o.Shape, want)
			}
		}
	})
}
