package transport

import (
	"context"
	"net"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	igrpc "github.com/infergate/infergate/grpc"
)

// GRPCOptions configure a GRPCServer.
type GRPCOptions struct {
	// Answer is the wire form of every ModelInfer response. Default: an
	// empty ModelInferResponse. The suite passes the answer infergate
	// gives to the same request, so both send the same bytes.
	Answer []byte
}

// GRPCServer is the transport-limit server of the KServe v2 gRPC
// protocol: grpc-go, tuned as infergate's gRPC listener is (its windows,
// its stream workers, its message limit), answering every ModelInfer
// call with the same fixed message without decoding the request. What it
// serves on a machine bounds what any grpc-go-based server can serve
// there. It answers ModelInfer only; every other method is unknown.
type GRPCServer struct {
	srv *grpclib.Server
}

// rawMessage is a message left in wire form: a request is not decoded,
// the answer is sent as it is.
type rawMessage struct{ b []byte }

// rawCodec reads no request and writes a rawMessage's bytes. Its name
// is "proto", so calls are ordinary application/grpc ones.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMessage).b)}, nil
}

// Unmarshal leaves the request undecoded: grpc-go has read its bytes
// already, as the HTTP transport reads a body it does not decode.
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

func (rawCodec) Name() string { return "proto" }

// NewGRPC returns a GRPCServer.
func NewGRPC(opts GRPCOptions) *GRPCServer {
	answer := &rawMessage{b: opts.Answer}
	if answer.b == nil {
		answer.b = []byte{}
	}
	srv := grpclib.NewServer(
		grpclib.ForceServerCodecV2(rawCodec{}),
		grpclib.MaxRecvMsgSize(igrpc.DefaultMaxMessageSize),
		grpclib.MaxSendMsgSize(igrpc.DefaultMaxMessageSize),
		grpclib.InitialWindowSize(igrpc.DefaultWindowBytes),
		grpclib.InitialConnWindowSize(igrpc.DefaultConnWindowBytes),
		grpclib.NumStreamWorkers(igrpc.DefaultStreamWorkers),
	)
	srv.RegisterService(&grpclib.ServiceDesc{
		ServiceName: "inference.GRPCInferenceService",
		HandlerType: (*any)(nil),
		Methods: []grpclib.MethodDesc{{
			MethodName: "ModelInfer",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpclib.UnaryServerInterceptor) (any, error) {
				var in rawMessage
				if err := dec(&in); err != nil {
					return nil, err
				}
				return answer, nil
			},
		}},
	}, struct{}{})
	return &GRPCServer{srv: srv}
}

// Serve serves on ln until Shutdown.
func (s *GRPCServer) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting calls and waits for those in flight, or for
// ctx, then closes every connection.
func (s *GRPCServer) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.srv.Stop()
		<-done
		return ctx.Err()
	}
}
