package transport

import (
	"context"
	"net"
	"testing"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/infergate/infergate/grpc/inference"
)

func TestGRPCServer(t *testing.T) {
	t.Parallel()
	want := &inference.ModelInferResponse{ModelName: "m", ModelVersion: "1",
		Outputs:           []*inference.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "FP32", Shape: []int64{1, 2}}},
		RawOutputContents: [][]byte{{0, 0, 128, 63, 0, 0, 0, 64}}}
	answer, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	s := NewGRPC(GRPCOptions{Answer: answer})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	conn, err := grpclib.NewClient(ln.Addr().String(), grpclib.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := inference.NewGRPCInferenceServiceClient(conn)
	ctx := context.Background()

	// Any request gets the fixed answer, undecoded.
	for _, req := range []*inference.ModelInferRequest{
		{ModelName: "m", Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}}}, RawInputContents: [][]byte{{0, 0, 64, 64}}},
		{ModelName: "other"},
	} {
		got, err := c.ModelInfer(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", req.GetModelName(), got, want)
		}
	}
	// It serves nothing else.
	if _, err := c.ServerLive(ctx, &inference.ServerLiveRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ServerLive: got %v, want UNIMPLEMENTED", err)
	}
	conn.Close()
	if err := s.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := <-served; err != nil {
		t.Error(err)
	}
}
