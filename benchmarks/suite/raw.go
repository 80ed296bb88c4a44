package suite

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/runtime"
)

// runONNXRuntime measures the model in-process: for each batch, one
// goroutine running it back to back (the single-request latency), then as
// many goroutines as cores (the most items/s; the session runs one
// execution per core with one intra-op thread each, infergate's default).
//
// GOMAXPROCS is raised to twice the cores for these runs, as infergate
// serve does: each ONNX Runtime call holds a P while it computes, and the
// goroutines that record and time the runs need Ps of their own.
func (r *runner) runONNXRuntime(ctx context.Context, sc *Scenario, modelPath string) ([]*load.Result, error) {
	if r.env == nil {
		env, err := runtime.Open(runtime.Options{LibraryPath: r.opts.ONNXRuntimeLib})
		if err != nil {
			return nil, err
		}
		r.env = env
	}
	if prev := goruntime.GOMAXPROCS(0); prev < 2*goruntime.NumCPU() {
		goruntime.GOMAXPROCS(2 * goruntime.NumCPU())
		defer goruntime.GOMAXPROCS(prev)
	}
	sess, err := r.env.NewSession(modelPath, runtime.SessionOptions{})
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer sess.Close()
	var out []*load.Result
	levels := []int{1}
	if n := goruntime.NumCPU(); n > 1 {
		levels = append(levels, n)
	}
	for _, batch := range sc.ONNXRuntime.Batches {
		inputs, err := randomInputs(sess.Inputs(), batch, sc.Shapes)
		if err != nil {
			return nil, fmt.Errorf("onnxruntime: %w", err)
		}
		for _, c := range levels {
			opts := r.loadOptions(sc)
			opts.Concurrency = c
			opts.Label = fmt.Sprintf("%s %s batch %d c%d", sc.Name, ServerONNXRuntime, batch, c)
			res, err := load.RunFunc(ctx, opts, func(ctx context.Context, _ int) (int, error) {
				if _, err := sess.Run(ctx, inputs); err != nil {
					return 0, err
				}
				return 200, nil
			})
			if err != nil {
				return nil, fmt.Errorf("onnxruntime batch %d c%d: %w", batch, c, err)
			}
			res.Label, res.Model, res.Protocol = ServerONNXRuntime, sc.Model.Name, "in-process"
			res.SetRows(batch)
			out = append(out, res)
		}
	}
	return out, nil
}

// randomInputs builds inputs of batch rows for a session: a variable
// leading dimension becomes batch, other variable dimensions come from
// shapes. The inputs are shared by concurrent runs, which only read them.
func randomInputs(infos []runtime.TensorInfo, batch int, shapes map[string][]int64) ([]runtime.Tensor, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]runtime.Tensor, len(infos))
	for i, info := range infos {
		shape := append([]int64{}, info.Shape...)
		if given, ok := shapes[info.Name]; ok && len(given) == len(shape) {
			shape = append([]int64{}, given...)
		}
		if len(shape) > 0 && info.Shape[0] < 0 {
			shape[0] = int64(batch)
		}
		for _, d := range shape {
			if d < 0 {
				return nil, fmt.Errorf("input %q has shape %v: give its shape under shapes", info.Name, info.Shape)
			}
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		if info.DataType != runtime.FP32 {
			return nil, fmt.Errorf("input %q is %s: in-process runs take FP32 inputs only", info.Name, info.DataType)
		}
		data := make([]byte, 4*n)
		for k := range n {
			binary.LittleEndian.PutUint32(data[4*k:], math.Float32bits(float32(rng.Float64()*2-1)))
		}
		out[i] = runtime.Tensor{Name: info.Name, DataType: runtime.FP32, Shape: shape, Data: data}
	}
	return out, nil
}
