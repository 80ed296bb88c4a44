package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/infergate/infergate/runtime"
)

// The signature the fuzzers decode against: x FP32 [-1,4] and s BYTES [-1]
// in, y FP32 [-1,4] out. Seeds are in testdata/fuzz/<FuzzName>/.
func fuzzInputs() []runtime.TensorInfo {
	return []runtime.TensorInfo{info("x", runtime.FP32, -1, 4), info("s", runtime.Bytes, -1)}
}

func fuzzOutputs() []runtime.TensorInfo {
	return []runtime.TensorInfo{info("y", runtime.FP32, -1, 4)}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}]}`))
	var p fastjson.Parser
	var req inferRequest
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, &p, &req, body, -1)
	})
}

func FuzzDecodeBinary(f *testing.F) {
	body, n := withBinary(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}},`+
		`{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]}`, le(runtime.FP32, 1, 2, 3, 4), lenPrefixed("a"))
	f.Add(body, n)
	var p fastjson.Parser
	var req inferRequest
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		checkDecode(t, &p, &req, body, headerLen)
	})
}

// checkDecode decodes body with a reused parser and request, as the server
// does, and checks that the outcome is either a 400 *Error or a request
// that matches the signature and encodes back.
func checkDecode(t *testing.T, p *fastjson.Parser, req *inferRequest, body []byte, headerLen int) {
	inputs, outputs := fuzzInputs(), fuzzOutputs()
	err := decodeRequest(p, body, headerLen, inputs, outputs, req)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("got error %v (%T), want an *Error", err, err)
		}
		if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got status %d (%s), want 400 or 413", e.Status, e.Msg)
		}
		if e.Msg == "" {
			t.Fatal("got an empty error message")
		}
		return
	}

	if len(req.Inputs) != len(inputs) {
		t.Fatalf("got %d inputs, want %d", len(req.Inputs), len(inputs))
	}
	binary := make([]bool, len(req.Inputs))
	for i := range req.Inputs {
		in := &req.Inputs[i]
		if in.Name != inputs[i].Name || in.DataType != inputs[i].DataType || !runtime.ShapeMatches(inputs[i].Shape, in.Shape) {
			t.Fatalf("got input %d %q %s %v, want %q %s %v", i, in.Name, in.DataType, in.Shape, inputs[i].Name, inputs[i].DataType, inputs[i].Shape)
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("got an invalid input: %v", err)
		}
		binary[i] = true
	}
	for i, o := range req.Outputs {
		if o.Index < 0 || o.Index >= len(outputs) || o.Binary < -1 || o.Binary > 1 {
			t.Fatalf("got output %+v", o)
		}
		for _, prev := range req.Outputs[:i] {
			if prev.Index == o.Index {
				t.Fatalf("got output %d twice", o.Index)
			}
		}
	}

	// What was decoded encodes back, in binary and in JSON.
	resp, jsonLen := encodeResponse(nil, "m", 1, req.ID, req.Inputs, binary)
	want := jsonLen
	for i := range req.Inputs {
		want += binaryLen(&req.Inputs[i])
	}
	if jsonLen < 0 || len(resp) != want || !json.Valid(resp[:jsonLen]) {
		t.Fatalf("got a binary response of %d bytes with JSON length %d, want %d bytes and valid JSON:\n%q", len(resp), jsonLen, want, resp)
	}
	resp, jsonLen = encodeResponse(resp[:0], "m", 1, req.ID, req.Inputs, nil)
	if jsonLen != -1 {
		t.Fatalf("got JSON length %d for a JSON response, want -1", jsonLen)
	}
	if allFinite(req.Inputs) && !json.Valid(resp) {
		t.Fatalf("got invalid JSON %q", resp)
	}
}

// allFinite reports whether no FP32 element of tensors is NaN or infinite
// (the fuzz signature has no other floating-point type).
func allFinite(tensors []runtime.Tensor) bool {
	for _, t := range tensors {
		if t.DataType != runtime.FP32 {
			continue
		}
		for i := 0; i+4 <= len(t.Data); i += 4 {
			bits := uint32(t.Data[i]) | uint32(t.Data[i+1])<<8 | uint32(t.Data[i+2])<<16 | uint32(t.Data[i+3])<<24
			f := float64(math.Float32frombits(bits))
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return false
			}
		}
	}
	return true
}

// FuzzLoadRequest: a repository load request's body decodes to options
// or to a 400, and every file decoded is the base64 its parameter held.
func FuzzLoadRequest(f *testing.F) {
	f.Add([]byte(`{"parameters":{"config":"{\"backend\":\"onnxruntime\"}","file:1/model.onnx":"AAEC"}}`))
	f.Add([]byte(`{"parameters":{"file:1/model.onnx":"%%%"}}`))
	f.Add([]byte(`{"parameters":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		opts, err := parseLoadRequest(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Msg == "" {
				t.Fatalf("got %v (%T), want a 400 *Error with a message", err, err)
			}
			return
		}
		var doc struct {
			Parameters map[string]any `json:"parameters"`
		}
		if json.Unmarshal(body, &doc) != nil {
			return // fastjson accepts what encoding/json may not (duplicate keys, say)
		}
		for p, b := range opts.Files {
			s, ok := doc.Parameters["file:"+p].(string)
			s = strings.NewReplacer("\r", "", "\n", "").Replace(s) // base64 decoding skips line breaks
			if ok && s != base64.StdEncoding.EncodeToString(b) {
				t.Fatalf("file %q decoded to %x from %q", p, b, s)
			}
		}
	})
}
