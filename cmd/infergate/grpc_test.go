package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/infergate/infergate/grpc/inference"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// startGRPC serves repo (mutate changes the config) and returns a gRPC
// client of its gRPC listener; the server stops when the test ends.
func startGRPC(t *testing.T, repo string, mutate func(*Config)) inference.GRPCInferenceServiceClient {
	t.Helper()
	addrs := make(chan net.Addr, 1)
	startServer(t, repo, func(c *Config) {
		c.onGRPCListen = func(a net.Addr) { addrs <- a }
		if mutate != nil {
			mutate(c)
		}
	})
	return dialGRPC(t, (<-addrs).String())
}

func dialGRPC(t *testing.T, addr string) inference.GRPCInferenceServiceClient {
	t.Helper()
	conn, err := grpclib.NewClient(addr, grpclib.WithTransportCredentials(insecure.NewCredentials()),
		grpclib.WithDefaultCallOptions(grpclib.MaxCallRecvMsgSize(256<<20), grpclib.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return inference.NewGRPCInferenceServiceClient(conn)
}

// rawOf encodes data (a slice of one of datatypeCases' element types) as
// raw contents: little-endian, FP16 from float32, BYTES length-prefixed.
func rawOf(t *testing.T, datatype string, data any) []byte {
	t.Helper()
	var b []byte
	switch d := data.(type) {
	case []bool:
		for _, v := range d {
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []string:
		for _, s := range d {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	case []float32:
		for _, v := range d {
			if datatype == "FP16" {
				b = binary.LittleEndian.AppendUint16(b, half(t, v))
			} else {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
	default:
		var buf bytes.Buffer
		if err := binary.Write(&buf, binary.LittleEndian, data); err != nil {
			t.Fatal(err)
		}
		b = buf.Bytes()
	}
	return b
}

// half converts a float32 that FP16 holds exactly (zero or normal).
func half(t *testing.T, f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	if f == 0 {
		return sign
	}
	exp := int((bits>>23)&0xff) - 127 + 15
	mant := bits & 0x7fffff
	if exp <= 0 || exp >= 31 || mant&0x1fff != 0 {
		t.Fatalf("%g is not an exact normal FP16", f)
	}
	return sign | uint16(exp)<<10 | uint16(mant>>13)
}

// contentsOf returns data as typed contents; nil for FP16 (none).
func contentsOf(data any, datatype string) *inference.InferTensorContents {
	c := &inference.InferTensorContents{}
	switch d := data.(type) {
	case []bool:
		c.BoolContents = d
	case []int8:
		for _, v := range d {
			c.IntContents = append(c.IntContents, int32(v))
		}
	case []int16:
		for _, v := range d {
			c.IntContents = append(c.IntContents, int32(v))
		}
	case []int32:
		c.IntContents = d
	case []int64:
		c.Int64Contents = d
	case []uint8:
		for _, v := range d {
			c.UintContents = append(c.UintContents, uint32(v))
		}
	case []uint16:
		for _, v := range d {
			c.UintContents = append(c.UintContents, uint32(v))
		}
	case []uint32:
		c.UintContents = d
	case []uint64:
		c.Uint64Contents = d
	case []float32:
		if datatype == "FP16" {
			return nil
		}
		c.Fp32Contents = d
	case []float64:
		c.Fp64Contents = d
	case []string:
		for _, s := range d {
			c.BytesContents = append(c.BytesContents, []byte(s))
		}
	}
	return c
}

// TestGRPCDatatypes: every datatype through the identity models over
// gRPC, as raw_input_contents and as typed contents (FP16 has none: raw
// only); the raw output is the input exactly (issue 14).
func TestGRPCDatatypes(t *testing.T) {
	g := startGRPC(t, runtimetest.Models(t), nil)
	ctx := context.Background()
	for _, tc := range datatypeCases {
		for _, form := range []string{"raw", "typed"} {
			t.Run(tc.datatype+"/"+form, func(t *testing.T) {
				t.Parallel()
				raw := rawOf(t, tc.datatype, tc.data)
				in := &inference.ModelInferRequest_InferInputTensor{Name: "INPUT0", Datatype: tc.datatype, Shape: []int64{2, 4}}
				req := &inference.ModelInferRequest{ModelName: tc.model, Id: "g-" + tc.datatype, Inputs: []*inference.ModelInferRequest_InferInputTensor{in}}
				if form == "raw" {
					req.RawInputContents = [][]byte{raw}
				} else if in.Contents = contentsOf(tc.data, tc.datatype); in.Contents == nil {
					_, err := g.ModelInfer(ctx, req)
					if status.Code(err) != codes.InvalidArgument {
						t.Fatalf("FP16 as typed contents: %v, want InvalidArgument", err)
					}
					return
				}
				resp, err := g.ModelInfer(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.ModelName != tc.model || resp.ModelVersion != "1" || resp.Id != req.Id || len(resp.Outputs) != 1 || len(resp.RawOutputContents) != 1 {
					t.Fatalf("got %v", resp)
				}
				o := resp.Outputs[0]
				if o.Name != "OUTPUT0" || o.Datatype != tc.datatype || !reflect.DeepEqual(o.Shape, []int64{2, 4}) {
					t.Fatalf("output %s %s %v", o.Name, o.Datatype, o.Shape)
				}
				if !bytes.Equal(resp.RawOutputContents[0], raw) {
					t.Errorf("got %x, want %x", resp.RawOutputContents[0], raw)
				}
			})
		}
	}
}

// mlpInput is the MLP's input of rows rows, raw.
func mlpInput(rows int) *inference.ModelInferRequest {
	data := make([]float32, rows*16)
	for i := range data {
		data[i] = float32(i%16+1) / 16
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, data)
	return &inference.ModelInferRequest{ModelName: "mlp",
		Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{int64(rows), 16}}},
		RawInputContents: [][]byte{buf.Bytes()}}
}

// TestGRPCService: health, metadata, config, versions and labels (as
// metadata, as over HTTP's headers), the same outputs as HTTP's, a table
// of bad requests with their codes and HTTP's texts, and a stream
// answered in order with its errors in place (issue 14).
func TestGRPCService(t *testing.T) {
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "identity_fp32"), filepath.Join(root, "identity_fp32"))
	addrs := make(chan net.Addr, 1)
	cl := startServer(t, root, func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"*"}
		c.onGRPCListen = func(a net.Addr) { addrs <- a }
	})
	g := dialGRPC(t, (<-addrs).String())
	ctx := context.Background()

	if r, err := g.ServerLive(ctx, &inference.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("ServerLive: %v %v", r, err)
	}
	if r, err := g.ServerReady(ctx, &inference.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ServerReady: %v %v", r, err)
	}
	if r, err := g.ServerMetadata(ctx, &inference.ServerMetadataRequest{}); err != nil || r.Name != "infergate" {
		t.Errorf("ServerMetadata: %v %v", r, err)
	}
	md, err := g.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: "mlp"})
	if err != nil || md.Platform != "onnxruntime_onnx" || !reflect.DeepEqual(md.Versions, []string{"1", "2"}) || md.Inputs[0].Name != "input" ||
		!reflect.DeepEqual(md.Inputs[0].Shape, []int64{-1, 16}) || md.Outputs[0].Datatype != "FP32" {
		t.Errorf("ModelMetadata: %v %v", md, err)
	}
	if r, err := g.ModelReady(ctx, &inference.ModelReadyRequest{Name: "mlp", Version: "2"}); err != nil || !r.Ready {
		t.Errorf("ModelReady: %v %v", r, err)
	}
	if _, err := g.ModelReady(ctx, &inference.ModelReadyRequest{Name: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady of an unknown model: %v", err)
	}
	if r, err := g.ModelConfig(ctx, &inference.ModelConfigRequest{Name: "mlp"}); err != nil || r.Config.Name != "mlp" || r.Config.Platform != "onnxruntime_onnx" ||
		len(r.Config.Input) != 1 || r.Config.Input[0].DataType != inference.DataType_TYPE_FP32 {
		t.Errorf("ModelConfig: %v %v", r, err)
	}

	// The same outputs as over HTTP, for each version.
	for _, version := range []string{"1", "2"} {
		req := mlpInput(3)
		req.ModelVersion = version
		resp, err := g.ModelInfer(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","data":[`
		for i := range 48 {
			if i > 0 {
				body += ","
			}
			body += fmt.Sprint(float32(i%16+1) / 16)
		}
		body += `]}],"parameters":{"binary_data_output":true}}`
		status, b, h, herr := cl.Do(ctx, "POST", "/v2/models/mlp/versions/"+version+"/infer", []byte(body), nil)
		if herr != nil || status != 200 {
			t.Fatalf("HTTP: %d %v %s", status, herr, b)
		}
		jsonLen := 0
		fmt.Sscan(h.Get("Inference-Header-Content-Length"), &jsonLen)
		if !bytes.Equal(resp.RawOutputContents[0], b[jsonLen:]) || resp.ModelVersion != version {
			t.Errorf("version %s: gRPC %x, HTTP %x", version, resp.RawOutputContents[0], b[jsonLen:])
		}
	}
	// x-request-id: the client's is echoed in the response header; else one is made.
	var hdr metadata.MD
	if _, err := g.ModelInfer(metadata.AppendToOutgoingContext(ctx, "x-request-id", "req-42"), mlpInput(1), grpclib.Header(&hdr)); err != nil || !slices.Equal(hdr.Get("x-request-id"), []string{"req-42"}) {
		t.Errorf("x-request-id: %v %v", hdr, err)
	}
	if _, err := g.ModelInfer(ctx, mlpInput(1), grpclib.Header(&hdr)); err != nil || len(hdr.Get("x-request-id")) != 1 || hdr.Get("x-request-id")[0] == "" {
		t.Errorf("generated x-request-id: %v %v", hdr, err)
	}
	// A label, set over HTTP, chosen by metadata.
	if status, b, _, err := cl.Do(ctx, "PUT", "/v2/repository/models/mlp/labels/stable", []byte(`{"version": 1}`), nil); err != nil || status != 200 {
		t.Fatalf("PUT label: %d %v %s", status, err, b)
	}
	resp, err := g.ModelInfer(metadata.AppendToOutgoingContext(ctx, "x-model-label", "stable"), mlpInput(1))
	if err != nil || resp.ModelVersion != "1" {
		t.Errorf("by label: %v %v", resp.GetModelVersion(), err)
	}

	tensor := func(name, dt string, shape ...int64) *inference.ModelInferRequest_InferInputTensor {
		return &inference.ModelInferRequest_InferInputTensor{Name: name, Datatype: dt, Shape: shape}
	}
	good := mlpInput(1).RawInputContents[0]
	for _, tc := range []struct {
		name string
		req  *inference.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"unknown model", &inference.ModelInferRequest{ModelName: "nosuch"}, codes.NotFound, `unknown model "nosuch"`},
		{"bad version", &inference.ModelInferRequest{ModelName: "mlp", ModelVersion: "x"}, codes.InvalidArgument, `invalid model version "x": want a positive integer`},
		{"no such version", &inference.ModelInferRequest{ModelName: "mlp", ModelVersion: "9", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "FP32", 1, 16)}, RawInputContents: [][]byte{good}}, codes.NotFound, ""},
		{"no inputs", &inference.ModelInferRequest{ModelName: "mlp"}, codes.InvalidArgument, `"inputs" must not be empty`},
		{"unknown input", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("x", "FP32", 1, 16)}, RawInputContents: [][]byte{good}}, codes.InvalidArgument, `unknown input "x"`},
		{"wrong datatype", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "INT32", 1, 16)}, RawInputContents: [][]byte{good}}, codes.InvalidArgument, `input "input": expected datatype FP32, got INT32`},
		{"wrong shape", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "FP32", 1, 15)}, RawInputContents: [][]byte{good}}, codes.InvalidArgument, `input "input": expected shape [-1,16], got [1,15]`},
		{"raw of the wrong size", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "FP32", 2, 16)}, RawInputContents: [][]byte{good}}, codes.InvalidArgument, `input "input": shape [2,16] of FP32 needs 128 bytes, got 64 raw bytes`},
		{"raw for some inputs", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "FP32", 1, 16)}, RawInputContents: [][]byte{good, good}}, codes.InvalidArgument, "raw_input_contents has 2 entries for 1 inputs: give every input raw, in order, or none"},
		{"typed of the wrong count", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1}}}}}, codes.InvalidArgument, `input "input": shape [1,16] needs 16 elements, got 1`},
		{"unknown output", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "FP32", 1, 16)}, RawInputContents: [][]byte{good},
			Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{{Name: "nosuch"}}}, codes.InvalidArgument, `unknown output "nosuch"`},
		{"bad timeout", &inference.ModelInferRequest{ModelName: "mlp", Inputs: []*inference.ModelInferRequest_InferInputTensor{tensor("input", "FP32", 1, 16)}, RawInputContents: [][]byte{good},
			Parameters: map[string]*inference.InferParameter{"timeout": {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "soon"}}}}, codes.InvalidArgument, `parameter "timeout" must be a non-negative integer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.ModelInfer(ctx, tc.req)
			st, _ := status.FromError(err)
			if st.Code() != tc.code || (tc.msg != "" && st.Message() != tc.msg) {
				t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
	// The HTTP text of the same mistake is the same.
	if status, b, _, _ := cl.Do(ctx, "POST", "/v2/models/nosuch/infer", []byte(`{"inputs":[]}`), nil); status != 404 || errorBody(t, b) != `unknown model "nosuch"` {
		t.Errorf("HTTP's unknown model: %d %s", status, b)
	}

	// A stream: answered in order, an error in its place.
	stream, err := g.ModelStreamInfer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		req := mlpInput(1)
		req.Id = fmt.Sprint(i)
		if i == 2 {
			req.ModelName = "nosuch"
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i := range 5 {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i == 2 && r.ErrorMessage != `unknown model "nosuch"`:
			t.Errorf("stream response 2: %q, want the error", r.ErrorMessage)
		case i != 2 && (r.ErrorMessage != "" || r.InferResponse.Id != fmt.Sprint(i) || len(r.InferResponse.RawOutputContents) != 1):
			t.Errorf("stream response %d: %v", i, r)
		}
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("the stream did not end")
	}
	text := scrapeMetrics(t, cl)
	if !bytes.Contains([]byte(text), []byte(`infergate_requests_total{code="OK",model="mlp",protocol="grpc",version="1"}`)) {
		t.Error("gRPC requests are not counted with protocol grpc")
	}
}

// TestGRPCRepository: the repository RPCs need the admin token as
// authorization metadata where loopback is not trusted: Unauthenticated
// without one, PermissionDenied for a read token on a write call; a
// load and an unload through them work (issue 14).
func TestGRPCRepository(t *testing.T) {
	dir := t.TempDir()
	writeTok, readTok := filepath.Join(dir, "w"), filepath.Join(dir, "r")
	writeFile(t, writeTok, []byte("w-token-1234"))
	writeFile(t, readTok, []byte("r-token-5678"))
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	g := startGRPC(t, root, func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"*"}
		c.Admin.TrustLoopback = false
		c.Admin.Tokens = []AdminTokenConfig{{"ci", writeTok, "write"}, {"dash", readTok, "read"}}
	})
	with := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
	if _, err := g.RepositoryIndex(context.Background(), &inference.RepositoryIndexRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("index without a token: %v", err)
	}
	if _, err := g.RepositoryIndex(with("wrong"), &inference.RepositoryIndexRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("index with a wrong token: %v", err)
	}
	idx, err := g.RepositoryIndex(with("r-token-5678"), &inference.RepositoryIndexRequest{Ready: true})
	if err != nil || len(idx.Models) != 2 || idx.Models[0].State != "READY" {
		t.Errorf("index with the read token: %v %v", idx, err)
	}
	if _, err := g.RepositoryModelUnload(with("r-token-5678"), &inference.RepositoryModelUnloadRequest{ModelName: "mlp"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("unload with the read token: %v", err)
	}
	if _, err := g.RepositoryModelUnload(with("w-token-1234"), &inference.RepositoryModelUnloadRequest{ModelName: "mlp"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unload", func() bool {
		r, err := g.ModelReady(context.Background(), &inference.ModelReadyRequest{Name: "mlp"})
		return err == nil && !r.Ready
	})
	if _, err := g.RepositoryModelLoad(with("w-token-1234"), &inference.RepositoryModelLoadRequest{ModelName: "mlp"}); err != nil {
		t.Fatal(err)
	}
	if r, err := g.ModelReady(context.Background(), &inference.ModelReadyRequest{Name: "mlp"}); err != nil || !r.Ready {
		t.Errorf("after the load: %v %v", r, err)
	}
	if _, err := g.RepositoryModelLoad(with("w-token-1234"), &inference.RepositoryModelLoadRequest{ModelName: "mlp",
		Parameters: map[string]*inference.ModelRepositoryParameter{"file:1/model.onnx": {ParameterChoice: &inference.ModelRepositoryParameter_BytesParam{BytesParam: []byte("x")}}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a load with files and no config: %v", err)
	}
}

// TestGRPCGracefulStop: a stop under load answers every call that the
// server accepted, and a stream open across it until its client closes
// it; calls after it are refused as Unavailable, never broken (issue 14).
func TestGRPCGracefulStop(t *testing.T) {
	addrs := make(chan net.Addr, 1)
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.onGRPCListen = func(a net.Addr) { addrs <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, slog.New(slog.DiscardHandler), nil) }()
	g := dialGRPC(t, (<-addrs).String())
	var ok, refused, broken atomic.Int64
	var firstBroken atomic.Value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := g.ModelInfer(cctx, mlpInput(1))
				ccancel()
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.Unavailable:
					refused.Add(1)
				default:
					broken.Add(1)
					firstBroken.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	// A stream open across the stop keeps being answered until its
	// client closes it: the stop drains streams too.
	stream, err := g.ModelStreamInfer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	streamed := func(what string) {
		t.Helper()
		if err := stream.Send(mlpInput(1)); err != nil {
			t.Fatalf("stream send %s: %v", what, err)
		}
		if r, err := stream.Recv(); err != nil || r.ErrorMessage != "" {
			t.Fatalf("stream answer %s: %v %v", what, r, err)
		}
	}
	streamed("before the stop")
	time.Sleep(500 * time.Millisecond)
	cancel()
	time.Sleep(200 * time.Millisecond) // the stop is under way: new calls are refused
	for range 3 {
		streamed("during the stop")
	}
	stream.CloseSend()
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("the stream ended with %v, want EOF", err)
	}
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("serve: %v", err)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d answered, %d refused after the stop, %d broken", ok.Load(), refused.Load(), broken.Load())
	if broken.Load() > 0 || ok.Load() == 0 {
		t.Errorf("%d calls broken (first: %v), %d answered", broken.Load(), firstBroken.Load(), ok.Load())
	}
}

// TestGRPCExample runs the README's Go client, examples/grpcclient,
// against the example repository.
func TestGRPCExample(t *testing.T) {
	root := runtimetest.Root(t)
	addrs := make(chan net.Addr, 1)
	startServer(t, filepath.Join(root, "configs", "example-repository"), func(c *Config) { c.onGRPCListen = func(a net.Addr) { addrs <- a } })
	addr := (<-addrs).String()
	bin := filepath.Join(t.TempDir(), "grpcclient")
	if out, err := exec.Command("go", "build", "-C", root, "-o", bin, "./examples/grpcclient").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-addr", addr).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "model mlp version 1: ") {
		t.Fatalf("grpcclient: %v\n%s", err, out)
	}
}

// TestStatistics: Triton's statistics extension over HTTP (GET
// .../stats, as perf_analyzer reads it) and gRPC (ModelStatistics)
// gives the same counts of the calls made over both (issue 14).
func TestStatistics(t *testing.T) {
	addrs := make(chan net.Addr, 1)
	cl := startServer(t, runtimetest.Models(t), func(c *Config) { c.onGRPCListen = func(a net.Addr) { addrs <- a } })
	g := dialGRPC(t, (<-addrs).String())
	ctx := context.Background()
	for range 3 {
		if status, b, _, err := cl.Do(ctx, "POST", "/v2/models/mlp/versions/2/infer", mlpBody, nil); err != nil || status != 200 {
			t.Fatalf("HTTP: %d %v %s", status, err, b)
		}
		req := mlpInput(2)
		req.ModelVersion = "2"
		if _, err := g.ModelInfer(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	bad := mlpInput(1)
	bad.ModelVersion, bad.Inputs[0].Datatype = "2", "INT32"
	if _, err := g.ModelInfer(ctx, bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("the bad call: %v", err)
	}
	var doc struct {
		ModelStats []struct {
			Name, Version  string
			LastInference  int64                                 `json:"last_inference"`
			InferenceCount uint64                                `json:"inference_count"`
			Execution      uint64                                `json:"execution_count"`
			InferenceStats map[string]struct{ Count, Ns uint64 } `json:"inference_stats"`
		} `json:"model_stats"`
	}
	status, b, _, err := cl.Do(ctx, "GET", "/v2/models/mlp/versions/2/stats", nil, nil)
	if err != nil || status != 200 {
		t.Fatalf("stats: %d %v %s", status, err, b)
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.ModelStats) != 1 {
		t.Fatalf("stats: %v %s", err, b)
	}
	st := doc.ModelStats[0]
	is := st.InferenceStats
	if st.Name != "mlp" || st.Version != "2" || st.LastInference == 0 || st.InferenceCount != 9 || st.Execution != 6 ||
		is["success"].Count != 6 || is["fail"].Count != 1 || is["success"].Ns == 0 || is["compute_infer"].Count != 6 || is["compute_infer"].Ns == 0 {
		t.Errorf("HTTP stats: %s", b)
	}
	gs, err := g.ModelStatistics(ctx, &inference.ModelStatisticsRequest{Name: "mlp", Version: "2"})
	if err != nil || len(gs.ModelStats) != 1 {
		t.Fatalf("ModelStatistics: %v %v", gs, err)
	}
	m := gs.ModelStats[0]
	if m.InferenceCount != st.InferenceCount || m.ExecutionCount != st.Execution || m.InferenceStats.Success.Count != 6 || m.InferenceStats.Fail.Count != 1 {
		t.Errorf("gRPC stats %v, HTTP's %s", m, b)
	}
	if status, b, _, _ := cl.Do(ctx, "GET", "/v2/models/stats", nil, nil); status != 200 || !bytes.Contains(b, []byte(`"name":"identity_fp32"`)) {
		t.Errorf("every model's stats: %d %s", status, b)
	}
	if status, _, _, _ := cl.Do(ctx, "GET", "/v2/models/nosuch/stats", nil, nil); status != 404 {
		t.Errorf("an unknown model's stats: %d", status)
	}
}

// TestGRPCTenantsAndTokens: over gRPC the HTTP API's inference tokens and
// tenant limits apply, with the same rules: UNAUTHENTICATED without a
// token, the token names the tenant whatever x-tenant says, and a tenant
// past its rate gets RESOURCE_EXHAUSTED while another is unaffected;
// with no token the x-tenant metadata names the tenant (issue 14).
func TestGRPCTenantsAndTokens(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "batch.token")
	writeFile(t, tok, []byte("g-batch-token"))
	for _, withTokens := range []bool{true, false} {
		t.Run(fmt.Sprintf("tokens=%v", withTokens), func(t *testing.T) {
			doc := "tenants:\n  limits:\n    - {name: batchjob, rate_per_second: 0.001, burst: 1}\n    - {name: search, rate_per_second: 10000}\n"
			if withTokens {
				doc += "inference:\n  tokens: [{name: batch, token_file: " + tok + ", tenant: batchjob}, {name: search, token_file: " + tok + ".s}]\n"
				writeFile(t, tok+".s", []byte("g-search-token"))
			}
			g := startGRPC(t, runtimetest.Models(t), func(c *Config) {
				if err := decodeConfig([]byte(doc), c); err != nil {
					t.Fatal(err)
				}
			})
			call := func(token, tenant string) codes.Code {
				t.Helper()
				ctx := context.Background()
				if token != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
				}
				if tenant != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "x-tenant", tenant)
				}
				_, err := g.ModelInfer(ctx, mlpInput(1))
				return status.Code(err)
			}
			if withTokens {
				if got := call("", "search"); got != codes.Unauthenticated {
					t.Errorf("no token: %v", got)
				}
				if got := call("g-batch-token", ""); got != codes.OK {
					t.Errorf("batch within its burst: %v", got)
				}
				if got := call("g-batch-token", "search"); got != codes.ResourceExhausted {
					t.Errorf("batch's token naming tenant search past its burst: %v", got)
				}
				if got := call("g-search-token", "batchjob"); got != codes.OK {
					t.Errorf("search's token: %v", got)
				}
				return
			}
			if got := call("", "batchjob"); got != codes.OK {
				t.Errorf("batchjob within its burst: %v", got)
			}
			if got := call("", "batchjob"); got != codes.ResourceExhausted {
				t.Errorf("batchjob past its burst: %v", got)
			}
			if got := call("", "search"); got != codes.OK {
				t.Errorf("search: %v", got)
			}
		})
	}
}

// TestGRPCQueueFull floods a one-request queue over gRPC: the calls that
// do not fit get UNAVAILABLE with the queue-full text, the others
// succeed, and a malformed call sent meanwhile gets the same refusal while
// the queue is full (it is checked before the inputs are decoded) and
// INVALID_ARGUMENT otherwise.
func TestGRPCQueueFull(t *testing.T) {
	g := startGRPC(t, batchedRepo(t, "max_batch_size: 1\ninstance_group: [{count: 1}]\ndynamic_batching: {default_queue_policy: {max_queue_size: 1}}\n"), nil)
	const full = `model "mlp" version 1: queue is full (1 requests): retry later`
	req := mlpInput(1)
	req.ModelName = "mlp"
	bad := mlpInput(1)
	bad.ModelName = "mlp"
	bad.Inputs[0].Shape = []int64{1, 15}
	var mu sync.Mutex
	codesOf := map[string]map[codes.Code]int{"valid": {}, "malformed": {}}
	count := func(kind string, err error, want codes.Code) {
		st := status.Convert(err)
		if st.Code() != want && !(st.Code() == codes.Unavailable && st.Message() == full) {
			t.Errorf("%s call: %v %q", kind, st.Code(), st.Message())
		}
		mu.Lock()
		codesOf[kind][st.Code()]++
		mu.Unlock()
	}
	flooding := make(chan struct{})
	malformedDone := repeat(flooding, 4, func() bool {
		_, err := g.ModelInfer(context.Background(), bad)
		count("malformed", err, codes.InvalidArgument)
		return true
	})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 16 {
				_, err := g.ModelInfer(context.Background(), req)
				count("valid", err, codes.OK)
			}
		})
	}
	wg.Wait()
	close(flooding)
	malformedDone()
	t.Logf("codes: %v", codesOf)
	if codesOf["valid"][codes.Unavailable] == 0 || codesOf["valid"][codes.OK] == 0 {
		t.Errorf("valid calls got %v, want both OK and UNAVAILABLE", codesOf["valid"])
	}
	if codesOf["malformed"][codes.Unavailable] == 0 {
		t.Errorf("malformed calls got %v: none was refused for the full queue before its inputs were decoded", codesOf["malformed"])
	}
}
