package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/infergate/infergate/errdefs"
	ort "github.com/yalue/onnxruntime_go"
)

var (
	// ErrClosed is returned by Run on a closed Session.
	ErrClosed = errdefs.Sentinel(errdefs.Unavailable, "model version is unloading: session is closed")
	// ErrInvalidInput wraps the errors of Run that are the caller's fault:
	// inputs that do not fit the model or that ONNX Runtime cannot take.
	ErrInvalidInput = errdefs.Sentinel(errdefs.Invalid, "invalid input")
)

// Provider is an ONNX Runtime execution provider to run a session on.
type Provider struct {
	// Name is "cuda" or "tensorrt".
	Name string
	// Options are handed to ONNX Runtime's provider options in one Update
	// call, with ONNX Runtime's own keys ("device_id", "trt_fp16_enable",
	// ...).
	Options map[string]string
}

// SessionOptions configure a Session. The zero value runs on the CPU with
// the defaults below.
type SessionOptions struct {
	// Instances is how many executions of the model may run at once.
	// Default: the number of CPUs. Executions beyond it wait in Run.
	Instances int
	// IntraOpThreads is the size of each execution's intra-op thread pool.
	// Default 1: on a small CPU, parallel executions of one thread each
	// give more throughput than one execution with many threads.
	IntraOpThreads int
	// InterOpThreads is the size of the inter-op thread pool. Default 1.
	InterOpThreads int
	// GraphOptimization is ONNX Runtime's graph optimization level:
	// "disable", "basic", "extended" or "all". Default "all".
	GraphOptimization string
	// Providers are the execution providers, most preferred first. Empty
	// runs on the CPU provider only.
	Providers []Provider
	// AllowCPUFallback lets the session load on the CPU when a provider in
	// Providers cannot be added (its library is missing, no device). By
	// default such a provider fails NewSession.
	AllowCPUFallback bool
}

func (o *SessionOptions) withDefaults() (SessionOptions, error) {
	out := *o
	if out.Instances <= 0 {
		out.Instances = goruntime.NumCPU()
	}
	if out.IntraOpThreads <= 0 {
		out.IntraOpThreads = 1
	}
	if out.InterOpThreads <= 0 {
		out.InterOpThreads = 1
	}
	if out.GraphOptimization == "" {
		out.GraphOptimization = "all"
	}
	if _, ok := optimizationLevels[out.GraphOptimization]; !ok {
		return out, fmt.Errorf("unknown graph optimization level %q (want disable, basic, extended or all)", out.GraphOptimization)
	}
	for _, p := range out.Providers {
		if p.Name != "cuda" && p.Name != "tensorrt" {
			return out, fmt.Errorf("unknown execution provider %q (want cuda or tensorrt)", p.Name)
		}
	}
	return out, nil
}

var optimizationLevels = map[string]ort.GraphOptimizationLevel{
	"disable":  ort.GraphOptimizationLevelDisableAll,
	"basic":    ort.GraphOptimizationLevelEnableBasic,
	"extended": ort.GraphOptimizationLevelEnableExtended,
	"all":      ort.GraphOptimizationLevelEnableAll,
}

// Session is a loaded model, ready to run. It is safe for concurrent use.
type Session struct {
	s         *ort.DynamicAdvancedSession
	inputs    []TensorInfo
	outputs   []TensorInfo
	providers []string
	// slots holds the free execution slots, each with its own RunOptions:
	// its capacity is SessionOptions.Instances, the documented bound. A
	// run takes one (receives) and gives it back.
	slots  chan *slot
	runOpt []*ort.RunOptions // every slot's, for Terminate
	// threads are the slots' threads (Options.ExecutionNice), stopped by
	// Close; empty when executions run on their callers' threads.
	threads []*thread
	closed  chan struct{}
	// terminated is set by Terminate: runs fail with ErrClosed.
	terminated atomic.Bool
	// mu orders Terminate with Close's release of the RunOptions
	// (destroyed says they are gone).
	mu        sync.Mutex
	destroyed bool
	// batched says the leading dimension of every output is the batch of
	// the first input (SetBatchedOutputs), until a run shows otherwise.
	batched atomic.Bool
	// guessHeld says a run with outputs allocated to the guessed batch
	// shape succeeded: a later failure is the model's, not the guess's.
	guessHeld atomic.Bool
}

// slot is one execution slot: its RunOptions, and the thread its runs
// execute on (nil: the caller's).
type slot struct {
	s  *ort.DynamicAdvancedSession
	ro *ort.RunOptions
	th *thread
	// The run handed to th: its values and its error, set around each
	// hand-off, and fn (the method value of execute, made once) that
	// reads them, so that a hand-off allocates nothing.
	in, out []ort.Value
	err     error
	fn      func()
}

// run runs the session with the slot's RunOptions on the slot's thread,
// or on the caller's.
func (sl *slot) run(in, out []ort.Value) error {
	if sl.th == nil {
		return sl.s.RunWithOptions(in, out, sl.ro)
	}
	sl.in, sl.out = in, out
	sl.th.do(sl.fn)
	err := sl.err
	sl.in, sl.out, sl.err = nil, nil, nil
	return err
}

func (sl *slot) execute() { sl.err = sl.s.RunWithOptions(sl.in, sl.out, sl.ro) }

// SetBatchedOutputs says that the leading dimension of every input and
// output is the batch, so that Run allocates an output whose only
// variable dimension is the leading one itself, sized to the first
// input's batch, and ONNX Runtime writes straight into it: no allocation
// by ONNX Runtime and no copy into Go memory. The repository sets it for
// versions it serves as batched (the dynamic batcher relies on the same
// rule to split outputs by rows). Default false: ONNX Runtime allocates
// variable-shape outputs. When the first run that guesses fails and runs
// again without the guess, Run turns it off: such a model's outputs do
// not keep the batch first, and the caller sees their real shapes.
func (s *Session) SetBatchedOutputs(on bool) { s.batched.Store(on) }

// NewSession loads the ONNX model at path.
func (e *Environment) NewSession(path string, opts SessionOptions) (*Session, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	inInfo, outInfo, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	inputs, err := tensorInfos("input", inInfo)
	if err != nil {
		return nil, err
	}
	outputs, err := tensorInfos("output", outInfo)
	if err != nil {
		return nil, err
	}
	so, providers, err := sessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	sess := &Session{
		inputs:    inputs,
		outputs:   outputs,
		providers: providers,
		slots:     make(chan *slot, opts.Instances),
		closed:    make(chan struct{}),
	}
	if e.nice > 0 {
		for range opts.Instances {
			th, err := startThread(e.nice)
			if err != nil {
				sess.stopThreads()
				return nil, err
			}
			sess.threads = append(sess.threads, th)
		}
	}
	create := func() { sess.s, err = ort.NewDynamicAdvancedSession(path, names(inputs), names(outputs), so) }
	if len(sess.threads) > 0 {
		// On a slot's thread: the intra-op threads ONNX Runtime starts
		// for the session inherit its priority.
		sess.threads[0].do(create)
	} else {
		create()
	}
	if err != nil {
		sess.stopThreads()
		return nil, fmt.Errorf("create session: %w", err)
	}
	for i := range opts.Instances {
		ro, err := ort.NewRunOptions()
		if err != nil {
			for _, r := range sess.runOpt {
				r.Destroy()
			}
			sess.s.Destroy()
			sess.stopThreads()
			return nil, fmt.Errorf("run options: %w", err)
		}
		sess.runOpt = append(sess.runOpt, ro)
		sl := &slot{s: sess.s, ro: ro}
		if len(sess.threads) > 0 {
			sl.th, sl.fn = sess.threads[i], sl.execute
		}
		sess.slots <- sl
	}
	return sess, nil
}

// stopThreads ends the slots' threads.
func (s *Session) stopThreads() {
	for _, th := range s.threads {
		th.stop()
	}
	s.threads = nil
}

func tensorInfos(kind string, infos []ort.InputOutputInfo) ([]TensorInfo, error) {
	out := make([]TensorInfo, len(infos))
	for i, info := range infos {
		if info.OrtValueType != ort.ONNXTypeTensor {
			return nil, fmt.Errorf("%s %q is a %s; only tensors are supported", kind, info.Name, info.OrtValueType)
		}
		dt := fromONNX(info.DataType)
		if dt == Invalid {
			return nil, fmt.Errorf("%s %q has element type %s, which has no KServe v2 datatype", kind, info.Name, info.DataType)
		}
		out[i] = TensorInfo{Name: info.Name, DataType: dt, Shape: append([]int64{}, info.Dimensions...)}
		for j, d := range out[i].Shape {
			if d < 0 {
				out[i].Shape[j] = -1 // symbolic dimensions come back as -1 already; be sure
			}
		}
	}
	return out, nil
}

func names(infos []TensorInfo) []string {
	out := make([]string, len(infos))
	for i, t := range infos {
		out[i] = t.Name
	}
	return out
}

// sessionOptions builds ONNX Runtime's options and returns the providers in
// effect ("cpu" last).
func sessionOptions(opts SessionOptions) (*ort.SessionOptions, []string, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("session options: %w", err)
	}
	fail := func(err error) (*ort.SessionOptions, []string, error) {
		so.Destroy()
		return nil, nil, err
	}
	if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
		return fail(fmt.Errorf("intra-op threads: %w", err))
	}
	if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
		return fail(fmt.Errorf("inter-op threads: %w", err))
	}
	if err := so.SetGraphOptimizationLevel(optimizationLevels[opts.GraphOptimization]); err != nil {
		return fail(fmt.Errorf("graph optimization: %w", err))
	}
	var providers []string
	for _, p := range opts.Providers {
		err := appendProvider(so, p)
		if err == nil {
			providers = append(providers, p.Name)
			continue
		}
		if !opts.AllowCPUFallback {
			return fail(fmt.Errorf("%s execution provider: %w", p.Name, err))
		}
	}
	return so, append(providers, "cpu"), nil
}

func appendProvider(so *ort.SessionOptions, p Provider) error {
	switch p.Name {
	case "cuda":
		o, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer o.Destroy()
		if err := o.Update(p.Options); err != nil {
			return err
		}
		return so.AppendExecutionProviderCUDA(o)
	case "tensorrt":
		o, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer o.Destroy()
		if err := o.Update(p.Options); err != nil {
			return err
		}
		return so.AppendExecutionProviderTensorRT(o)
	}
	return fmt.Errorf("unknown execution provider %q", p.Name)
}

// Inputs describes the model's inputs, in the order Run takes them.
func (s *Session) Inputs() []TensorInfo { return s.inputs }

// Outputs describes the model's outputs, in the order Run returns them.
func (s *Session) Outputs() []TensorInfo { return s.outputs }

// Instances returns how many executions may run at once.
func (s *Session) Instances() int { return cap(s.slots) }

// Providers names the execution providers the session runs on, most
// preferred first; the last is always "cpu".
func (s *Session) Providers() []string { return s.providers }

// Run runs the model on inputs, given in the order of Inputs, and returns
// every output in the order of Outputs. It waits for a free execution slot
// until ctx is done; a ctx cancelled during the execution terminates it.
// The inputs' Data may be read by ONNX Runtime until Run returns.
func (s *Session) Run(ctx context.Context, inputs []Tensor) ([]Tensor, error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("model takes %d inputs, got %d", len(s.inputs), len(inputs))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sl *slot
	select {
	case sl = <-s.slots:
	case <-s.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { s.slots <- sl }()
	if s.terminated.Load() {
		return nil, ErrClosed
	}
	select {
	case <-s.closed:
		return nil, ErrClosed
	default:
	}

	in := make([]ort.Value, len(inputs))
	out := make([]ort.Value, len(s.outputs))
	defer func() {
		destroy(in)
		destroy(out)
	}()
	for i := range inputs {
		t := &inputs[i]
		if t.DataType != s.inputs[i].DataType {
			return nil, fmt.Errorf("%w: input %q: expected %s, got %s", ErrInvalidInput, s.inputs[i].Name, s.inputs[i].DataType, t.DataType)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		v, err := newValue(t)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %w", ErrInvalidInput, s.inputs[i].Name, err)
		}
		in[i] = v
	}
	guess := s.batched.Load()
	guessed, err := s.allocOutputs(out, inputs, guess)
	if err != nil {
		return nil, err
	}
	err = s.runWithContext(ctx, sl, in, out)
	switch {
	case err == nil && guessed:
		s.guessHeld.Store(true)
	case err != nil && guessed && !s.guessHeld.Load() && ctx.Err() == nil && !s.terminated.Load():
		// No run has yet shown that the outputs follow the batch, and
		// this one failed: run again with ONNX Runtime allocating them.
		// If that succeeds, the guess was wrong (a variable leading
		// dimension that is not the batch): stop guessing, and let the
		// caller see the real shapes.
		destroy(out)
		clear(out)
		if _, err = s.allocOutputs(out, inputs, false); err != nil {
			return nil, err
		}
		if err = s.runWithContext(ctx, sl, in, out); err == nil && !s.guessHeld.Load() && !leadingIsBatch(out, inputs) {
			s.batched.Store(false) // the guess was wrong, not the first run unlucky
		}
	}
	if err != nil {
		return nil, err
	}
	results := make([]Tensor, len(out))
	for i, v := range out {
		t, err := fromValue(v)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", s.outputs[i].Name, err)
		}
		t.Name = s.outputs[i].Name
		if n := elements(t.Shape) * int64(t.DataType.Size()); t.DataType != Bytes && int64(len(t.Data)) > n {
			// An empty output was given a 1-byte buffer (see newValue).
			t.Data = t.Data[:n]
		}
		results[i] = t
	}
	return results, nil
}

// leadingIsBatch reports whether every output's leading dimension is the
// first input's batch, as the batched guess takes it to be.
func leadingIsBatch(out []ort.Value, inputs []Tensor) bool {
	if len(inputs) == 0 || len(inputs[0].Shape) == 0 {
		return true
	}
	for _, v := range out {
		if v == nil {
			continue
		}
		if shape := v.GetShape(); len(shape) == 0 || shape[0] != inputs[0].Shape[0] {
			return false
		}
	}
	return true
}

// allocOutputs allocates the outputs whose shape is known before the run
// (outputShape); guess allows the batched guess. guessed reports that a
// variable shape was guessed.
func (s *Session) allocOutputs(out []ort.Value, inputs []Tensor, guess bool) (guessed bool, err error) {
	for i, info := range s.outputs {
		shape, ok := outputShape(info, inputs, guess)
		if !ok {
			continue // ONNX Runtime allocates it; onnxruntime_go copies it to Go memory
		}
		guessed = guessed || (info.DataType != FP16 && slices.Contains(info.Shape, -1))
		// ONNX Runtime writes straight into a Go buffer. This is also the
		// only way to get scalar and FP16 outputs through onnxruntime_go.
		v, err := newValue(&Tensor{DataType: info.DataType, Shape: shape, Data: make([]byte, elements(shape)*int64(info.DataType.Size()))})
		if err != nil {
			return guessed, fmt.Errorf("output %q: %w", info.Name, err)
		}
		out[i] = v
	}
	return guessed, nil
}

// runWithContext runs on the slot's thread with its RunOptions, which a
// done ctx or Terminate terminates. A run ctx terminated leaves them reset
// for the slot's next run.
func (s *Session) runWithContext(ctx context.Context, sl *slot, in, out []ort.Value) error {
	ro := sl.ro
	if ctx.Done() == nil {
		err := sl.run(in, out)
		if err != nil && s.terminated.Load() {
			return fmt.Errorf("%w: run terminated: %w", ErrClosed, err)
		}
		return err
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		ro.Terminate()
	})
	err := sl.run(in, out)
	if !stop() {
		<-done // the terminate call ran: let it end, then reset the flag
		ro.UnsetTerminate()
		if s.terminated.Load() {
			ro.Terminate() // a Terminate of the session meanwhile stands
		}
	}
	switch {
	case err != nil && s.terminated.Load():
		return fmt.Errorf("%w: run terminated: %w", ErrClosed, err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("run terminated: %w", ctx.Err())
	}
	return err
}

// Terminate makes the executions in flight stop at ONNX Runtime's next
// check and fail, as later ones do, with ErrClosed: a hard bound on a
// shutdown that cannot wait for them. Close must still be called.
func (s *Session) Terminate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed || s.terminated.Swap(true) {
		return
	}
	for _, ro := range s.runOpt {
		ro.Terminate()
	}
}

// Close waits for the executions in flight, then releases the session.
// Runs started after Close fail with ErrClosed.
func (s *Session) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	for range cap(s.slots) {
		<-s.slots // every execution has given its slot back
	}
	s.mu.Lock()
	s.destroyed = true
	for _, ro := range s.runOpt {
		ro.Destroy()
	}
	s.mu.Unlock()
	err := s.s.Destroy()
	s.stopThreads()
	if err != nil {
		return fmt.Errorf("destroy session: %w", err)
	}
	return nil
}

// outputShape returns the shape of an output to allocate before the run, or
// false to let ONNX Runtime allocate it. Static shapes are allocated here.
// So are outputs whose only variable dimension is the leading one, taken
// to be the batch size of the first input, when guess is set (the
// session is batched: SetBatchedOutputs), and FP16 ones always: onnxruntime_go v1.27.0 copies
// only half of an FP16 output that ONNX Runtime allocated, so there is no
// other way to return one. An FP16 output of any other variable shape fails
// the run with a clear error.
func outputShape(info TensorInfo, inputs []Tensor, guess bool) ([]int64, bool) {
	if info.DataType == Bytes {
		return nil, false
	}
	variable := 0
	for _, d := range info.Shape {
		if d < 0 {
			variable++
		}
	}
	if variable == 0 {
		return info.Shape, true
	}
	if info.DataType != FP16 && !guess {
		return nil, false
	}
	if variable == 1 && info.Shape[0] < 0 && len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		shape := append([]int64{}, info.Shape...)
		shape[0] = inputs[0].Shape[0]
		return shape, true
	}
	return nil, false
}

// destroy releases values, skipping nil ones (also nil pointers in a
// non-nil interface, which onnxruntime_go returns on some errors).
func destroy(values []ort.Value) {
	for _, v := range values {
		if v == nil || reflect.ValueOf(v).IsNil() {
			continue
		}
		v.Destroy()
	}
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// newValue wraps t's buffer in an ONNX Runtime value, without copying for
// fixed-size types (the value reads t.Data).
func newValue(t *Tensor) (ort.Value, error) {
	if t.DataType == Bytes {
		if len(t.Shape) == 0 {
			return nil, errors.New("scalar BYTES tensors are not supported")
		}
		for i, e := range t.Strings {
			// onnxruntime_go hands strings to ONNX Runtime as C strings:
			// a NUL byte would silently cut the element short.
			if strings.IndexByte(e, 0) >= 0 {
				return nil, fmt.Errorf("BYTES element %d contains a NUL byte, which ONNX Runtime's string tensors cannot take", i)
			}
		}
		v, err := ort.NewStringTensor(ort.Shape(t.Shape))
		if err != nil {
			return nil, err
		}
		if err := v.SetContents(t.Strings); err != nil {
			v.Destroy()
			return nil, err
		}
		return v, nil
	}
	if len(t.Shape) == 0 {
		return newScalar(t)
	}
	data := t.Data
	if len(data) == 0 {
		data = make([]byte, 1) // an empty tensor; ONNX Runtime wants a buffer all the same
	}
	v, err := ort.NewCustomDataTensor(ort.Shape(t.Shape), data, t.DataType.onnx())
	if err != nil {
		return nil, err // not v: a typed nil would pass for a value
	}
	return v, nil
}

func newScalar(t *Tensor) (ort.Value, error) {
	switch t.DataType {
	case Bool:
		return scalar[bool](t.Data)
	case Uint8:
		return scalar[uint8](t.Data)
	case Uint16:
		return scalar[uint16](t.Data)
	case Uint32:
		return scalar[uint32](t.Data)
	case Uint64:
		return scalar[uint64](t.Data)
	case Int8:
		return scalar[int8](t.Data)
	case Int16:
		return scalar[int16](t.Data)
	case Int32:
		return scalar[int32](t.Data)
	case Int64:
		return scalar[int64](t.Data)
	case FP32:
		return scalar[float32](t.Data)
	case FP64:
		return scalar[float64](t.Data)
	}
	return nil, fmt.Errorf("scalar %s tensors are not supported", t.DataType)
}

func scalar[T ort.TensorData](b []byte) (ort.Value, error) {
	var v T
	if len(b) != int(unsafe.Sizeof(v)) {
		return nil, fmt.Errorf("scalar needs %d bytes, got %d", unsafe.Sizeof(v), len(b))
	}
	v = *(*T)(unsafe.Pointer(unsafe.SliceData(b)))
	s, err := ort.NewScalar(v)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// fromValue copies nothing: it returns the Go memory behind v (ONNX Runtime's
// output was copied into Go memory by onnxruntime_go, or written straight
// into a buffer of ours).
func fromValue(v ort.Value) (Tensor, error) {
	t := Tensor{Shape: append([]int64{}, v.GetShape()...)}
	switch x := v.(type) {
	case *ort.CustomDataTensor:
		t.DataType, t.Data = fromONNX(ort.TensorElementDataType(x.DataType())), x.GetData()
	case *ort.StringTensor:
		s, err := x.GetContents()
		if err != nil {
			return t, err
		}
		t.DataType, t.Strings = Bytes, s
	case *ort.Tensor[bool]:
		t.DataType, t.Data = Bool, asBytes(x.GetData())
	case *ort.Tensor[uint8]:
		t.DataType, t.Data = Uint8, x.GetData()
	case *ort.Tensor[uint16]:
		t.DataType, t.Data = Uint16, asBytes(x.GetData())
	case *ort.Tensor[uint32]:
		t.DataType, t.Data = Uint32, asBytes(x.GetData())
	case *ort.Tensor[uint64]:
		t.DataType, t.Data = Uint64, asBytes(x.GetData())
	case *ort.Tensor[int8]:
		t.DataType, t.Data = Int8, asBytes(x.GetData())
	case *ort.Tensor[int16]:
		t.DataType, t.Data = Int16, asBytes(x.GetData())
	case *ort.Tensor[int32]:
		t.DataType, t.Data = Int32, asBytes(x.GetData())
	case *ort.Tensor[int64]:
		t.DataType, t.Data = Int64, asBytes(x.GetData())
	case *ort.Tensor[float32]:
		t.DataType, t.Data = FP32, asBytes(x.GetData())
	case *ort.Tensor[float64]:
		t.DataType, t.Data = FP64, asBytes(x.GetData())
	case *ort.Scalar[bool]:
		t.DataType, t.Data = Bool, asBytes([]bool{x.GetData()})
	case *ort.Scalar[uint8]:
		t.DataType, t.Data = Uint8, []byte{x.GetData()}
	case *ort.Scalar[uint16]:
		t.DataType, t.Data = Uint16, asBytes([]uint16{x.GetData()})
	case *ort.Scalar[uint32]:
		t.DataType, t.Data = Uint32, asBytes([]uint32{x.GetData()})
	case *ort.Scalar[uint64]:
		t.DataType, t.Data = Uint64, asBytes([]uint64{x.GetData()})
	case *ort.Scalar[int8]:
		t.DataType, t.Data = Int8, asBytes([]int8{x.GetData()})
	case *ort.Scalar[int16]:
		t.DataType, t.Data = Int16, asBytes([]int16{x.GetData()})
	case *ort.Scalar[int32]:
		t.DataType, t.Data = Int32, asBytes([]int32{x.GetData()})
	case *ort.Scalar[int64]:
		t.DataType, t.Data = Int64, asBytes([]int64{x.GetData()})
	case *ort.Scalar[float32]:
		t.DataType, t.Data = FP32, asBytes([]float32{x.GetData()})
	case *ort.Scalar[float64]:
		t.DataType, t.Data = FP64, asBytes([]float64{x.GetData()})
	default:
		return t, fmt.Errorf("unsupported output value %T", v)
	}
	if t.DataType == Invalid {
		return t, errors.New("output has an unsupported element type")
	}
	return t, nil
}

// asBytes views a slice of fixed-size elements as its bytes (little-endian
// on every platform infergate supports).
func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}
