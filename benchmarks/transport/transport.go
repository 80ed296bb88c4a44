// Package transport is the benchmark suite's transport-limit server: a
// fasthttp handler that reads each inference request's body and answers
// the same fixed response, without decoding, batching or computing
// anything. What it serves on a machine bounds what any fasthttp-based
// server can serve there; infergate is measured against it.
//
// It answers POST /v2/models/{m}[/versions/{v}]/infer with the fixed
// answer, GET /v2/models/{m}[/versions/{v}] with the fixed metadata, and
// GET /v2/health/{live,ready} with 200. It must never do per-request work
// beyond reading the body: that is its point.
package transport

import (
	"bytes"
	"context"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Options configure a Server.
type Options struct {
	// Answer is the body of every inference response. Default: a KServe
	// v2 response with one empty FP32 output. The suite passes the answer
	// infergate gives to the same request, so both send the same bytes.
	Answer []byte
	// HeaderLength, when positive, is sent as the answer's
	// Inference-Header-Content-Length (a binary answer). Default 0: JSON.
	HeaderLength int
	// Metadata is the body of model metadata answers. Default: `{}`.
	Metadata []byte
}

// Server is the transport-limit server.
type Server struct {
	srv *fasthttp.Server
}

// New returns a Server.
func New(opts Options) *Server {
	if opts.Answer == nil {
		opts.Answer = []byte(`{"model_name":"m","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[0],"data":[]}]}`)
	}
	if opts.Metadata == nil {
		opts.Metadata = []byte(`{}`)
	}
	contentType := "application/json"
	headerLen := ""
	if opts.HeaderLength > 0 {
		contentType = "application/octet-stream"
		headerLen = strconv.Itoa(opts.HeaderLength)
	}
	infer := []byte("/infer")
	handler := func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		switch {
		case ctx.IsPost() && bytes.HasSuffix(path, infer):
			if len(ctx.PostBody()) == 0 {
				ctx.SetStatusCode(fasthttp.StatusBadRequest)
				ctx.SetBodyString(`{"error":"empty body"}`)
				return
			}
			ctx.SetContentType(contentType)
			if headerLen != "" {
				ctx.Response.Header.Set("Inference-Header-Content-Length", headerLen)
			}
			ctx.SetBody(opts.Answer)
		case ctx.IsGet() && bytes.HasPrefix(path, []byte("/v2/health/")):
		case ctx.IsGet() && bytes.HasPrefix(path, []byte("/v2/models/")):
			ctx.SetContentType("application/json")
			ctx.SetBody(opts.Metadata)
		default:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			ctx.SetBodyString(`{"error":"not found"}`)
		}
	}
	return &Server{srv: &fasthttp.Server{Handler: handler, Name: "transport", NoDefaultContentType: true, CloseOnShutdown: true}}
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits for the requests in
// flight, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }
