// Package handwritten is the benchmark suite's hand-written baseline: the
// inference server a user writes in an afternoon with the standard library.
// net/http, encoding/json, and one ONNX Runtime call per request, no
// batching and no pooling. It serves one FP32 model over the KServe v2
// protocol: JSON tensors, and Triton's binary tensors too so that it can
// take the suite's image scenario.
//
// It is a yardstick, not a product: it must stay the plain, obvious code a
// user would write, and must never borrow infergate's serving machinery
// (gateway, batching, repository). It runs the model with package runtime
// and its defaults (one execution per core, one intra-op thread each), so
// that what separates it from infergate is the serving path alone.
package handwritten

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/infergate/infergate/runtime"
)

// Options configure a Server.
type Options struct {
	// Model is the model's name in URLs. Required.
	Model string
	// Session runs the model; its inputs and outputs must be FP32. The
	// caller owns it and closes it after Shutdown. Required.
	Session *runtime.Session
}

// Server is the hand-written baseline server.
type Server struct {
	opts Options
	srv  *http.Server
}

// New returns a Server for opts.
func New(opts Options) (*Server, error) {
	if opts.Model == "" || opts.Session == nil {
		return nil, errors.New("handwritten: a model name and a session are required")
	}
	for _, t := range append(append([]runtime.TensorInfo{}, opts.Session.Inputs()...), opts.Session.Outputs()...) {
		if t.DataType != runtime.FP32 {
			return nil, fmt.Errorf("handwritten: tensor %q is %s; only FP32 is supported", t.Name, t.DataType)
		}
	}
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/{model}/infer", s.infer)
	mux.HandleFunc("GET /v2/models/{model}", s.metadata)
	mux.HandleFunc("GET /v2/health/live", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /v2/health/ready", func(http.ResponseWriter, *http.Request) {})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits for the requests in
// flight, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

type tensorJSON struct {
	Name       string    `json:"name"`
	Shape      []int64   `json:"shape"`
	Datatype   string    `json:"datatype"`
	Data       []float32 `json:"data,omitempty"`
	Parameters struct {
		BinaryDataSize *int `json:"binary_data_size,omitempty"`
	} `json:"parameters"`
}

type requestJSON struct {
	ID         string       `json:"id"`
	Inputs     []tensorJSON `json:"inputs"`
	Parameters struct {
		BinaryDataOutput bool `json:"binary_data_output"`
	} `json:"parameters"`
}

type outputJSON struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int64        `json:"shape"`
	Data       []float32      `json:"data,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type responseJSON struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	ID           string       `json:"id,omitempty"`
	Outputs      []outputJSON `json:"outputs"`
}

func fail(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("model") != s.opts.Model {
		fail(w, http.StatusNotFound, fmt.Errorf("unknown model %q", r.PathValue("model")))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	header, bin := body, []byte(nil)
	if h := r.Header.Get("Inference-Header-Content-Length"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 || n > len(body) {
			fail(w, http.StatusBadRequest, fmt.Errorf("bad Inference-Header-Content-Length %q", h))
			return
		}
		header, bin = body[:n], body[n:]
	}
	var req requestJSON
	if err := json.Unmarshal(header, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	infos := s.opts.Session.Inputs()
	if len(req.Inputs) != len(infos) {
		fail(w, http.StatusBadRequest, fmt.Errorf("want %d inputs, got %d", len(infos), len(req.Inputs)))
		return
	}
	inputs := make([]runtime.Tensor, len(infos))
	for _, in := range req.Inputs {
		i := -1
		for j, info := range infos {
			if info.Name == in.Name {
				i = j
			}
		}
		if i < 0 || in.Datatype != "FP32" {
			fail(w, http.StatusBadRequest, fmt.Errorf("unknown input %q or datatype %s", in.Name, in.Datatype))
			return
		}
		var data []byte
		if size := in.Parameters.BinaryDataSize; size != nil {
			if *size < 0 || *size > len(bin) {
				fail(w, http.StatusBadRequest, fmt.Errorf("input %q: binary_data_size %d past the body", in.Name, *size))
				return
			}
			data, bin = bin[:*size], bin[*size:]
		} else {
			data = make([]byte, 4*len(in.Data))
			for k, v := range in.Data {
				binary.LittleEndian.PutUint32(data[4*k:], math.Float32bits(v))
			}
		}
		inputs[i] = runtime.Tensor{Name: in.Name, DataType: runtime.FP32, Shape: in.Shape, Data: data}
	}
	outputs, err := s.opts.Session.Run(r.Context(), inputs)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	resp := responseJSON{ModelName: s.opts.Model, ModelVersion: "1", ID: req.ID}
	var tail []byte
	for _, o := range outputs {
		out := outputJSON{Name: o.Name, Datatype: "FP32", Shape: o.Shape}
		if req.Parameters.BinaryDataOutput {
			out.Parameters = map[string]any{"binary_data_size": len(o.Data)}
			tail = append(tail, o.Data...)
		} else {
			out.Data = make([]float32, len(o.Data)/4)
			for k := range out.Data {
				out.Data[k] = math.Float32frombits(binary.LittleEndian.Uint32(o.Data[4*k:]))
			}
		}
		resp.Outputs = append(resp.Outputs, out)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	if req.Parameters.BinaryDataOutput {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(buf.Len()))
		buf.Write(tail)
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Write(buf.Bytes())
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("model") != s.opts.Model {
		fail(w, http.StatusNotFound, fmt.Errorf("unknown model %q", r.PathValue("model")))
		return
	}
	type tensorMetadata struct {
		Name     string  `json:"name"`
		Datatype string  `json:"datatype"`
		Shape    []int64 `json:"shape"`
	}
	list := func(infos []runtime.TensorInfo) []tensorMetadata {
		out := make([]tensorMetadata, len(infos))
		for i, t := range infos {
			out[i] = tensorMetadata{t.Name, t.DataType.String(), t.Shape}
		}
		return out
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"name":     s.opts.Model,
		"versions": []string{"1"},
		"platform": "onnxruntime_onnx",
		"inputs":   list(s.opts.Session.Inputs()),
		"outputs":  list(s.opts.Session.Outputs()),
	})
}
