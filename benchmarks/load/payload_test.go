package load

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/infergate/infergate/gateway/client"
)

func TestRandomPayload(t *testing.T) {
	t.Parallel()
	md := func(inputs ...client.TensorMetadata) *client.ModelMetadata {
		return &client.ModelMetadata{Name: "m", Inputs: inputs}
	}
	for _, tc := range []struct {
		desc      string
		md        *client.ModelMetadata
		opts      PayloadOptions
		wantRows  int
		wantShape []int64 // of the first input
		wantErr   string
	}{
		{desc: "one row", md: md(client.TensorMetadata{Name: "x", Datatype: "FP32", Shape: []int64{-1, 16}}), wantRows: 1, wantShape: []int64{1, 16}},
		{desc: "eight rows binary", md: md(client.TensorMetadata{Name: "x", Datatype: "FP32", Shape: []int64{-1, 16}}), opts: PayloadOptions{Rows: 8, Binary: true}, wantRows: 8, wantShape: []int64{8, 16}},
		{desc: "no batch axis", md: md(client.TensorMetadata{Name: "x", Datatype: "INT64", Shape: []int64{3}}), opts: PayloadOptions{Rows: 8}, wantRows: 1, wantShape: []int64{3}},
		{desc: "every datatype", md: md(
			client.TensorMetadata{Name: "a", Datatype: "BOOL", Shape: []int64{-1, 2}},
			client.TensorMetadata{Name: "b", Datatype: "UINT8", Shape: []int64{-1, 2}},
			client.TensorMetadata{Name: "c", Datatype: "INT16", Shape: []int64{-1, 2}},
			client.TensorMetadata{Name: "d", Datatype: "FP16", Shape: []int64{-1, 2}},
			client.TensorMetadata{Name: "e", Datatype: "FP64", Shape: []int64{-1, 2}},
			client.TensorMetadata{Name: "f", Datatype: "BYTES", Shape: []int64{-1, 2}},
			client.TensorMetadata{Name: "g", Datatype: "UINT64", Shape: []int64{-1, 2}},
		), wantRows: 1, wantShape: []int64{1, 2}},
		{desc: "image shape given", md: md(client.TensorMetadata{Name: "x", Datatype: "FP32", Shape: []int64{-1, 3, -1, -1}}), opts: PayloadOptions{Binary: true, Shapes: map[string][]int64{"x": {2, 3, 4, 5}}}, wantRows: 2, wantShape: []int64{2, 3, 4, 5}},
		{desc: "variable inner dimension", md: md(client.TensorMetadata{Name: "x", Datatype: "FP32", Shape: []int64{-1, -1}}), wantErr: "give its shape"},
		{desc: "shape of the wrong rank", md: md(client.TensorMetadata{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}), opts: PayloadOptions{Shapes: map[string][]int64{"x": {1}}}, wantErr: "dimensions"},
		{desc: "shape against the model", md: md(client.TensorMetadata{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}), opts: PayloadOptions{Shapes: map[string][]int64{"x": {1, 5}}}, wantErr: "does not fit"},
		{desc: "unknown datatype", md: md(client.TensorMetadata{Name: "x", Datatype: "FP8", Shape: []int64{1}}), wantErr: "unknown datatype"},
		{desc: "no inputs", md: md(), wantErr: "no inputs"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p, err := RandomPayload(tc.md, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Rows != tc.wantRows || len(p.Bodies) != 4 || len(p.HeaderLens) != 4 || p.Binary != tc.opts.Binary {
				t.Fatalf("got rows %d, %d bodies, %d header lengths, binary %v", p.Rows, len(p.Bodies), len(p.HeaderLens), p.Binary)
			}
			if string(p.Bodies[0]) == string(p.Bodies[1]) {
				t.Error("two samples are the same body")
			}
			for i, body := range p.Bodies {
				header := body
				if tc.opts.Binary {
					if p.HeaderLens[i] <= 0 || p.HeaderLens[i] > len(body) {
						t.Fatalf("body %d: header length %d in %d bytes", i, p.HeaderLens[i], len(body))
					}
					header = body[:p.HeaderLens[i]]
				} else if p.HeaderLens[i] != -1 {
					t.Fatalf("body %d: JSON with header length %d", i, p.HeaderLens[i])
				}
				var req struct {
					Inputs []struct {
						Name  string  `json:"name"`
						Shape []int64 `json:"shape"`
					} `json:"inputs"`
					Parameters map[string]any `json:"parameters"`
				}
				if err := json.Unmarshal(header, &req); err != nil {
					t.Fatalf("body %d: %v in %s", i, err, header)
				}
				if len(req.Inputs) != len(tc.md.Inputs) || !equal(req.Inputs[0].Shape, tc.wantShape) {
					t.Errorf("body %d: got %+v, want %d inputs, the first of shape %v", i, req.Inputs, len(tc.md.Inputs), tc.wantShape)
				}
				if tc.opts.Binary && req.Parameters["binary_data_output"] != true {
					t.Errorf("body %d: binary request without binary_data_output: %v", i, req.Parameters)
				}
			}
		})
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSamplePayload(t *testing.T) {
	t.Parallel()
	sample := []byte(`{
  "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6.5]]},
             {"name": "n", "shape": [2], "datatype": "INT32", "data": [-7, 8]}]
}`)
	p, err := SamplePayload(sample, PayloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 2 || len(p.Bodies) != 1 || p.HeaderLens[0] != -1 || strings.ContainsAny(string(p.Bodies[0]), "\n ") {
		t.Errorf("json: got rows %d, header length %d, body %s", p.Rows, p.HeaderLens[0], p.Bodies[0])
	}

	p, err = SamplePayload(sample, PayloadOptions{Binary: true})
	if err != nil {
		t.Fatal(err)
	}
	body, n := p.Bodies[0], p.HeaderLens[0]
	if n <= 0 || len(body) != n+6*4+2*4 {
		t.Fatalf("binary: got header length %d in %d bytes, want 32 bytes of tensors after it", n, len(body))
	}
	bin := body[n:]
	if got := math.Float32frombits(binary.LittleEndian.Uint32(bin[5*4:])); got != 6.5 {
		t.Errorf("binary: element 5 of x is %v, want 6.5", got)
	}
	if got := int32(binary.LittleEndian.Uint32(bin[6*4:])); got != -7 {
		t.Errorf("binary: element 0 of n is %v, want -7", got)
	}
	if !strings.Contains(string(body[:n]), `"binary_data_output":true`) {
		t.Errorf("binary: header %s does not ask for binary output", body[:n])
	}

	for _, tc := range []struct {
		desc, sample, want string
	}{
		{"not json", `{`, "sample request"},
		{"no inputs", `{"inputs":[]}`, "no inputs"},
		{"not an array", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":1}]}`, "not an array"},
		{"string for a number", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}`, "not a number"},
		{"overflow", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[300]}]}`, "out of range"},
		{"wrong count", `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1]}]}`, "wants 3 elements"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := SamplePayload([]byte(tc.sample), PayloadOptions{Binary: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
