// Command grpcclient calls infergate's KServe v2 gRPC API with the Go
// types generated from Triton's grpc_service.proto: one inference of the
// example repository's mlp, its input sent as raw_input_contents.
//
//	go run ./examples/grpcclient -addr localhost:8001
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/infergate/infergate/grpc/inference"
)

func main() {
	addr := flag.String("addr", "localhost:8001", "infergate's gRPC address")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := inference.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	raw := make([]byte, 0, 16*4) // one row of 16 FP32, little-endian
	for i := 1; i <= 16; i++ {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(i)))
	}
	resp, err := client.ModelInfer(ctx, &inference.ModelInferRequest{
		ModelName: "mlp",
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}},
		},
		RawInputContents: [][]byte{raw},
	})
	if err != nil {
		log.Fatal(err)
	}
	out := resp.Outputs[0]
	fmt.Printf("model %s version %s: %s %s %v =", resp.ModelName, resp.ModelVersion, out.Name, out.Datatype, out.Shape)
	b := resp.RawOutputContents[0]
	for i := 0; i+4 <= len(b); i += 4 {
		fmt.Printf(" %.4f", math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	fmt.Println()
}
