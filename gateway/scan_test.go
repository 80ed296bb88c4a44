package gateway

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/infergate/infergate/runtime"
)

// fastOnly runs the one-pass decoder alone.
func fastOnly(p *fastjson.Parser, body []byte, headerLen int, inputs, outputs []runtime.TensorInfo, req *inferRequest) error {
	req.reset()
	d, jsonPart, err := newDecoder(body, headerLen, inputs, req)
	if err != nil {
		return err
	}
	return d.fast(p, jsonPart, outputs)
}

// checkFastAgrees decodes body with the one-pass decoder and with the tree
// decoder: when the first accepts it, the second must too, with the same
// request.
func checkFastAgrees(t *testing.T, body []byte, headerLen int, inputs, outputs []runtime.TensorInfo) (fast bool) {
	t.Helper()
	var p1, p2 fastjson.Parser
	var fr, tr inferRequest
	if fastOnly(&p1, body, headerLen, inputs, outputs, &fr) != nil {
		return false
	}
	if err := decodeTree(&p2, body, headerLen, inputs, outputs, &tr); err != nil {
		t.Fatalf("the one-pass decoder took %q, the tree decoder refuses it: %v", body, err)
	}
	if fr.ID != tr.ID || fr.BinaryOutput != tr.BinaryOutput || fr.Timeout != tr.Timeout || fr.Priority != tr.Priority ||
		!slices.Equal(fr.Outputs, tr.Outputs) || len(fr.Inputs) != len(tr.Inputs) {
		t.Fatalf("decoding %q: one-pass %+v, tree %+v", body, fr, tr)
	}
	for i := range fr.Inputs {
		f, g := &fr.Inputs[i], &tr.Inputs[i]
		if f.Name != g.Name || f.DataType != g.DataType || !slices.Equal(f.Shape, g.Shape) ||
			!bytes.Equal(f.Data, g.Data) || (f.Data == nil) != (g.Data == nil) || !slices.Equal(f.Strings, g.Strings) {
			t.Fatalf("decoding %q, input %d: one-pass %+v, tree %+v", body, i, *f, *g)
		}
	}
	return true
}

// FuzzDecodeFast checks the one-pass decoder against the tree decoder on
// the JSON signature of FuzzDecodeJSON plus one input of each numeric type.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}]}`,
		`{"id":"7","parameters":{"timeout":3},"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["a"]},{"data":[[1.5,-2e3],[0.1,3]],"name":"x","datatype":"FP32","shape":[1,4]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`,
		`{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1.0, -2.5, 0.1, 4]}, {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[NaN,Infinity,-Infinity,-0]},{"name":"s","datatype":"BYTES","shape":[1],"data":["Infinity"]},{"name":"f64","datatype":"FP64","shape":[1],"data":[-Infinity]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[0,4],"data":[[]]},{"name":"s","datatype":"BYTES","shape":[0],"data":[]},{"name":"i8","datatype":"INT8","shape":[2],"data":[-128,127]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1e39,-0,0.30000001192092896,1.0000000596046448]},{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]},{"name":"u16","datatype":"UINT16","shape":[1],"data":[65535]},{"name":"f64","datatype":"FP64","shape":[1],"data":[2.2250738585072014e-308]},{"name":"b","datatype":"BOOL","shape":[1],"data":[true]},{"name":"h","datatype":"FP16","shape":[1],"data":[65504]}]}`,
	} {
		f.Add([]byte(s))
	}
	inputs := append(fuzzInputs(), info("i8", runtime.Int8, -1), info("u16", runtime.Uint16, -1),
		info("f64", runtime.FP64, -1), info("b", runtime.Bool, -1), info("h", runtime.FP16, -1))
	f.Add([]byte("{\"inputs\":[]}\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastAgrees(t, body, -1, inputs, fuzzOutputs())
		checkFastAgrees(t, body, -1, fuzzInputs(), fuzzOutputs())
		checkFastAgrees(t, body, -1, nil, nil) // a model without inputs
	})
}

// TestDecodeFastTakes lists requests the one-pass decoder must take itself,
// and others it must leave to the tree decoder.
func TestDecodeFastTakes(t *testing.T) {
	t.Parallel()
	x := `{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}`
	s := `{"name":"s","datatype":"BYTES","shape":[1],"data":["a"]}`
	binBody, binLen := withBinary(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}},`+s+`]}`, le(runtime.FP32, 1, 2, 3, 4))
	tests := []struct {
		name      string
		body      string
		headerLen int
		fast      bool
	}{
		{name: "flat", body: `{"inputs":[` + x + `,` + s + `]}`, fast: true},
		{name: "nested and spaced", body: "{ \"id\" : \"a\" ,\n\"inputs\" : [ { \"name\":\"x\", \"datatype\":\"FP32\", \"shape\":[1,4], \"data\":[ [1, 2], [3 ,4] ] }, " + s + " ] }", fast: true},
		{name: "flat with spaces", body: `{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1.0, -2.5 ,3e2,  4]}, ` + s + `]}`, fast: true},
		{name: "data first", body: `{"inputs":[{"data":[1,2,3,4],"name":"x","datatype":"FP32","shape":[1,4]},` + s + `]}`, fast: true},
		{name: "unknown keys", body: `{"x":{"a":[1,{"b":null}],"c":true},"inputs":[` + x + `,` + s + `],"outputs":[{"name":"y"}]}`, fast: true},
		{name: "binary", body: string(binBody), headerLen: binLen, fast: true},
		{name: "escaped name", body: `{"inputs":[{"name":"\u0078","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},` + s + `]}`},
		{name: "null id", body: `{"id":null,"inputs":[` + x + `,` + s + `]}`},
		{name: "duplicate key", body: `{"inputs":[{"name":"x","name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},` + s + `]}`},
		{name: "non-finite", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[NaN,Infinity,-Infinity,4]},` + s + `]}`, fast: true},
		{name: "lowercase nan", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[nan,2,3,4]},` + s + `]}`},
		{name: "Infinity in a string", body: `{"id":"Infinity","inputs":[` + x + `,` + s + `]}`, fast: true},
		{name: "too few elements", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3]},` + s + `]}`},
		{name: "too many elements", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4,5]},` + s + `]}`},
		{name: "trailing comma", body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4,]},` + s + `]}`},
		{name: "truncated", body: `{"inputs":[` + x + `,` + s},
		{name: "a NUL after the object", body: `{"inputs":[` + x + `,` + s + "]}\x00tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hl := tt.headerLen
			if hl == 0 {
				hl = -1
			}
			if got := checkFastAgrees(t, []byte(tt.body), hl, testInputs(), testOutputs()); got != tt.fast {
				t.Errorf("one-pass decoder took it: %v, want %v", got, tt.fast)
			}
		})
	}
}

// TestScanFloatExact compares the scanner's numbers with strconv's, bit
// for bit, over random values written in several ways, short and long
// decimals, float32 midpoints and edge cases.
func TestScanFloatExact(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var texts []string
	for _, s := range []string{"0", "-0", "1", "-1", "0.1", "1e22", "1e23", "9007199254740992", "9007199254740993",
		"3.4028235e38", "3.4028236e38", "1e39", "-1e39", "1.17549435e-38", "1e-45", "1e-46", "4.9e-324", "1e-400",
		"1.7976931348623157e308", "1e309", "123456789012345678901234567890", "0.000000000000000000000000000001",
		"1.00000005960464477539062500000000001", "1.000000059604644775390625", "16777217", "0e99999", "1E+2", "00012.5"} {
		texts = append(texts, s)
	}
	for range 20000 {
		f32 := math.Float32frombits(rng.Uint32())
		f64 := math.Float64frombits(rng.Uint64())
		if math.IsNaN(float64(f32)) || math.IsInf(float64(f32), 0) || math.IsNaN(f64) || math.IsInf(f64, 0) {
			continue
		}
		// A float32 midpoint written as its shortest float64: a decimal
		// whose float64 is the midpoint, the double-rounding trap.
		next := math.Nextafter32(f32, float32(math.Inf(1)))
		mid := (float64(f32) + float64(next)) / 2
		u := rng.Float64()*200 - 100
		texts = append(texts,
			strconv.FormatFloat(float64(f32), 'g', -1, 32), strconv.FormatFloat(float64(f32), 'g', -1, 64),
			strconv.FormatFloat(f64, 'g', -1, 64), strconv.FormatFloat(f64, 'e', 5, 64),
			strconv.FormatFloat(mid, 'g', -1, 64), strconv.FormatFloat(mid, 'e', 20, 64),
			strconv.FormatFloat(u, 'f', rng.IntN(12), 64), strconv.FormatFloat(u, 'g', 1+rng.IntN(17), 64),
			fmt.Sprintf("%d.%de%d", rng.IntN(100000), rng.IntN(1000000), rng.IntN(60)-30))
	}
	for _, text := range texts {
		for _, bits := range []int{32, 64} {
			s := scanner{b: []byte(text + ",")}
			got, ok := s.float(bits)
			want, err := strconv.ParseFloat(text, bits)
			if err != nil && !isRangeErr(err) {
				t.Fatalf("strconv refuses %q: %v", text, err)
			}
			if bits == 32 {
				got, want = float64(float32(got)), float64(float32(want))
			}
			if !ok || math.Float64bits(got) != math.Float64bits(want) || s.pos != len(text) {
				t.Errorf("float(%q, %d) = %v (%b), %v, pos %d; strconv gives %v (%b)", text, bits, got, math.Float64bits(got), ok, s.pos, want, math.Float64bits(want))
			}
		}
	}
}

// TestScanFloatRefuses checks the tokens the scanner leaves to the tree
// decoder, which reports them.
func TestScanFloatRefuses(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "-", "1e", "1.2.3", "--1", "1-2", "e5", "1e+", "1.5e-"} {
		s := scanner{b: []byte(text)}
		if _, ok := s.float(32); ok {
			t.Errorf("float(%q) took it", text)
		}
	}
}

// TestNonFiniteRoundTrip: the NaN, Infinity and -Infinity the server writes
// for every float type decode back, by the one-pass decoder and by the tree
// decoder alike (issue 11, defect 2: Infinity was "malformed JSON").
func TestNonFiniteRoundTrip(t *testing.T) {
	t.Parallel()
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1.5}
	for _, dt := range []runtime.DataType{runtime.FP16, runtime.FP32, runtime.FP64} {
		t.Run(dt.String(), func(t *testing.T) {
			t.Parallel()
			out := runtime.Tensor{Name: "in", DataType: dt, Shape: []int64{4}, Data: le(dt, values...)}
			resp, _ := encodeResponse(nil, "m", 1, "", []runtime.Tensor{out}, nil)
			// The response's data array as the request's (encoding/json
			// cannot read the response).
			_, data, ok := bytes.Cut(resp, []byte(`"data":`))
			if !ok || !bytes.Contains(data, []byte("-Infinity")) {
				t.Fatalf("the response does not write -Infinity: %s", resp)
			}
			data = data[:bytes.IndexByte(data, ']')+1]
			body, headerLen := fmt.Appendf(nil, `{"inputs":[{"name":"in","datatype":%q,"shape":[4],"data":%s}]}`, dt, data), -1
			inputs := []runtime.TensorInfo{info("in", dt, -1)}
			for name, decode := range map[string]func(*fastjson.Parser, []byte, int, []runtime.TensorInfo, []runtime.TensorInfo, *inferRequest) error{
				"decodeRequest": decodeRequest, "tree": decodeTree, "one-pass": fastOnly,
			} {
				var p fastjson.Parser
				var req inferRequest
				if err := decode(&p, body, headerLen, inputs, nil, &req); err != nil {
					t.Fatalf("%s: %v (body %s)", name, err, body)
				}
				if got := req.Inputs[0].Data; !bytes.Equal(got, out.Data) {
					t.Errorf("%s: got %v, want %v", name, got, out.Data)
				}
			}
		})
	}
}
