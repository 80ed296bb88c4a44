package gateway

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/infergate/infergate/runtime"
)

// The baseline decodes with encoding/json into typed structs (no
// json.RawMessage), then builds the same tensor decodeRequest does.
type jsonRequest struct {
	ID         string `json:"id"`
	Parameters struct {
		BinaryDataOutput bool  `json:"binary_data_output"`
		Timeout          int64 `json:"timeout"`
		Priority         int64 `json:"priority"`
	} `json:"parameters"`
	Inputs  []jsonInput  `json:"inputs"`
	Outputs []jsonOutput `json:"outputs"`
}

type jsonInput struct {
	Name       string  `json:"name"`
	Datatype   string  `json:"datatype"`
	Shape      []int64 `json:"shape"`
	Parameters struct {
		BinaryDataSize *int64 `json:"binary_data_size"`
	} `json:"parameters"`
	Data []float32 `json:"data"`
}

type jsonOutput struct {
	Name       string `json:"name"`
	Parameters struct {
		BinaryData *bool `json:"binary_data"`
	} `json:"parameters"`
}

type jsonResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	ID           string           `json:"id,omitempty"`
	Outputs      []jsonOutputData `json:"outputs"`
}

type jsonOutputData struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float32 `json:"data"`
}

// baselineTensor checks the decoded input against the signature, as
// decodeRequest does, and builds its tensor; bin is the binary part, if any.
func baselineTensor(b *testing.B, in *jsonInput, bin []byte, n int) runtime.Tensor {
	if in.Name != "x" || in.Datatype != "FP32" || len(in.Shape) != 2 || in.Shape[1] != int64(n) {
		b.Fatalf("unexpected input %+v", in)
	}
	t := runtime.Tensor{Name: "x", DataType: runtime.FP32, Shape: in.Shape}
	if in.Parameters.BinaryDataSize != nil {
		if int(*in.Parameters.BinaryDataSize) != len(bin) || len(bin) != 4*n {
			b.Fatal("bad binary size")
		}
		t.Data = append(make([]byte, 0, len(bin)), bin...)
		return t
	}
	if len(in.Data) != n {
		b.Fatal("bad element count")
	}
	t.Data = make([]byte, 4*len(in.Data))
	for i, f := range in.Data {
		binary.LittleEndian.PutUint32(t.Data[i*4:], math.Float32bits(f))
	}
	return t
}

// pythonRequest is fp32Request with each float32 written as Python writes
// it after numpy's tolist (the shortest float64, up to 17 digits): what
// Triton's and KServe's Python clients send.
func pythonRequest(n int) []byte {
	return fp32RequestWith(n, func(b []byte, f float32) []byte { return strconv.AppendFloat(b, float64(f), 'g', -1, 64) })
}

// BenchmarkDecode decodes one FP32 input of n elements with the one-pass
// decoder (infergate), the tree decoder it replaced in front (tree) and
// encoding/json into typed structs, in one run.
func BenchmarkDecode(b *testing.B) {
	type bodyCase struct {
		name      string
		n         int
		body      []byte
		headerLen int
	}
	var cases []bodyCase
	for _, n := range []int{16, 256, 150528} {
		cases = append(cases, bodyCase{name: fmt.Sprintf("json-%d-fp32", n), n: n, body: fp32Request(n), headerLen: -1})
	}
	cases = append(cases, bodyCase{name: "json-256-fp32-python", n: 256, body: pythonRequest(256), headerLen: -1})
	data := make([]float32, 256)
	for i := range data {
		data[i] = float32(i)*0.37 - 40.125
	}
	binHeader := `{"id":"","inputs":[{"name":"x","datatype":"FP32","shape":[1,256],"parameters":{"binary_data_size":1024}}],"outputs":[{"name":"y"}]}`
	binBody, headerLen := withBinary(binHeader, le(runtime.FP32, float32sToFloat64s(data)...))
	cases = append(cases, bodyCase{name: "binary-256-fp32", n: 256, body: binBody, headerLen: headerLen})

	for _, c := range cases {
		inputs := []runtime.TensorInfo{info("x", runtime.FP32, -1, int64(c.n))}
		outputs := []runtime.TensorInfo{info("y", runtime.FP32, -1, 10)}
		for _, dec := range []struct {
			name string
			f    func(*fastjson.Parser, []byte, int, []runtime.TensorInfo, []runtime.TensorInfo, *inferRequest) error
		}{{"infergate", decodeRequest}, {"tree", decodeTree}} {
			b.Run(c.name+"/"+dec.name, func(b *testing.B) {
				var p fastjson.Parser
				var req inferRequest
				b.ReportAllocs()
				b.SetBytes(int64(len(c.body)))
				for b.Loop() {
					if err := dec.f(&p, c.body, c.headerLen, inputs, outputs, &req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				header, bin := c.body, []byte(nil)
				if c.headerLen >= 0 {
					header, bin = c.body[:c.headerLen], c.body[c.headerLen:]
				}
				var r jsonRequest
				if err := json.Unmarshal(header, &r); err != nil {
					b.Fatal(err)
				}
				if len(r.Inputs) != 1 {
					b.Fatal("want one input")
				}
				_ = baselineTensor(b, &r.Inputs[0], bin, c.n)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	values := make([]float64, 256)
	for i := range values {
		values[i] = float64(float32(i)*0.37 - 40.125)
	}
	out := runtime.Tensor{Name: "y", DataType: runtime.FP32, Shape: []int64{1, 256}, Data: le(runtime.FP32, values...)}
	b.Run("json-256-fp32/infergate", func(b *testing.B) {
		outputs := []runtime.Tensor{out}
		buf, _ := encodeResponse(nil, "m", 1, "42", outputs, nil)
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			buf, _ = encodeResponse(buf[:0], "m", 1, "42", outputs, nil)
		}
	})
	b.Run("json-256-fp32/encoding-json", func(b *testing.B) {
		encode := func() []byte {
			data := make([]float32, len(out.Data)/4)
			for i := range data {
				data[i] = math.Float32frombits(binary.LittleEndian.Uint32(out.Data[i*4:]))
			}
			resp := jsonResponse{ModelName: "m", ModelVersion: fmt.Sprint(1), ID: "42",
				Outputs: []jsonOutputData{{Name: out.Name, Datatype: out.DataType.String(), Shape: out.Shape, Data: data}}}
			buf, err := json.Marshal(&resp)
			if err != nil {
				b.Fatal(err)
			}
			return buf
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(encode())))
		for b.Loop() {
			_ = encode()
		}
	})
}

func float32sToFloat64s(fs []float32) []float64 {
	out := make([]float64, len(fs))
	for i, f := range fs {
		out[i] = float64(f)
	}
	return out
}
