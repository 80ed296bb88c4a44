package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestBadRequests sends malformed and invalid requests over HTTP and checks
// the exact status and KServe error text of each, then that the server
// still serves.
func TestBadRequests(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), func(c *Config) { c.HTTP.MaxRequestBodyBytes, c.HTTP.MaxJSONBytes = 1<<20, 64<<10 })
	const mlp = "/v2/models/mlp/infer"
	row := `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]`
	good := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`
	bin := func(header string, data string) (string, map[string]string) {
		return header + data, map[string]string{"Inference-Header-Content-Length": itoa(len(header))}
	}
	binBody, binHeader := bin(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}`, strings.Repeat("\x00", 60))
	shortBody, _ := bin(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}`, strings.Repeat("\x00", 64))
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		status int
		want   string
	}{
		{"malformed JSON", "POST", mlp, `{"inputs": [`, nil, 400, `malformed JSON: cannot parse object: cannot parse object value: cannot parse array: missing ']'; unparsed tail: ""`},
		{"empty body", "POST", mlp, ``, nil, 400, `malformed JSON: empty request`},
		{"not an object", "POST", mlp, `[1,2]`, nil, 400, `request must be a JSON object, got array`},
		{"no inputs", "POST", mlp, `{"id":"1"}`, nil, 400, `missing "inputs"`},
		{"empty inputs", "POST", mlp, `{"inputs":[]}`, nil, 400, `"inputs" must not be empty`},
		{"unknown input", "POST", mlp, `{"inputs":[{"name":"img","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `unknown input "img"`},
		{"missing input", "POST", "/v2/models/multi_io/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, nil, 400, `missing input "b"`},
		{"wrong datatype", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP64","data":` + row + `}]}`, nil, 400, `input "input": expected datatype FP32, got FP64`},
		{"unknown datatype", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FLOAT","data":` + row + `}]}`, nil, 400, `input "input": unknown datatype "FLOAT", expected FP32`},
		{"wrong rank", "POST", mlp, `{"inputs":[{"name":"input","shape":[16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": expected shape [-1,16], got [16]`},
		{"wrong fixed dim", "POST", mlp, `{"inputs":[{"name":"input","shape":[2,8],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": expected shape [-1,16], got [2,8]`},
		{"element count", "POST", mlp, `{"inputs":[{"name":"input","shape":[2,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": shape [2,16] needs 32 elements, got 16`},
		{"string for number", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,1,"2",3,4,5,6,7,8,9,10,11,12,13,14,15]}]}`, nil, 400, `input "input": element 2 must be a number, got "2"`},
		{"integer out of range", "POST", "/v2/models/identity_int8/infer", `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"INT8","data":[1,128,3,4]}]}`, nil, 400, `input "INPUT0": element 1 is out of range for INT8, got 128`},
		{"fraction for integer", "POST", "/v2/models/identity_int64/infer", `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"INT64","data":[1,2.5,3,4]}]}`, nil, 400, `input "INPUT0": element 1 must be an integer, got 2.5`},
		{"number for BOOL", "POST", "/v2/models/identity_bool/infer", `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"BOOL","data":[true,1,false,true]}]}`, nil, 400, `input "INPUT0": element 1 must be true or false, got 1`},
		{"NUL in BYTES", "POST", "/v2/models/strings/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a\u0000b"]}]}`, nil, 400, `model "strings" version 1: invalid input: input "text": BYTES element 0 contains a NUL byte, which ONNX Runtime's string tensors cannot take`},
		{"unknown output", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}],"outputs":[{"name":"probs"}]}`, nil, 400, `unknown output "probs"`},
		{"classification", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}],"outputs":[{"name":"output","parameters":{"classification":2}}]}`, nil, 400, `output "output": classification extension is not supported`},
		{"shared memory", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"shared_memory_region":"r0"}}]}`, nil, 400, `input "input": shared memory is not supported`},
		{"binary without header", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}`, nil, 400, `input "input": binary_data_size needs the Inference-Header-Content-Length header`},
		{"binary too short", "POST", mlp, binBody, binHeader, 400, `input "input": binary_data_size 64 exceeds the 60 bytes of binary data left`},
		{"bad header length", "POST", mlp, shortBody, map[string]string{"Inference-Header-Content-Length": "abc"}, 400, `invalid Inference-Header-Content-Length header "abc"`},
		{"header past body", "POST", mlp, good, map[string]string{"Inference-Header-Content-Length": "100000"}, 400, `header Inference-Header-Content-Length is 100000, outside the body of 109 bytes`},
		{"batch over max_batch_size", "POST", "/v2/models/pinned/infer", `{"inputs":[{"name":"x","shape":[9,4],"datatype":"FP32","data":[` + strings.Repeat("0,", 35) + `0]}]}`, nil, 400, `batch size 9 is larger than the model's max_batch_size 8`},
		{"different batch sizes", "POST", "/v2/models/multi_io/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[2,3],"datatype":"INT64","data":[1,2,3,4,5,6]}]}`, nil, 400, `inputs have different batch sizes: "a" has 1, "b" has 2`},
		{"id not a string", "POST", mlp, `{"id":7,"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `"id" must be a string, got 7`},
		{"bad version", "POST", "/v2/models/mlp/versions/0/infer", good, nil, 400, `invalid model version "0": want a positive integer`},
		{"unknown model", "POST", "/v2/models/resnet/infer", good, nil, 404, `unknown model "resnet"`},
		{"unknown version", "POST", "/v2/models/mlp/versions/3/infer", good, nil, 404, `model "mlp" has no version 3`},
		{"wrong method", "PUT", mlp, good, nil, 405, `method PUT is not allowed on /v2/models/mlp/infer`},
		{"JSON part over its limit", "POST", mlp, `{"id":"` + strings.Repeat("x", 70000) + `","inputs":[]}`, nil, 413, `the JSON part of the request is 70021 bytes, over the limit of 65536: send large tensors as binary data (Inference-Header-Content-Length)`},
		{"unsupported encoding", "POST", mlp, good, map[string]string{"Content-Encoding": "br"}, 415, `Content-Encoding "br" is not supported (want gzip or deflate)`},
		{"corrupt gzip", "POST", mlp, good, map[string]string{"Content-Encoding": "gzip"}, 400, `gzip body: gzip: invalid header`},
		{"ONNX Runtime failure", "POST", "/v2/models/reshape3/infer", `{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`, nil, 500, `model "reshape3" version 1: Error running network: `},
		{"model failed to load", "POST", "/v2/models/corrupt/infer", good, nil, 503, `model "corrupt" is not ready: read model: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			status, body, _, err := c.Do(context.Background(), tt.method, tt.path, []byte(tt.body), h)
			if err != nil {
				t.Fatal(err)
			}
			got := errorBody(t, body)
			exact := !strings.HasSuffix(tt.want, ": ")
			if status != tt.status || (exact && got != tt.want) || (!exact && !strings.HasPrefix(got, tt.want)) {
				t.Errorf("got %d %q, want %d %q", status, got, tt.status, tt.want)
			}
		})
	}
	// Nothing above took the server down.
	status, _, _, err := c.Do(context.Background(), "POST", mlp, []byte(good), nil)
	if err != nil || status != 200 {
		t.Fatalf("after the bad requests: %d %v", status, err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
