package grpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/grpc/inference"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
	"github.com/infergate/infergate/runtime"
)

// mdHeaders reads a call's metadata as the router reads HTTP headers:
// routing overrides and sticky keys. It reads key by key
// (metadata.ValueFromIncomingContext) rather than copying the whole
// metadata once per call, as metadata.FromIncomingContext does.
type mdHeaders struct{ ctx context.Context }

func (h mdHeaders) Peek(name string) []byte {
	return peekMD(h.ctx, name)
}

// Cookie reads a cookie of the call's "cookie" metadata.
func (h mdHeaders) Cookie(name string) []byte {
	for _, line := range metadata.ValueFromIncomingContext(h.ctx, "cookie") {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				return []byte(v)
			}
		}
	}
	return nil
}

// streamKey marks the context of a stream's messages.
type streamKey struct{}

// ModelInfer runs one inference, as HTTP's POST .../infer does.
func (s *Server) ModelInfer(ctx context.Context, req *inference.ModelInferRequest) (*inference.ModelInferResponse, error) {
	resp, err := s.infer(ctx, req)
	return resp, toStatus(err)
}

// ModelStreamInfer answers a stream of requests in order, each with its
// response or its error in the stream (Triton's decoupled-free mode): an
// error ends no stream.
func (s *Server) ModelStreamInfer(stream grpclib.BidiStreamingServer[inference.ModelInferRequest, inference.ModelStreamInferResponse]) error {
	ctx := context.WithValue(stream.Context(), streamKey{}, true)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.infer(ctx, req)
		out := &inference.ModelStreamInferResponse{InferResponse: resp}
		if err != nil {
			out = &inference.ModelStreamInferResponse{ErrorMessage: err.Error(),
				InferResponse: &inference.ModelInferResponse{ModelName: req.GetModelName(), ModelVersion: req.GetModelVersion(), Id: req.GetId()}}
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// infer runs one request: the router picks the version, the tenant's
// limits apply, the inputs are decoded against its signature, the
// batcher runs it.
func (s *Server) infer(ctx context.Context, req *inference.ModelInferRequest) (resp *inference.ModelInferResponse, err error) {
	start := time.Now()
	var (
		model string
		v     *repository.Version
		d     router.Decision
		ran   error
	)
	received := 0
	for _, b := range req.GetRawInputContents() {
		received += len(b)
	}
	defer func() {
		sent := 0
		for _, b := range resp.GetRawOutputContents() {
			sent += len(b)
		}
		s.observer.ObserveRequest(model, v, "grpc", int(codeOf(err)), time.Since(start), received, sent)
		d.Done(ran)
		if err != nil && codeOf(err) == codes.Internal {
			s.log.Error("inference failed", "protocol", "grpc", "model", req.GetModelName(), "err", err, "request_id", requestID(ctx, s.idSuffix))
		}
	}()
	tenantName := ""
	if s.opts.Access != nil {
		if tenantName, err = s.opts.Access.AuthorizeInference(peekMD(ctx, "authorization")); err != nil {
			return nil, err
		}
	}
	n, err := parseVersion(req.GetModelVersion())
	if err != nil {
		return nil, err
	}
	d, err = s.router.Route(&router.Request{Model: req.GetModelName(), Version: n, Headers: mdHeaders{ctx}})
	if err != nil {
		if m, merr := s.repo.Model(req.GetModelName()); merr == nil {
			model = m.Name
		}
		return nil, err
	}
	v = d.Version
	model = v.Model
	var capPriority func(int64) int64 // nil: no tenant caps it
	if s.opts.Access != nil && (tenantName != "" || s.opts.Access.TenantHeader() != "") {
		var release func()
		release, capPriority, err = s.opts.Access.AdmitTenant(tenantName, peekMD(ctx, s.opts.Access.TenantHeader()), model)
		if err != nil {
			return nil, err
		}
		if release != nil {
			defer release()
		}
	}
	if full := v.Executor.Admit(); full != nil { // a full queue: refused before decoding
		ran = full
		return nil, fmt.Errorf("model %q version %d: %w", v.Model, v.Number, full)
	}
	timeout, priority, err := parameters(req.GetParameters())
	if err != nil {
		return nil, err
	}
	inputs, err := decodeInputs(req, v)
	if err != nil {
		return nil, err
	}
	deadlineCtx := ctx
	if s.opts.RequestTimeout > 0 {
		var cancel context.CancelFunc
		deadlineCtx, cancel = context.WithTimeout(deadlineCtx, s.opts.RequestTimeout)
		defer cancel()
	}
	acquireCtx := deadlineCtx
	if timeout > 0 {
		var cancel context.CancelFunc
		acquireCtx, cancel = context.WithTimeout(acquireCtx, timeout)
		defer cancel()
	}
	looked := v
	served, err := d.Acquire(acquireCtx)
	if err != nil {
		return nil, err
	}
	if served != looked && !served.SameSignature(looked) {
		if inputs, err = decodeInputs(req, served); err != nil {
			return nil, err
		}
	}
	v = served
	if d.Fallback != "" {
		grpclib.SetHeader(ctx, metadata.Pairs(router.HeaderFallback, d.Fallback))
	}
	var indexes []int // nil: every output
	for _, o := range req.GetOutputs() {
		i := outputIndex(v, o.GetName())
		if i < 0 {
			return nil, invalid("unknown output %q", o.GetName())
		}
		indexes = append(indexes, i)
	}
	if capPriority != nil {
		priority = capPriority(priority)
	}
	selected, err := v.Executor.Infer(deadlineCtx, batching.Request{
		Inputs:   inputs,
		Priority: int(min(priority, math.MaxInt32)),
		Timeout:  timeout,
	}, indexes)
	if err == nil && deadlineCtx.Err() != nil {
		err = deadlineCtx.Err()
	}
	ran = err
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && s.opts.RequestTimeout > 0 {
			err = fmt.Errorf("the request deadline of %v (http.request_timeout) expired: %w", s.opts.RequestTimeout, err)
		}
		return nil, fmt.Errorf("model %q version %d: %w", v.Model, v.Number, err)
	}
	d.Shadow(inputs, selected)
	if s.opts.Feedback != nil {
		// A stream's messages share its x-request-id: only their own ids
		// name them.
		id := req.GetId()
		if _, stream := ctx.Value(streamKey{}).(bool); id == "" && !stream {
			id = requestID(ctx, s.idSuffix)
		}
		s.opts.Feedback.Record(v.Model, v.Number, id, selected)
	}
	return encodeOutputs(v, req.GetId(), selected), nil
}

// peekMD returns the first value of a metadata key of the call, nil
// when it has none.
func peekMD(ctx context.Context, key string) []byte {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return []byte(v[0])
	}
	return nil
}

func outputIndex(v *repository.Version, name string) int {
	for i, o := range v.Outputs {
		if o.Name == name {
			return i
		}
	}
	return -1
}

// parameters reads the request's timeout (microseconds, the dynamic
// batcher's queue policy) and priority, as over HTTP.
func parameters(ps map[string]*inference.InferParameter) (timeout time.Duration, priority int64, err error) {
	integer := func(name string, p *inference.InferParameter) (int64, error) {
		switch c := p.GetParameterChoice().(type) {
		case *inference.InferParameter_Int64Param:
			if c.Int64Param >= 0 {
				return c.Int64Param, nil
			}
		case *inference.InferParameter_Uint64Param:
			if c.Uint64Param <= math.MaxInt64 {
				return int64(c.Uint64Param), nil
			}
		}
		return 0, invalid("parameter %q must be a non-negative integer", name)
	}
	for k, p := range ps {
		switch k {
		case "timeout":
			us, err := integer(k, p)
			if err != nil {
				return 0, 0, err
			}
			timeout = time.Duration(min(us, math.MaxInt64/1000)) * time.Microsecond
		case "priority":
			if priority, err = integer(k, p); err != nil {
				return 0, 0, err
			}
		}
	}
	return timeout, priority, nil
}

// decodeInputs makes the request's tensors for version v's signature:
// every input once, of its datatype and a matching shape, from
// raw_input_contents (every input, in order) or from typed contents. Raw
// bytes become the tensor's bytes without a copy when 64-byte aligned.
func decodeInputs(req *inference.ModelInferRequest, v *repository.Version) ([]runtime.Tensor, error) {
	in := req.GetInputs()
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(in) {
		return nil, invalid("raw_input_contents has %d entries for %d inputs: give every input raw, in order, or none", len(raw), len(in))
	}
	if len(in) == 0 {
		return nil, invalid(`"inputs" must not be empty`)
	}
	out := make([]runtime.Tensor, len(v.Inputs))
	seen := make([]bool, len(v.Inputs))
	for i, t := range in {
		j := -1
		for k, info := range v.Inputs {
			if info.Name == t.GetName() {
				j = k
			}
		}
		if j < 0 {
			return nil, invalid("unknown input %q", t.GetName())
		}
		if seen[j] {
			return nil, invalid("input %q given twice", t.GetName())
		}
		seen[j] = true
		info := v.Inputs[j]
		dt := runtime.ParseDataType(t.GetDatatype())
		switch {
		case dt == runtime.Invalid:
			return nil, invalid("input %q: unknown datatype %q, expected %s", info.Name, t.GetDatatype(), info.DataType)
		case dt != info.DataType:
			return nil, invalid("input %q: expected datatype %s, got %s", info.Name, info.DataType, dt)
		}
		shape := t.GetShape()
		if !runtime.ShapeMatches(info.Shape, shape) {
			return nil, invalid("input %q: expected shape %s, got %s", info.Name, runtime.FormatShape(info.Shape), runtime.FormatShape(shape))
		}
		count, err := runtime.ElementCount(shape, math.MaxInt64)
		if err != nil {
			return nil, invalid("input %q: %v", info.Name, err)
		}
		tensor := runtime.Tensor{Name: info.Name, DataType: dt, Shape: shape}
		if len(raw) > 0 {
			if t.GetContents() != nil {
				return nil, invalid("input %q: has both contents and raw_input_contents", info.Name)
			}
			err = fromRaw(&tensor, raw[i], count)
		} else {
			err = fromContents(&tensor, t.GetContents(), count)
		}
		if err != nil {
			return nil, err
		}
		out[j] = tensor
	}
	for j, ok := range seen {
		if !ok {
			return nil, invalid("missing input %q", v.Inputs[j].Name)
		}
	}
	if err := v.CheckBatch(out); err != nil {
		return nil, err
	}
	return out, nil
}

// fromRaw takes a raw input: the fixed-size elements little-endian, or
// BYTES elements each with a 4-byte little-endian length.
func fromRaw(t *runtime.Tensor, b []byte, count int64) error {
	if t.DataType == runtime.Bytes {
		rest := b
		t.Strings = make([]string, 0, min(count, int64(len(b)/4)))
		for i := int64(0); i < count; i++ {
			if len(rest) < 4 {
				return invalid("input %q: raw contents of %d bytes end inside element %d", t.Name, len(b), i)
			}
			n := binary.LittleEndian.Uint32(rest)
			if uint64(len(rest)-4) < uint64(n) {
				return invalid("input %q: raw contents of %d bytes end inside element %d", t.Name, len(b), i)
			}
			t.Strings = append(t.Strings, string(rest[4:4+n]))
			rest = rest[4+n:]
		}
		if len(rest) > 0 {
			return invalid("input %q: raw contents have %d bytes left after %d elements", t.Name, len(rest), count)
		}
		return nil
	}
	size := int64(t.DataType.Size())
	if count > int64(len(b))/max(size, 1) || count*size != int64(len(b)) {
		return invalid("input %q: shape %s of %s needs %d bytes, got %d raw bytes", t.Name, runtime.FormatShape(t.Shape), t.DataType, count*size, len(b))
	}
	if t.DataType == runtime.Bool {
		for i, c := range b {
			if c > 1 {
				return invalid("input %q: element %d must be 0 or 1, got %d", t.Name, i, c)
			}
		}
	}
	switch {
	case len(b) == 0:
		t.Data = []byte{}
	case runtime.Aligned(b):
		t.Data = b // the message's own bytes: the call owns them until it returns
	default:
		t.Data = runtime.AlignedCopy(b)
	}
	return nil
}

// fromContents takes typed contents: the field of the input's datatype
// (FP16 and BF16 have none: raw only).
func fromContents(t *runtime.Tensor, c *inference.InferTensorContents, count int64) error {
	var got int
	var put func(buf []byte, i int)
	size := t.DataType.Size()
	switch t.DataType {
	case runtime.Bool:
		got, put = len(c.GetBoolContents()), func(buf []byte, i int) {
			if c.BoolContents[i] {
				buf[i] = 1
			}
		}
	case runtime.Int8, runtime.Int16, runtime.Int32:
		vals := c.GetIntContents()
		got = len(vals)
		lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
		if t.DataType == runtime.Int8 {
			lo, hi = math.MinInt8, math.MaxInt8
		} else if t.DataType == runtime.Int16 {
			lo, hi = math.MinInt16, math.MaxInt16
		}
		for i, x := range vals {
			if int64(x) < lo || int64(x) > hi {
				return invalid("input %q: element %d is out of range for %s, got %d", t.Name, i, t.DataType, x)
			}
		}
		put = func(buf []byte, i int) { putInt(buf[i*size:], size, uint64(int64(vals[i]))) }
	case runtime.Int64:
		vals := c.GetInt64Contents()
		got, put = len(vals), func(buf []byte, i int) { binary.LittleEndian.PutUint64(buf[i*8:], uint64(vals[i])) }
	case runtime.Uint8, runtime.Uint16, runtime.Uint32:
		vals := c.GetUintContents()
		got = len(vals)
		hi := uint64(math.MaxUint32)
		if t.DataType == runtime.Uint8 {
			hi = math.MaxUint8
		} else if t.DataType == runtime.Uint16 {
			hi = math.MaxUint16
		}
		for i, x := range vals {
			if uint64(x) > hi {
				return invalid("input %q: element %d is out of range for %s, got %d", t.Name, i, t.DataType, x)
			}
		}
		put = func(buf []byte, i int) { putInt(buf[i*size:], size, uint64(vals[i])) }
	case runtime.Uint64:
		vals := c.GetUint64Contents()
		got, put = len(vals), func(buf []byte, i int) { binary.LittleEndian.PutUint64(buf[i*8:], vals[i]) }
	case runtime.FP32:
		vals := c.GetFp32Contents()
		got, put = len(vals), func(buf []byte, i int) { binary.LittleEndian.PutUint32(buf[i*4:], math.Float32bits(vals[i])) }
	case runtime.FP64:
		vals := c.GetFp64Contents()
		got, put = len(vals), func(buf []byte, i int) { binary.LittleEndian.PutUint64(buf[i*8:], math.Float64bits(vals[i])) }
	case runtime.Bytes:
		vals := c.GetBytesContents()
		if int64(len(vals)) != count {
			return invalid("input %q: shape %s needs %d elements, got %d", t.Name, runtime.FormatShape(t.Shape), count, len(vals))
		}
		t.Strings = make([]string, len(vals))
		for i, b := range vals {
			t.Strings[i] = string(b)
		}
		return nil
	default:
		return invalid("input %q: %s has no typed contents: send it as raw_input_contents", t.Name, t.DataType)
	}
	if int64(got) != count {
		return invalid("input %q: shape %s needs %d elements, got %d", t.Name, runtime.FormatShape(t.Shape), count, got)
	}
	buf := runtime.AlignedBuffer(got * size)
	for i := range got {
		put(buf, i)
	}
	t.Data = buf
	return nil
}

func putInt(b []byte, size int, v uint64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// encodeOutputs answers with every output as raw_output_contents, as
// Triton does: the tensor's bytes as they are, BYTES length-prefixed.
func encodeOutputs(v *repository.Version, id string, outputs []runtime.Tensor) *inference.ModelInferResponse {
	resp := &inference.ModelInferResponse{ModelName: v.Model, ModelVersion: strconv.FormatInt(v.Number, 10), Id: id,
		Outputs: make([]*inference.ModelInferResponse_InferOutputTensor, len(outputs)), RawOutputContents: make([][]byte, len(outputs))}
	for i := range outputs {
		t := &outputs[i]
		resp.Outputs[i] = &inference.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape}
		if t.DataType == runtime.Bytes {
			n := 0
			for _, s := range t.Strings {
				n += 4 + len(s)
			}
			b := make([]byte, 0, n)
			for _, s := range t.Strings {
				b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
				b = append(b, s...)
			}
			resp.RawOutputContents[i] = b
			continue
		}
		if t.Data == nil {
			resp.RawOutputContents[i] = []byte{}
		} else {
			resp.RawOutputContents[i] = t.Data
		}
	}
	return resp
}
