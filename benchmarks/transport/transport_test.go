package transport

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/gateway/client"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		// fasthttp's process-wide Date header ticker and its worker pool
		// cleaner, which ends by itself after MaxIdleWorkerDuration.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

// start serves s on a loopback port until the test ends.
func start(t *testing.T, s *Server) *client.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c := client.New("http://"+ln.Addr().String(), nil)
	t.Cleanup(func() {
		c.CloseIdleConnections()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestServer(t *testing.T) {
	t.Parallel()
	answer := []byte(`{"model_name":"m","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}}]}`)
	headerLen := len(answer)
	answer = append(answer, 0, 0, 128, 63, 0, 0, 0, 64) // 1.0, 2.0
	c := start(t, New(Options{Answer: answer, HeaderLength: headerLen, Metadata: []byte(`{"name":"m"}`)}))
	ctx := context.Background()

	resp, err := c.Infer(ctx, "m", "", &client.Request{Inputs: []client.Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Data: []float32{3}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Outputs[0].Data.([]float32); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("infer: got %v, want [1 2]", got)
	}
	for _, tc := range []struct {
		desc, method, path string
		body               []byte
		status             int
		want               string
	}{
		{"empty body", http.MethodPost, "/v2/models/m/infer", []byte{}, http.StatusBadRequest, "empty body"},
		{"versioned path", http.MethodPost, "/v2/models/m/versions/3/infer", []byte("x"), http.StatusOK, `"model_name":"m"`},
		{"metadata", http.MethodGet, "/v2/models/m", nil, http.StatusOK, `{"name":"m"}`},
		{"ready", http.MethodGet, "/v2/health/ready", nil, http.StatusOK, ""},
		{"unknown", http.MethodGet, "/nope", nil, http.StatusNotFound, "not found"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			status, body, _, err := c.Do(ctx, tc.method, tc.path, tc.body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %q, want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
}

func TestDefaultAnswerIsAKServeResponse(t *testing.T) {
	t.Parallel()
	c := start(t, New(Options{}))
	status, body, header, err := c.Do(context.Background(), http.MethodPost, "/v2/models/any/infer", []byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DecodeResponse(body, -1); err != nil || status != http.StatusOK || header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q (%v), content type %q", status, body, err, header.Get("Content-Type"))
	}
}
