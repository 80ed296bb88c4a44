package gateway

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
	"github.com/x448/float16"

	"github.com/infergate/infergate/runtime"
)

// inferRequest is a decoded KServe v2 inference request.
//
// Inputs may alias the request body (binary tensor data that is suitably
// aligned is not copied), so an inferRequest must not outlive the request
// whose body it was decoded from: call reset before the body is reused.
type inferRequest struct {
	// ID is the request's "id", echoed in the response; "" when absent.
	ID string
	// BinaryOutput is parameters.binary_data_output.
	BinaryOutput bool
	// Timeout is parameters.timeout in microseconds, 0 when absent.
	Timeout int64
	// Priority is parameters.priority, 0 when absent.
	Priority int64
	// Inputs holds one validated tensor per model input, indexed like the
	// model signature's inputs (not in request order).
	Inputs []runtime.Tensor
	// Outputs lists the requested outputs in request order; empty means all
	// of the model's outputs.
	Outputs []requestedOutput
	// indexes and binary are the server's per-request scratch for the
	// selected outputs, kept with the pooled request.
	indexes []int
	binary  []bool
	// shapes and arena are the one-pass decoder's scratch, kept with the
	// pooled request: the backing array of the input shapes, and the
	// buffer JSON tensor data is decoded into.
	shapes []int64
	arena  []byte
}

// requestedOutput is one entry of a request's "outputs".
type requestedOutput struct {
	// Index is the output's index in the model signature's outputs.
	Index int
	// Binary is the output's parameters.binary_data: -1 when not given,
	// 0 for false, 1 for true.
	Binary int8
}

// reset clears r for reuse, keeping the capacity of its slices. It drops
// every reference to the previous request's tensors (and so its body).
func (r *inferRequest) reset() {
	r.indexes, r.binary = r.indexes[:0], r.binary[:0]
	if cap(r.arena) > maxArena {
		r.arena = nil // do not pin one large request's memory in the pool
	}
	r.arena = r.arena[:0]
	clear(r.Inputs[:cap(r.Inputs)])
	r.Inputs = r.Inputs[:0]
	r.Outputs = r.Outputs[:0]
	r.ID = ""
	r.BinaryOutput = false
	r.Timeout = 0
	r.Priority = 0
}

// decodeRequest parses body into req, which it resets first.
//
// headerLen is the Inference-Header-Content-Length value, or -1 when the
// header is absent (then the whole body is JSON). With the header, the
// first headerLen bytes are the JSON request and the rest is the binary
// tensor data of the inputs that carry parameters.binary_data_size, in the
// order they appear in the JSON; all of it must be consumed.
//
// inputs and outputs are the model's signature (effective shapes, -1 for a
// variable dimension). p is a parser the caller owns and reuses across
// requests: nothing in req points into p's buffers (strings are copied), so
// p may parse another request while req is in use.
//
// Tensor data given as JSON is decoded straight into a freshly allocated
// buffer in the binary layout ONNX Runtime reads. Binary tensor data of a
// fixed-size type aliases body when its address is 64-byte aligned and is
// copied into an aligned buffer otherwise, so req.Inputs must not outlive
// the request.
//
// Every error is an *Error with status 400. On error req holds a partial
// request and must be reset (decodeRequest does so itself) before reuse.
func decodeRequest(p *fastjson.Parser, body []byte, headerLen int, inputs, outputs []runtime.TensorInfo, req *inferRequest) error {
	req.reset()
	d, jsonPart, err := newDecoder(body, headerLen, inputs, req)
	if err != nil {
		return err
	}
	if d.fast(p, jsonPart, outputs) == nil {
		return nil
	}
	// Anything the one-pass decoder does not take, valid or not, is
	// decoded again by the tree decoder, whose errors are the ones sent.
	return decodeTree(p, body, headerLen, inputs, outputs, req)
}

// decodeTree is the tree decoder alone, without the one-pass decoder in
// front: the reference the fast path is tested and benchmarked against.
func decodeTree(p *fastjson.Parser, body []byte, headerLen int, inputs, outputs []runtime.TensorInfo, req *inferRequest) error {
	req.reset()
	d, jsonPart, err := newDecoder(body, headerLen, inputs, req)
	if err != nil {
		return err
	}
	return d.tree(p, jsonPart, outputs)
}

// newDecoder splits body at headerLen and checks that its JSON part is not
// empty.
func newDecoder(body []byte, headerLen int, inputs []runtime.TensorInfo, req *inferRequest) (decoder, []byte, error) {
	d := decoder{body: body, sig: inputs, req: req}
	jsonPart := body
	if headerLen != -1 {
		if headerLen < 0 || headerLen > len(body) {
			return d, nil, badRequest("header Inference-Header-Content-Length is %d, outside the body of %d bytes", headerLen, len(body))
		}
		jsonPart = body[:headerLen]
		d.bin = body[headerLen:]
		d.binary = true
	}
	d.jsonLen = len(jsonPart)
	if len(bytes.TrimSpace(jsonPart)) == 0 {
		return d, nil, badRequest("malformed JSON: empty request")
	}
	return d, jsonPart, nil
}

// maxParseError bounds the parser's message in an error body: fastjson
// names every enclosing value, which for deep nesting runs to kilobytes.
const maxParseError = 300

// parseError is fastjson's message for a malformed document, its chain of
// enclosing values cut to the innermost ones past maxParseError.
func parseError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "cannot parse JSON: ")
	if len(msg) <= maxParseError {
		return msg
	}
	tail := msg[len(msg)-maxParseError:]
	if i := strings.Index(tail, "cannot parse "); i >= 0 {
		tail = tail[i:]
	}
	return "...: " + tail
}

// tree decodes the JSON part with fastjson's value tree: the decoder of
// record for every request the one-pass decoder hands back, and so for
// every error.
func (d *decoder) tree(p *fastjson.Parser, jsonPart []byte, outputs []runtime.TensorInfo) error {
	req, inputs := d.req, d.sig
	v, err := p.ParseBytes(withFiniteLiterals(jsonPart))
	if err != nil {
		return badRequest("malformed JSON: %s", parseError(err))
	}
	if v.Type() != fastjson.TypeObject {
		return badRequest("request must be a JSON object, got %s", describe(v))
	}
	root, _ := v.Object()

	if id := present(root.Get("id")); id != nil {
		if id.Type() != fastjson.TypeString {
			return badRequest(`"id" must be a string, got %s`, describe(id))
		}
		s, _ := id.StringBytes()
		req.ID = string(s)
	}
	if err := decodeRequestParameters(root.Get("parameters"), req); err != nil {
		return err
	}

	in := root.Get("inputs")
	if in == nil || in.Type() == fastjson.TypeNull {
		return badRequest(`missing "inputs"`)
	}
	if in.Type() != fastjson.TypeArray {
		return badRequest(`"inputs" must be an array, got %s`, describe(in))
	}
	items, _ := in.Array()
	if len(items) == 0 {
		return badRequest(`"inputs" must not be empty`)
	}
	d.prepare(false)
	var seenSmall [4]uint64
	seen := seenSmall[:]
	if n := (len(inputs) + 63) / 64; n > len(seen) {
		seen = make([]uint64, n)
	}
	for i, item := range items {
		idx, err := d.input(i, item, seen)
		if err != nil {
			return err
		}
		seen[idx/64] |= 1 << (idx % 64)
	}
	for i := range inputs {
		if seen[i/64]&(1<<(i%64)) == 0 {
			return badRequest("missing input %q", inputs[i].Name)
		}
	}
	if left := len(d.bin) - d.off; left != 0 {
		return badRequest("%d bytes of binary data left after the inputs", left)
	}

	return decodeRequestedOutputs(root.Get("outputs"), outputs, req)
}

// decoder holds the state of one decodeRequest call.
type decoder struct {
	body    []byte
	jsonLen int
	binary  bool   // the request has an Inference-Header-Content-Length
	bin     []byte // binary tensor data after the JSON
	off     int    // bytes of bin consumed so far
	sig     []runtime.TensorInfo
	req     *inferRequest
	shapes  []int64 // backing array of the input shapes
	scratch []byte  // see elemDecoder.scratch
}

// prepare sizes req.Inputs to the signature and gives the decoder one
// backing array for all input shapes (the ranks are the model's): a fresh
// one, or with reuse the request's own from earlier requests.
func (d *decoder) prepare(reuse bool) {
	req, inputs := d.req, d.sig
	if cap(req.Inputs) >= len(inputs) {
		req.Inputs = req.Inputs[:len(inputs)]
	} else {
		req.Inputs = make([]runtime.Tensor, len(inputs))
	}
	rank := 0
	for i := range inputs {
		rank += len(inputs[i].Shape)
	}
	switch {
	case rank == 0:
	case reuse && cap(req.shapes) >= rank:
		d.shapes = req.shapes[:0]
	case reuse:
		req.shapes = make([]int64, 0, rank)
		d.shapes = req.shapes
	default:
		d.shapes = make([]int64, 0, rank)
	}
}

// input decodes the i-th entry of "inputs" into its slot of req.Inputs and
// returns the index of that slot.
func (d *decoder) input(i int, item *fastjson.Value, seen []uint64) (int, error) {
	if item.Type() != fastjson.TypeObject {
		return 0, badRequest("inputs[%d] must be a JSON object, got %s", i, describe(item))
	}
	obj, _ := item.Object()
	nameV := present(obj.Get("name"))
	if nameV == nil {
		return 0, badRequest(`inputs[%d]: missing "name"`, i)
	}
	if nameV.Type() != fastjson.TypeString {
		return 0, badRequest(`inputs[%d]: "name" must be a string, got %s`, i, describe(nameV))
	}
	nameB, _ := nameV.StringBytes()
	idx := -1
	for j := range d.sig {
		if d.sig[j].Name == string(nameB) {
			idx = j
			break
		}
	}
	if idx < 0 {
		return 0, badRequest("unknown input %s", quoteClient(nameB))
	}
	info := &d.sig[idx]
	if seen[idx/64]&(1<<(idx%64)) != 0 {
		return 0, badRequest("input %q given twice", info.Name)
	}

	dtV := present(obj.Get("datatype"))
	if dtV == nil {
		return 0, badRequest(`input %q: missing "datatype"`, info.Name)
	}
	if dtV.Type() != fastjson.TypeString {
		return 0, badRequest(`input %q: "datatype" must be a string, got %s`, info.Name, describe(dtV))
	}
	dtB, _ := dtV.StringBytes()
	dt := runtime.ParseDataType(string(dtB))
	if dt == runtime.Invalid {
		return 0, badRequest("input %q: unknown datatype %s, expected %s", info.Name, quoteClient(dtB), info.DataType)
	}
	if dt != info.DataType {
		return 0, badRequest("input %q: expected datatype %s, got %s", info.Name, info.DataType, dt)
	}

	shape, err := d.shape(info, present(obj.Get("shape")))
	if err != nil {
		return 0, err
	}

	// Parameters: shared memory is refused, binary_data_size selects the
	// binary tensor data extension.
	var sizeV *fastjson.Value
	if params := present(obj.Get("parameters")); params != nil {
		if params.Type() != fastjson.TypeObject {
			return 0, badRequest(`input %q: "parameters" must be a JSON object, got %s`, info.Name, describe(params))
		}
		po, _ := params.Object()
		if po.Get("shared_memory_region") != nil {
			return 0, badRequest("input %q: shared memory is not supported", info.Name)
		}
		sizeV = present(po.Get("binary_data_size"))
	}
	data := present(obj.Get("data"))

	t := &d.req.Inputs[idx]
	t.Name = info.Name
	t.DataType = dt
	t.Shape = shape
	switch {
	case data != nil && sizeV != nil:
		return 0, badRequest(`input %q: has both "data" and binary_data_size`, info.Name)
	case sizeV != nil:
		err = d.binaryData(t, sizeV)
	case data != nil:
		err = d.jsonData(t, data)
	default:
		return 0, badRequest(`input %q: missing "data" or binary_data_size`, info.Name)
	}
	return idx, err
}

// shape decodes an input's "shape" and checks it against the model's.
func (d *decoder) shape(info *runtime.TensorInfo, v *fastjson.Value) ([]int64, error) {
	if v == nil {
		return nil, badRequest(`input %q: missing "shape"`, info.Name)
	}
	if v.Type() != fastjson.TypeArray {
		return nil, badRequest(`input %q: "shape" must be an array, got %s`, info.Name, describe(v))
	}
	dims, _ := v.Array()
	for j, dim := range dims {
		if n, ok := jsonInt(dim); !ok || n < 0 {
			return nil, badRequest("input %q: shape dimension %d must be a non-negative integer, got %s", info.Name, j, describe(dim))
		}
	}
	if len(dims) != len(info.Shape) {
		return nil, badRequest("input %q: expected shape %s, got %s", info.Name, runtime.FormatShape(info.Shape), jsonShapeString(dims))
	}
	// The ranks of all inputs add up to cap(d.shapes), so this never grows
	// the shared backing array.
	start := len(d.shapes)
	for _, dim := range dims {
		n, _ := jsonInt(dim)
		d.shapes = append(d.shapes, n)
	}
	shape := d.shapes[start:len(d.shapes):len(d.shapes)]
	if !runtime.ShapeMatches(info.Shape, shape) {
		d.shapes = d.shapes[:start]
		return nil, badRequest("input %q: expected shape %s, got %s", info.Name, runtime.FormatShape(info.Shape), runtime.FormatShape(shape))
	}
	return shape, nil
}

// tooManyElements is the error for a shape with more elements than the
// request could possibly hold.
func (d *decoder) tooManyElements(t *runtime.Tensor) error {
	return badRequest("input %q: shape %s has too many elements for a request body of %d bytes", t.Name, runtime.FormatShape(t.Shape), len(d.body))
}

// binaryData takes t's elements from the binary tensor data.
func (d *decoder) binaryData(t *runtime.Tensor, sizeV *fastjson.Value) error {
	if !d.binary {
		return badRequest("input %q: binary_data_size needs the Inference-Header-Content-Length header", t.Name)
	}
	k, ok := jsonInt(sizeV)
	if !ok || k < 0 {
		return badRequest("input %q: binary_data_size must be a non-negative integer, got %s", t.Name, describe(sizeV))
	}
	return d.binaryBytes(t, k)
}

// binaryBytes takes t's elements from the next k bytes of binary tensor
// data.
func (d *decoder) binaryBytes(t *runtime.Tensor, k int64) error {
	left := len(d.bin) - d.off
	if k > int64(left) {
		return badRequest("input %q: binary_data_size %d exceeds the %d bytes of binary data left", t.Name, k, left)
	}
	b := d.bin[d.off : d.off+int(k) : d.off+int(k)]
	d.off += int(k)

	// An element takes at least 4 bytes (BYTES) or its size: bound the
	// element count by the binary size before allocating anything.
	size, what := t.DataType.Size(), "needs"
	if t.DataType == runtime.Bytes {
		size, what = 4, "needs at least"
	}
	n, err := runtime.ElementCount(t.Shape, k/int64(size))
	if err != nil {
		if n, err := runtime.ElementCount(t.Shape, math.MaxInt64/int64(size)); err == nil {
			return badRequest("input %q: shape %s of %s %s %d bytes, got binary_data_size %d", t.Name, runtime.FormatShape(t.Shape), t.DataType, what, n*int64(size), k)
		}
		return d.tooManyElements(t)
	}
	if t.DataType == runtime.Bytes {
		return decodeBinaryStrings(t, b, int(n))
	}
	if want := int(n) * size; want != len(b) {
		return badRequest("input %q: shape %s of %s needs %d bytes, got binary_data_size %d", t.Name, runtime.FormatShape(t.Shape), t.DataType, want, len(b))
	}
	if t.DataType == runtime.Bool {
		for i, c := range b {
			if c > 1 {
				return badRequest("input %q: element %d must be 0 or 1, got %d", t.Name, i, c)
			}
		}
	}
	switch {
	case len(b) == 0:
		t.Data = []byte{}
	case runtime.Aligned(b):
		// Aligned: ONNX Runtime can read the body in place.
		t.Data = b
	default:
		t.Data = runtime.AlignedCopy(b)
	}
	return nil
}

// decodeBinaryStrings splits b into n length-prefixed BYTES elements. The
// strings are copied (all into one allocation) since b is the body.
func decodeBinaryStrings(t *runtime.Tensor, b []byte, n int) error {
	rest := b
	for i := range n {
		if len(rest) < 4 {
			return badRequest("input %q: binary data of %d bytes ends inside element %d", t.Name, len(b), i)
		}
		l := binary.LittleEndian.Uint32(rest)
		if uint64(l) > uint64(len(rest)-4) {
			return badRequest("input %q: binary data of %d bytes ends inside element %d", t.Name, len(b), i)
		}
		rest = rest[4+int(l):]
	}
	if len(rest) != 0 {
		return badRequest("input %q: binary data has %d bytes left after %d elements", t.Name, len(rest), n)
	}
	all := string(b)
	strs := make([]string, n)
	off := 0
	for i := range strs {
		l := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		strs[i] = all[off : off+l]
		off += l
	}
	t.Strings = strs
	return nil
}

// jsonData decodes t's elements from its JSON "data", flattening nested
// arrays in row-major order.
func (d *decoder) jsonData(t *runtime.Tensor, data *fastjson.Value) error {
	if data.Type() != fastjson.TypeArray {
		return badRequest(`input %q: "data" must be an array, got %s`, t.Name, describe(data))
	}
	// Each JSON element takes at least one byte of the JSON part: bound the
	// element count by it before allocating anything.
	n64, err := runtime.ElementCount(t.Shape, int64(d.jsonLen))
	if err != nil {
		return d.tooManyElements(t)
	}
	n := int(n64)
	if got := countLeaves(data); got != n {
		return badRequest("input %q: shape %s needs %d elements, got %d", t.Name, runtime.FormatShape(t.Shape), n, got)
	}
	if t.DataType == runtime.Bytes {
		return jsonStrings(t, data, n)
	}
	t.Data = make([]byte, n*t.DataType.Size())
	e := elemDecoder{t: t, scratch: d.scratch}
	err = e.fill(data)
	d.scratch = e.scratch
	return err
}

// countLeaves returns the number of non-array values in the nested array
// v. fastjson bounds the nesting depth, and so the recursion.
func countLeaves(v *fastjson.Value) int {
	items, _ := v.Array()
	n := 0
	for _, it := range items {
		if it.Type() == fastjson.TypeArray {
			n += countLeaves(it)
		} else {
			n++
		}
	}
	return n
}

// elemDecoder writes JSON elements into a tensor's Data in row-major order.
type elemDecoder struct {
	t *runtime.Tensor
	i int // index of the next element
	// scratch holds the text of a floating-point number for strconv,
	// which rounds it correctly to the element's precision. It is reused
	// across the request's tensors (fastjson's MarshalTo makes any buffer
	// it writes to escape, so it lives on the heap).
	scratch []byte
}

func (e *elemDecoder) fill(arr *fastjson.Value) error {
	items, _ := arr.Array()
	for _, it := range items {
		if it.Type() == fastjson.TypeArray {
			if err := e.fill(it); err != nil {
				return err
			}
			continue
		}
		if err := e.put(it); err != nil {
			return err
		}
		e.i++
	}
	return nil
}

// put decodes v as the element e.i.
func (e *elemDecoder) put(v *fastjson.Value) error {
	t := e.t
	i := e.i
	dst := t.Data
	switch dt := t.DataType; dt {
	case runtime.Bool:
		switch v.Type() {
		case fastjson.TypeTrue:
			dst[i] = 1
		case fastjson.TypeFalse:
			dst[i] = 0
		default:
			return badRequest("input %q: element %d must be true or false, got %s", t.Name, i, describe(v))
		}
	case runtime.FP32, runtime.FP64, runtime.FP16:
		f, err := e.float(v, dt)
		if err != nil {
			return err
		}
		switch dt {
		case runtime.FP32:
			binary.LittleEndian.PutUint32(dst[i*4:], math.Float32bits(float32(f)))
		case runtime.FP64:
			binary.LittleEndian.PutUint64(dst[i*8:], math.Float64bits(f))
		default:
			binary.LittleEndian.PutUint16(dst[i*2:], float16.Fromfloat32(float32(f)).Bits())
		}
	case runtime.Int8, runtime.Int16, runtime.Int32, runtime.Int64:
		if v.Type() != fastjson.TypeNumber {
			return badRequest("input %q: element %d must be an integer, got %s", t.Name, i, describe(v))
		}
		// fastjson's Int64 parses exactly like strconv.ParseInt, without
		// a copy of the text.
		x, err := v.Int64()
		if err != nil {
			return e.intErr(v, err)
		}
		size := dt.Size()
		if bits := uint(size * 8); bits < 64 && (x < -1<<(bits-1) || x > 1<<(bits-1)-1) {
			return e.intErr(v, strconv.ErrRange)
		}
		putUint(dst, i, size, uint64(x))
	case runtime.Uint8, runtime.Uint16, runtime.Uint32, runtime.Uint64:
		if v.Type() != fastjson.TypeNumber {
			return badRequest("input %q: element %d must be an integer, got %s", t.Name, i, describe(v))
		}
		x, err := v.Uint64()
		if err != nil && !isRangeErr(err) {
			// Uint64 refuses any sign: a negative integer is out of
			// range, and -0 is 0.
			n, ierr := v.Int64()
			switch {
			case ierr == nil && n == 0:
				x, err = 0, nil
			case ierr == nil || isRangeErr(ierr):
				err = strconv.ErrRange
			}
		}
		if err != nil {
			return e.intErr(v, err)
		}
		size := dt.Size()
		if bits := uint(size * 8); bits < 64 && x > 1<<bits-1 {
			return e.intErr(v, strconv.ErrRange)
		}
		putUint(dst, i, size, x)
	default:
		return badRequest("input %q: cannot decode datatype %s", t.Name, dt)
	}
	return nil
}

// float parses the number v, rounded correctly to dt's precision (FP16 is
// rounded to float32 first). Numbers beyond the type's range become
// infinities, as a numpy cast would make them; fastjson also lets through
// NaN and Inf, which stay what they are.
// putUint writes the low size bytes of x, little-endian, as element i of
// dst (two's complement for signed values).
func putUint(dst []byte, i, size int, x uint64) {
	switch size {
	case 1:
		dst[i] = byte(x)
	case 2:
		binary.LittleEndian.PutUint16(dst[i*2:], uint16(x))
	case 4:
		binary.LittleEndian.PutUint32(dst[i*4:], uint32(x))
	default:
		binary.LittleEndian.PutUint64(dst[i*8:], x)
	}
}

func (e *elemDecoder) float(v *fastjson.Value, dt runtime.DataType) (float64, error) {
	if v.Type() != fastjson.TypeNumber {
		return 0, badRequest("input %q: element %d must be a number, got %s", e.t.Name, e.i, describe(v))
	}
	if e.scratch == nil {
		e.scratch = make([]byte, 0, 32)
	}
	e.scratch = v.MarshalTo(e.scratch[:0])
	bits := 32
	if dt == runtime.FP64 {
		bits = 64
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(e.scratch), len(e.scratch)), bits)
	if err != nil && !isRangeErr(err) {
		return 0, badRequest("input %q: element %d must be a number, got %s", e.t.Name, e.i, describe(v))
	}
	return f, nil
}

func (e *elemDecoder) intErr(v *fastjson.Value, err error) error {
	if isRangeErr(err) {
		return badRequest("input %q: element %d is out of range for %s, got %s", e.t.Name, e.i, e.t.DataType, describe(v))
	}
	return badRequest("input %q: element %d must be an integer, got %s", e.t.Name, e.i, describe(v))
}

func isRangeErr(err error) bool {
	if err == strconv.ErrRange {
		return true
	}
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// jsonStrings decodes a BYTES tensor's JSON strings. They are copied into
// one allocation, since they point into the parser's buffer.
func jsonStrings(t *runtime.Tensor, data *fastjson.Value, n int) error {
	total := 0
	i := 0
	if err := visitLeaves(data, func(v *fastjson.Value) error {
		if v.Type() != fastjson.TypeString {
			return badRequest("input %q: element %d must be a string, got %s", t.Name, i, describe(v))
		}
		s, _ := v.StringBytes()
		if !utf8.Valid(s) {
			return badRequest("input %q: BYTES element %d is not valid UTF-8, as JSON text must be: send arbitrary bytes as binary data (binary_data_size)", t.Name, i)
		}
		total += len(s)
		i++
		return nil
	}); err != nil {
		return err
	}
	var sb strings.Builder
	sb.Grow(total)
	_ = visitLeaves(data, func(v *fastjson.Value) error {
		s, _ := v.StringBytes()
		sb.Write(s)
		return nil
	})
	all := sb.String()
	strs := make([]string, n)
	off := 0
	i = 0
	_ = visitLeaves(data, func(v *fastjson.Value) error {
		s, _ := v.StringBytes()
		strs[i] = all[off : off+len(s)]
		off += len(s)
		i++
		return nil
	})
	t.Strings = strs
	return nil
}

// visitLeaves calls f on each non-array value of the nested array v in
// row-major order, stopping at the first error.
func visitLeaves(v *fastjson.Value, f func(*fastjson.Value) error) error {
	items, _ := v.Array()
	for _, it := range items {
		var err error
		if it.Type() == fastjson.TypeArray {
			err = visitLeaves(it, f)
		} else {
			err = f(it)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeRequestParameters reads the request-level parameters into req.
func decodeRequestParameters(v *fastjson.Value, req *inferRequest) error {
	v = present(v)
	if v == nil {
		return nil
	}
	if v.Type() != fastjson.TypeObject {
		return badRequest(`"parameters" must be a JSON object, got %s`, describe(v))
	}
	obj, _ := v.Object()
	if b := present(obj.Get("binary_data_output")); b != nil {
		switch b.Type() {
		case fastjson.TypeTrue:
			req.BinaryOutput = true
		case fastjson.TypeFalse:
		default:
			return badRequest(`parameter "binary_data_output" must be a boolean, got %s`, describe(b))
		}
	}
	for _, p := range [...]struct {
		name string
		dst  *int64
	}{{"timeout", &req.Timeout}, {"priority", &req.Priority}} {
		x := present(obj.Get(p.name))
		if x == nil {
			continue
		}
		n, ok := jsonInt(x)
		if !ok || n < 0 {
			return badRequest("parameter %q must be a non-negative integer, got %s", p.name, describe(x))
		}
		*p.dst = n
	}
	return nil
}

// decodeRequestedOutputs reads the request's "outputs" into req.Outputs.
func decodeRequestedOutputs(v *fastjson.Value, outputs []runtime.TensorInfo, req *inferRequest) error {
	v = present(v)
	if v == nil {
		return nil
	}
	if v.Type() != fastjson.TypeArray {
		return badRequest(`"outputs" must be an array, got %s`, describe(v))
	}
	items, _ := v.Array()
	for i, item := range items {
		if item.Type() != fastjson.TypeObject {
			return badRequest("outputs[%d] must be a JSON object, got %s", i, describe(item))
		}
		obj, _ := item.Object()
		nameV := present(obj.Get("name"))
		if nameV == nil {
			return badRequest(`outputs[%d]: missing "name"`, i)
		}
		if nameV.Type() != fastjson.TypeString {
			return badRequest(`outputs[%d]: "name" must be a string, got %s`, i, describe(nameV))
		}
		nameB, _ := nameV.StringBytes()
		idx := -1
		for j := range outputs {
			if outputs[j].Name == string(nameB) {
				idx = j
				break
			}
		}
		if idx < 0 {
			return badRequest("unknown output %s", quoteClient(nameB))
		}
		name := outputs[idx].Name
		for _, o := range req.Outputs {
			if o.Index == idx {
				return badRequest("output %q given twice", name)
			}
		}
		out := requestedOutput{Index: idx, Binary: -1}
		if params := present(obj.Get("parameters")); params != nil {
			if params.Type() != fastjson.TypeObject {
				return badRequest(`output %q: "parameters" must be a JSON object, got %s`, name, describe(params))
			}
			po, _ := params.Object()
			if po.Get("classification") != nil {
				return badRequest("output %q: classification extension is not supported", name)
			}
			if po.Get("shared_memory_region") != nil {
				return badRequest("output %q: shared memory is not supported", name)
			}
			if b := present(po.Get("binary_data")); b != nil {
				switch b.Type() {
				case fastjson.TypeTrue:
					out.Binary = 1
				case fastjson.TypeFalse:
					out.Binary = 0
				default:
					return badRequest(`output %q: parameter "binary_data" must be a boolean, got %s`, name, describe(b))
				}
			}
		}
		req.Outputs = append(req.Outputs, out)
	}
	return nil
}

// present returns v, or nil when v is JSON null: an optional field given as
// null counts as absent.
func present(v *fastjson.Value) *fastjson.Value {
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil
	}
	return v
}

// jsonInt returns v as an int64 when v is a JSON number written as an
// integer in range ("2", not "2.0" or "2e0").
func jsonInt(v *fastjson.Value) (int64, bool) {
	if v.Type() != fastjson.TypeNumber {
		return 0, false
	}
	n, err := v.Int64()
	return n, err == nil
}

// maxDescribe bounds the length of a client value quoted in an error.
const maxDescribe = 64

// quoteClient quotes a string the client sent for an error message,
// truncated past maxDescribe bytes.
func quoteClient(s []byte) string {
	if len(s) > maxDescribe {
		return strconv.Quote(string(s[:maxDescribe])) + "..."
	}
	return strconv.Quote(string(s))
}

// describe renders a client's JSON value for an error message: numbers and
// strings as written (strings quoted, both truncated), other values by type.
func describe(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return quoteClient(s)
	case fastjson.TypeNumber:
		raw := v.MarshalTo(nil)
		if len(raw) > maxDescribe {
			return string(raw[:maxDescribe]) + "..."
		}
		return string(raw)
	default:
		return v.Type().String()
	}
}

// jsonShapeString formats a client's shape array for an error message.
func jsonShapeString(dims []*fastjson.Value) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, d := range dims {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(describe(d))
	}
	sb.WriteByte(']')
	return sb.String()
}

// DecodeInputs decodes the inputs of a KServe v2 inference request body
// (JSON, or with headerLen ≥ 0 the binary tensor extension) against a
// signature, with the same checks as the server: for tools that read
// request files, such as "infergate reference build". The tensors may
// alias body.
func DecodeInputs(body []byte, headerLen int, inputs, outputs []runtime.TensorInfo) ([]runtime.Tensor, error) {
	var p fastjson.Parser
	var req inferRequest
	if err := decodeRequest(&p, body, headerLen, inputs, outputs, &req); err != nil {
		return nil, err
	}
	return req.Inputs, nil
}
