package load

import (
	"context"
	"errors"
	"fmt"
	"strings"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/grpc/inference"
)

// workersPerConn is how many concurrent callers share one gRPC
// connection (HTTP/2 multiplexes them); more get more connections, as a
// fleet of clients would open.
const workersPerConn = 16

// GRPCAddr returns the host:port of a gRPC target given as host:port or
// grpc://host:port.
func GRPCAddr(url string) string {
	return strings.TrimPrefix(url, "grpc://")
}

func dial(addr string) (*grpclib.ClientConn, error) {
	return grpclib.NewClient(GRPCAddr(addr), grpclib.WithTransportCredentials(insecure.NewCredentials()),
		grpclib.WithDefaultCallOptions(grpclib.MaxCallRecvMsgSize(1<<30), grpclib.MaxCallSendMsgSize(1<<30)))
}

// GRPCMetadata asks a KServe v2 gRPC server for a model's metadata, in
// the HTTP client's form (for RandomPayload).
func GRPCMetadata(ctx context.Context, addr, model, version string) (*client.ModelMetadata, error) {
	conn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r, err := inference.NewGRPCInferenceServiceClient(conn).ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: model, Version: version})
	if err != nil {
		return nil, err
	}
	md := &client.ModelMetadata{Name: r.Name, Versions: r.Versions, Platform: r.Platform}
	for _, t := range r.Inputs {
		md.Inputs = append(md.Inputs, client.TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	for _, t := range r.Outputs {
		md.Outputs = append(md.Outputs, client.TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	return md, nil
}

// grpcRequests encodes p's requests for t as ModelInfer requests with
// raw_input_contents, as Triton's clients send them.
func grpcRequests(t Target, p *Payload) ([]*inference.ModelInferRequest, error) {
	if len(p.Requests) == 0 {
		return nil, errors.New("the payload has no typed requests to send over gRPC")
	}
	out := make([]*inference.ModelInferRequest, len(p.Requests))
	for i, r := range p.Requests {
		req := &inference.ModelInferRequest{ModelName: t.Model, ModelVersion: t.Version, Id: r.ID}
		for _, in := range r.Inputs {
			raw, err := client.EncodeBinary(in.Datatype, in.Data)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", in.Name, err)
			}
			req.Inputs = append(req.Inputs, &inference.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape})
			req.RawInputContents = append(req.RawInputContents, raw)
		}
		out[i] = req
	}
	return out, nil
}

// Wire is a message in wire form. The load generator encodes each
// request once and leaves answers undecoded, as the HTTP path sends fixed
// bodies and reads only the status: the figures then show the server, not
// the client's protobuf work on the same cores. The gRPC transport-limit
// server answers with one, and leaves requests undecoded, likewise.
type Wire struct{ B []byte }

// WireCodec sends a *Wire as it is and decodes nothing that comes: the
// caller of Unmarshal has the bytes read already. Its name is "proto", so
// calls are ordinary application/grpc ones.
type WireCodec struct{}

func (WireCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*Wire).B)}, nil
}

func (WireCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

func (WireCodec) Name() string { return "proto" }

const modelInferMethod = "/inference.GRPCInferenceService/ModelInfer"

// RunGRPC is Run over the KServe v2 gRPC protocol: t.URL is the
// server's gRPC address (host:port), the inputs go as raw contents, a
// connection serves up to 16 workers. Status 200 stands for OK; a gRPC
// error counts as a failed call. Requests are encoded once, before the
// run, and answers are not decoded (the first one is, as a probe). The
// result's Protocol is "grpc".
func RunGRPC(ctx context.Context, t Target, p *Payload, opts Options) (*Result, error) {
	reqs, err := grpcRequests(t, p)
	if err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	workers := o.workers()
	conns := make([]*grpclib.ClientConn, (workers+workersPerConn-1)/workersPerConn)
	clients := make([]inference.GRPCInferenceServiceClient, len(conns))
	for i := range conns {
		if conns[i], err = dial(t.URL); err != nil {
			return nil, err
		}
		defer conns[i].Close()
		clients[i] = inference.NewGRPCInferenceServiceClient(conns[i])
	}
	// Probe: a misconfigured run fails at once.
	if _, err := clients[0].ModelInfer(ctx, reqs[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", t.URL, err)
	}
	frozen := make([]Wire, len(reqs))
	for i, req := range reqs {
		if frozen[i].B, err = proto.Marshal(req); err != nil {
			return nil, err
		}
	}
	codec := grpclib.ForceCodecV2(WireCodec{})
	var discard Wire // never written: answers are not decoded
	sent := make([]int, workers)
	for w := range sent {
		sent[w] = w % len(reqs)
	}
	r, err := RunFunc(ctx, opts, func(ctx context.Context, w int) (int, error) {
		i := sent[w]
		sent[w] = (i + 1) % len(reqs)
		cctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		if err := conns[w/workersPerConn].Invoke(cctx, modelInferMethod, &frozen[i], &discard, codec); err != nil {
			if st, ok := status.FromError(err); ok {
				return 0, fmt.Errorf("gRPC %s: %s", st.Code(), st.Message())
			}
			return 0, err
		}
		return 200, nil
	})
	if err != nil {
		return nil, err
	}
	r.URL, r.Model = t.URL, t.Model
	r.Protocol = "grpc"
	r.SetRows(p.Rows)
	return r, nil
}

// GRPCAnswer sends p's first request to the gRPC server at addr and
// returns the answer in wire form (the suite's gRPC transport-limit
// server answers every call with it, so that both send the same bytes).
func GRPCAnswer(ctx context.Context, t Target, p *Payload) ([]byte, error) {
	reqs, err := grpcRequests(t, p)
	if err != nil {
		return nil, err
	}
	conn, err := dial(t.URL)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := inference.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, reqs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.URL, err)
	}
	return proto.Marshal(resp)
}
