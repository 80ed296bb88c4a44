package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	grpclib "google.golang.org/grpc"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/grpc/inference"
)

// echoServer is a KServe v2 gRPC server that answers ModelInfer with its
// raw inputs, as the transport limit does for HTTP.
type echoServer struct {
	inference.UnimplementedGRPCInferenceServiceServer
}

func (echoServer) ModelMetadata(context.Context, *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	return &inference.ModelMetadataResponse{Name: "m", Inputs: []*inference.ModelMetadataResponse_TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}}}, nil
}

func (echoServer) ModelInfer(_ context.Context, r *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	return &inference.ModelInferResponse{ModelName: r.ModelName, RawOutputContents: r.RawInputContents}, nil
}

// TestLoadGRPC: load --protocol grpc reads the metadata and runs over
// gRPC with raw contents.
func TestLoadGRPC(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpclib.NewServer()
	inference.RegisterGRPCInferenceServiceServer(srv, echoServer{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Stop()
		<-done
	}()
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout, stderr bytes.Buffer
	args := []string{"load", "--protocol", "grpc", "--url", ln.Addr().String(), "--model", "m", "--concurrency", "1,20", "--rows", "2",
		"--window", "20ms", "--stable-windows", "2", "--max-windows", "3", "--stability", "0.9", "--json", out}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	b, _ := os.ReadFile(out)
	var results []load.Result
	if err := json.Unmarshal(b, &results); err != nil || len(results) != 2 {
		t.Fatalf("json: %v %s", err, b)
	}
	for _, r := range results {
		if r.Protocol != "grpc" || r.OK == 0 || r.Failed() != 0 || r.Rows != 2 {
			t.Errorf("result: protocol %s, %d ok, %d failed, rows %d", r.Protocol, r.OK, r.Failed(), r.Rows)
		}
	}
	if err := run(context.Background(), []string{"load", "--protocol", "udp", "--url", "x", "--model", "m"}, &stdout, &stderr); err == nil {
		t.Error("an unknown protocol was accepted")
	}
}
