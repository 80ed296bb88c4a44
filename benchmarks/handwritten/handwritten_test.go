package handwritten

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// serveMLP serves the small test MLP (16 → 32 → 4) until the test ends.
func serveMLP(t *testing.T) *client.Client {
	t.Helper()
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(t)})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := env.NewSession(filepath.Join(runtimetest.Models(t), "mlp", "1", "model.onnx"), runtime.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Model: "mlp", Session: sess})
	if err != nil {
		t.Fatal(err)
	}
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
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: got %v", err)
		}
		sess.Close()
		env.Close()
	})
	return c
}

func TestInfer(t *testing.T) {
	c := serveMLP(t)
	ctx := context.Background()
	row := make([]float32, 32)
	for i := range row {
		row[i] = float32(i) / 32
	}
	var first []float32
	for _, binary := range []bool{false, true} {
		resp, err := c.Infer(ctx, "mlp", "", &client.Request{
			ID:           "r1",
			Inputs:       []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{2, 16}, Data: row, Binary: binary}},
			BinaryOutput: binary,
		})
		if err != nil {
			t.Fatalf("binary %v: %v", binary, err)
		}
		out := resp.Outputs[0]
		data := out.Data.([]float32)
		if resp.ID != "r1" || len(out.Shape) != 2 || out.Shape[0] != 2 || len(data) != 8 || out.Binary != binary {
			t.Fatalf("binary %v: got %+v", binary, resp)
		}
		if first == nil {
			first = data
		} else {
			for i := range data {
				if data[i] != first[i] {
					t.Errorf("binary output %d is %v, JSON gave %v", i, data[i], first[i])
				}
			}
		}
	}
}

func TestMetadataAndErrors(t *testing.T) {
	c := serveMLP(t)
	ctx := context.Background()
	md, err := c.ModelMetadata(ctx, "mlp", "")
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "mlp" || len(md.Inputs) != 1 || md.Inputs[0].Name != "input" || md.Inputs[0].Datatype != "FP32" {
		t.Errorf("metadata: got %+v", md)
	}
	if ready, err := c.ServerReady(ctx); !ready || err != nil {
		t.Errorf("ready: got %v, %v", ready, err)
	}
	for _, tc := range []struct {
		desc, path, body string
		status           int
		want             string
	}{
		{"unknown model", "/v2/models/nope/infer", `{"inputs":[]}`, http.StatusNotFound, "unknown model"},
		{"not json", "/v2/models/mlp/infer", `{`, http.StatusBadRequest, "unexpected end"},
		{"no inputs", "/v2/models/mlp/infer", `{"inputs":[]}`, http.StatusBadRequest, "want 1 inputs"},
		{"wrong datatype", "/v2/models/mlp/infer", `{"inputs":[{"name":"input","shape":[1,1],"datatype":"INT32","data":[1]}]}`, http.StatusBadRequest, "datatype INT32"},
		{"wrong shape", "/v2/models/mlp/infer", `{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`, http.StatusBadRequest, "error"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			status, body, _, err := c.Do(ctx, http.MethodPost, tc.path, []byte(tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %s, want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
}
