package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// FuzzHTTPRequest sends raw HTTP requests, parsed as fasthttp parses them,
// through the gateway's handler over a real repository (ONNX Runtime
// running the small MLP, an identity and the two-input model): the
// request line, every header the gateway reads (Inference-Header-Content-
// Length, Content-Encoding, the routing headers) and the body. Every
// answer is a status the gateway documents; an error is a KServe error
// body; nothing is a 500 (these models never fail on their own); nothing
// panics (the handler's recovery would answer 500).
func FuzzHTTPRequest(f *testing.F) {
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(f)})
	if err != nil {
		f.Fatal(err)
	}
	defer env.Close()
	root := f.TempDir()
	for _, m := range []string{"mlp", "identity_fp32", "multi_io", "strings"} {
		runtimetest.CopyDir(f, filepath.Join(runtimetest.Models(f), m), filepath.Join(root, m))
	}
	repo, err := repository.Open(context.Background(), repository.Options{Root: root, Runtime: env})
	if err != nil {
		f.Fatal(err)
	}
	defer repo.Close()
	s := New(repo, Options{MaxRequestBodySize: 1 << 20, MaxJSONSize: 64 << 10, ModelControl: "explicit"})
	defer s.Shutdown(context.Background())
	h := s.Handler()

	for _, seed := range []string{
		"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 104\r\n\r\n" +
			`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}`,
		"POST /v2/models/identity_fp32/versions/1/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: 94\r\nContent-Length: 110\r\n\r\n" +
			`{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}` + "\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@",
		"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd",
		"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nX-Infergate-Version: 1\r\nX-Infergate-Label: stable\r\nContent-Length: 2\r\n\r\n{}",
		"POST /v2/models/multi_io/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 138\r\n\r\n" +
			`{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,3],"datatype":"INT64","data":[1,2,3]}]}`,
		"POST /v2/models/strings/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 75\r\n\r\n" +
			`{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["Ab","\u00e9"]}]}`,
		"GET /v2/models/mlp/versions/2/config HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"ready\": true}",
		"PUT /v2/repository/models/mlp/routing HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\n\r\n{\"split\":[{\"version\":1,\"weight\":100}]}",
		"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	documented := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 415: true, 429: true, 431: true, 503: true, 504: true}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return // fasthttp refuses it before any handler
		}
		if uri := req.RequestURI(); bytes.Contains(uri, []byte("/load")) || bytes.Contains(uri, []byte("/unload")) ||
			(req.Header.IsPut() && bytes.Contains(uri, []byte("/repository/"))) {
			return // loads, unloads and uploads change the repository for later inputs
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, addr, nil)
		h(&ctx)
		status := ctx.Response.StatusCode()
		if !documented[status] {
			t.Fatalf("status %d for %q: %s", status, raw, ctx.Response.Body())
		}
		if status >= 400 {
			var e struct {
				Error *string `json:"error"`
			}
			if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Error == nil || *e.Error == "" {
				t.Fatalf("status %d without a KServe error body for %q: %q", status, raw, ctx.Response.Body())
			}
		}
		if status == http.StatusOK && bytes.HasSuffix(req.URI().Path(), []byte("/infer")) && len(ctx.Response.Body()) == 0 {
			t.Fatalf("200 with no body for %q", raw)
		}
	})
}
