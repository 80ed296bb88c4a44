package repository

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// Version is one version of a model: loaded and serving, failed, or
// evicted (known, loaded again on the next request). A Version never
// changes once published, except for its reference count.
type Version struct {
	Model  string
	Number int64
	State  State
	// Reason says why the version is unavailable.
	Reason string
	// Session runs the version; nil unless READY.
	Session *runtime.Session
	// Executor takes the version's requests: response cache, coalescing,
	// dynamic batching, as its config asks. Nil unless READY.
	Executor *batching.Executor
	// Inputs and Outputs are the tensors as served: the model's own,
	// with the batch dimension (-1) first when Batched and dims pinned by
	// the config.
	Inputs  []runtime.TensorInfo
	Outputs []runtime.TensorInfo
	// Batched says the leading dimension of every input and output is the
	// batch. MaxBatchSize bounds it; 0 means no bound.
	Batched      bool
	MaxBatchSize int
	// LoadTime is how long the load (and warmup) took.
	LoadTime time.Duration
	// Observer receives the version's events (the monitoring package's
	// per-version metrics); nil unless READY, or without monitoring.
	Observer VersionObserver

	stamp     fileStamp     // the model file it was loaded from
	evicted   bool          // known but not resident: loads on demand
	transient bool          // failed for its context (timeout, cancel): retried on any reload
	refs      atomic.Int64  // requests in flight, plus retiredBit once retired
	touched   atomic.Int64  // when it last moved to the front of the residency LRU (Unix ns)
	drained   chan struct{} // closed when retired and no request holds it
	closed    chan struct{} // closed once retired, drained and closed
	// unloadedAfter is, for an evicted version, the closed channel of the
	// loaded one it stands for: its unload is reported after that one's.
	unloadedAfter <-chan struct{}
}

const retiredBit = 1 << 62

func newVersion(model string, n int64) *Version {
	return &Version{Model: model, Number: n, State: StateUnavailable, drained: make(chan struct{}), closed: make(chan struct{})}
}

// acquire takes a reference for a request; false once the version is
// retired (a newer snapshot replaced it: look it up again).
func (v *Version) acquire() bool {
	for {
		n := v.refs.Load()
		if n&retiredBit != 0 {
			return false
		}
		if v.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (v *Version) release() {
	if v.refs.Add(-1) == retiredBit {
		close(v.drained)
	}
}

// retire stops new references; the returned channel closes when the
// requests in flight are done.
func (v *Version) retire() <-chan struct{} {
	if v.refs.Add(retiredBit) == retiredBit {
		close(v.drained)
	}
	return v.drained
}

// idle reports whether no request holds the version.
func (v *Version) idle() bool { return v.refs.Load()&^retiredBit == 0 }

// close releases the version's executor, session and observer. Call it
// after the version is retired and drained; evicted says it stays known
// (its observer keeps its series).
func (v *Version) close(evicted bool) error {
	if v.Executor != nil {
		v.Executor.Close()
	}
	var err error
	if v.Session != nil {
		err = v.Session.Close()
	}
	if v.Observer != nil {
		v.Observer.Close(evicted)
	}
	return err
}

// ServedSignature returns the signature a session is served with under
// config c (nil: none): the model's own, with the batch dimension first
// when batched and the dims the config pins. For tools that run a model
// outside the repository, as "infergate reference build".
func ServedSignature(c *Config, s *runtime.Session) (inputs, outputs []runtime.TensorInfo, batched bool, err error) {
	var v Version
	if err := v.resolve(c, s); err != nil {
		return nil, nil, false, err
	}
	return v.Inputs, v.Outputs, v.Batched, nil
}

// resolve sets the version's served signature from the model's own and
// its config.
func (v *Version) resolve(c *Config, s *runtime.Session) error {
	v.Inputs = cloneInfos(s.Inputs())
	v.Outputs = cloneInfos(s.Outputs())
	leadingVariable := true
	for _, t := range append(append([]runtime.TensorInfo{}, v.Inputs...), v.Outputs...) {
		if len(t.Shape) == 0 || t.Shape[0] != -1 {
			leadingVariable = false
		}
	}
	switch {
	case c == nil || c.MaxBatchSize == nil:
		v.Batched = leadingVariable
	case *c.MaxBatchSize > 0:
		if !leadingVariable {
			return fmt.Errorf("max_batch_size is %d, but not every input and output has a variable leading dimension", *c.MaxBatchSize)
		}
		v.Batched, v.MaxBatchSize = true, *c.MaxBatchSize
	}
	if c == nil {
		return nil
	}
	for kind, pins := range map[string][]TensorConfig{"input": c.Input, "output": c.Output} {
		infos := v.Inputs
		if kind == "output" {
			infos = v.Outputs
		}
		for _, pin := range pins {
			i := slices.IndexFunc(infos, func(t runtime.TensorInfo) bool { return t.Name == pin.Name })
			if i < 0 {
				return fmt.Errorf("%s %q in %s is not a %s of the model", kind, pin.Name, ConfigFile, kind)
			}
			if err := pinTensor(&infos[i], pin, v.Batched); err != nil {
				return fmt.Errorf("%s %q: %w", kind, pin.Name, err)
			}
		}
	}
	return nil
}

func pinTensor(t *runtime.TensorInfo, pin TensorConfig, batched bool) error {
	if pin.DataType != "" {
		if dt := runtime.ParseConfigDataType(pin.DataType); dt != t.DataType {
			return fmt.Errorf("%s gives data_type %s, the model has %s", ConfigFile, pin.DataType, t.DataType.ConfigName())
		}
	}
	if pin.Dims == nil {
		return nil
	}
	model := t.Shape
	if batched {
		model = model[1:]
	}
	if len(pin.Dims) != len(model) {
		extra := ""
		if batched {
			extra = " besides the batch"
		}
		return fmt.Errorf("%s gives dims %v, the model has %d dimensions%s", ConfigFile, pin.Dims, len(model), extra)
	}
	for i, d := range pin.Dims {
		if model[i] != -1 && d != model[i] {
			return fmt.Errorf("%s gives dims %v, the model has %v", ConfigFile, pin.Dims, model)
		}
	}
	if batched {
		t.Shape = append([]int64{-1}, pin.Dims...)
	} else {
		t.Shape = append([]int64{}, pin.Dims...)
	}
	return nil
}

func cloneInfos(in []runtime.TensorInfo) []runtime.TensorInfo {
	out := make([]runtime.TensorInfo, len(in))
	for i, t := range in {
		out[i] = t
		out[i].Shape = append([]int64{}, t.Shape...)
	}
	return out
}

// warmup runs the config's model_warmup samples on the session.
func (v *Version) warmup(ctx context.Context, c *Config, s *runtime.Session) error {
	if c == nil {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(v.Number), 7))
	for i, w := range c.ModelWarmup {
		inputs := make([]runtime.Tensor, len(v.Inputs))
		for j, info := range v.Inputs {
			in, ok := w.Inputs[info.Name]
			if !ok {
				return fmt.Errorf("model_warmup[%d]: no data for input %q", i, info.Name)
			}
			dt := runtime.ParseConfigDataType(in.DataType)
			if dt != info.DataType {
				return fmt.Errorf("model_warmup[%d]: input %q is %s, the model takes %s", i, info.Name, in.DataType, info.DataType.ConfigName())
			}
			shape := append([]int64{}, in.Dims...)
			if v.Batched {
				shape = append([]int64{int64(max(w.BatchSize, 1))}, shape...)
			}
			n, err := runtime.ElementCount(shape, 1<<28)
			if err != nil {
				return fmt.Errorf("model_warmup[%d]: input %q: %w", i, info.Name, err)
			}
			t := runtime.Tensor{Name: info.Name, DataType: dt, Shape: shape}
			if dt == runtime.Bytes {
				t.Strings = make([]string, n)
				if in.RandomData {
					for k := range t.Strings {
						t.Strings[k] = fmt.Sprintf("w%d", rng.IntN(1000))
					}
				}
			} else {
				t.Data = make([]byte, n*int64(dt.Size()))
				if in.RandomData {
					randomFill(t.Data, dt, rng)
				}
			}
			inputs[j] = t
		}
		for range max(w.Count, 1) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := s.Run(ctx, inputs); err != nil {
				return fmt.Errorf("model_warmup[%d] %q: %w", i, w.Name, err)
			}
		}
	}
	return nil
}

// randomFill fills b with random elements of dt: small values for floats
// (not NaN), 0 or 1 for BOOL, any bits for integers.
func randomFill(b []byte, dt runtime.DataType, rng *rand.Rand) {
	switch dt {
	case runtime.Bool:
		for i := range b {
			b[i] = byte(rng.IntN(2))
		}
	case runtime.FP32:
		for i := 0; i+4 <= len(b); i += 4 {
			putFloat32(b[i:], rng.Float32()*2-1)
		}
	case runtime.FP64:
		for i := 0; i+8 <= len(b); i += 8 {
			putFloat64(b[i:], rng.Float64()*2-1)
		}
	case runtime.FP16:
		for i := 0; i+2 <= len(b); i += 2 {
			b[i], b[i+1] = 0, byte(0x38+rng.IntN(4)) // 0.5 to 1.9
		}
	default:
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
}

var errEvicted = errors.New("evicted: not resident, loads on the next request")

// SameSignature reports whether o serves the same signature as v: a
// request decoded for one fits the other.
func (v *Version) SameSignature(o *Version) bool {
	return v.Batched == o.Batched && v.MaxBatchSize == o.MaxBatchSize &&
		reflect.DeepEqual(v.Inputs, o.Inputs) && reflect.DeepEqual(v.Outputs, o.Outputs)
}

// CheckBatch checks decoded inputs against v's batching: one batch size
// for all inputs, within max_batch_size (an Invalid error otherwise).
func (v *Version) CheckBatch(inputs []runtime.Tensor) error {
	if !v.Batched || len(inputs) == 0 {
		return nil
	}
	batch := inputs[0].Shape[0]
	for _, t := range inputs[1:] {
		if t.Shape[0] != batch {
			return errorf(errdefs.Invalid, "inputs have different batch sizes: %q has %d, %q has %d", inputs[0].Name, batch, t.Name, t.Shape[0])
		}
	}
	if v.MaxBatchSize > 0 && batch > int64(v.MaxBatchSize) {
		return errorf(errdefs.Invalid, "batch size %d is larger than the model's max_batch_size %d", batch, v.MaxBatchSize)
	}
	return nil
}
