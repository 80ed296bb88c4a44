package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"time"

	"github.com/infergate/infergate/benchmarks/handwritten"
	"github.com/infergate/infergate/benchmarks/transport"
	"github.com/infergate/infergate/runtime"
)

// server is what the reference servers have in common.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// serveUntilDone serves srv on address until ctx is done, logging the
// address the way infergate does (the suite reads it), then shuts down.
func serveUntilDone(ctx context.Context, srv server, address, name string, stderr io.Writer) error {
	return serveProtocolUntilDone(ctx, srv, address, name, "HTTP", stderr)
}

// serveProtocolUntilDone is serveUntilDone for a server of protocol
// ("HTTP" or "gRPC"), which its log line names.
func serveProtocolUntilDone(ctx context.Context, srv server, address, name, protocol string, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	log.Info("serving KServe v2 over "+protocol, "server", name, "address", ln.Addr().String(), "gomaxprocs", goruntime.GOMAXPROCS(0))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", name, err)
	}
	log.Info("stopped", "server", name)
	return nil
}

// runServeTransport serves the transport-limit server.
func runServeTransport(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-transport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.String("address", "127.0.0.1:8001", "`host:port` to listen on")
	answer := fs.String("answer", "", "`file` whose bytes answer every inference request (default: a small JSON answer)")
	headerLen := fs.Int("header-length", 0, "Inference-Header-Content-Length of the answer, when it is binary")
	metadata := fs.String("metadata", "", "`file` whose bytes answer model metadata requests")
	protocol := fs.String("protocol", "http", "http, or grpc: grpc-go answering ModelInfer with --answer, the wire form of a ModelInferResponse")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *protocol == "grpc" {
		var opts transport.GRPCOptions
		if *answer != "" {
			b, err := os.ReadFile(*answer)
			if err != nil {
				return err
			}
			opts.Answer = b
		}
		return serveProtocolUntilDone(ctx, transport.NewGRPC(opts), *address, "transport-grpc", "gRPC", stderr)
	}
	if *protocol != "http" {
		return fmt.Errorf("serve-transport: --protocol %q: http or grpc", *protocol)
	}
	var opts transport.Options
	opts.HeaderLength = *headerLen
	var err error
	if *answer != "" {
		if opts.Answer, err = os.ReadFile(*answer); err != nil {
			return err
		}
	}
	if *metadata != "" {
		if opts.Metadata, err = os.ReadFile(*metadata); err != nil {
			return err
		}
	}
	return serveUntilDone(ctx, transport.New(opts), *address, "transport", stderr)
}

// runServeHandwritten serves the hand-written baseline server.
func runServeHandwritten(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-handwritten", flag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.String("address", "127.0.0.1:8002", "`host:port` to listen on")
	name := fs.String("model-name", "", "the model's `name` in URLs (required)")
	model := fs.String("model", "", "the model.onnx `file` (required)")
	lib := fs.String("onnxruntime-lib", os.Getenv("ONNXRUNTIME_LIB"), "libonnxruntime.so `path`")
	procs := fs.Int("gomaxprocs", 0, "GOMAXPROCS (0: Go's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *model == "" {
		return errors.New("serve-handwritten: --model-name and --model are required")
	}
	if *procs > 0 {
		goruntime.GOMAXPROCS(*procs)
	}
	env, err := runtime.Open(runtime.Options{LibraryPath: *lib})
	if err != nil {
		return err
	}
	defer env.Close()
	sess, err := env.NewSession(*model, runtime.SessionOptions{})
	if err != nil {
		return err
	}
	defer sess.Close()
	srv, err := handwritten.New(handwritten.Options{Model: *name, Session: sess})
	if err != nil {
		return err
	}
	return serveUntilDone(ctx, srv, *address, "handwritten", stderr)
}
