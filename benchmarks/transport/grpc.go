package transport

import (
	"context"
	"net"

	grpclib "google.golang.org/grpc"

	"github.com/infergate/infergate/benchmarks/load"
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

// NewGRPC returns a GRPCServer.
func NewGRPC(opts GRPCOptions) *GRPCServer {
	answer := &load.Wire{B: opts.Answer}
	if answer.B == nil {
		answer.B = []byte{}
	}
	var sink load.Wire // never written: requests are not decoded
	srv := grpclib.NewServer(
		grpclib.ForceServerCodecV2(load.WireCodec{}),
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
				if err := dec(&sink); err != nil {
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
	return igrpc.StopGracefully(ctx, s.srv)
}
