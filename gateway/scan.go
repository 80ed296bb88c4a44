package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"unsafe"

	"github.com/valyala/fastjson"
	"github.com/x448/float16"

	"github.com/infergate/infergate/runtime"
)

// The one-pass decoder.
//
// decodeRequest first runs fast, which reads the JSON part once, left to
// right, and writes each element of a "data" array straight into the
// tensor buffer as it is scanned, checking the element count as it goes.
// It takes the requests clients send: keys and names without escapes, an
// input's "data" after its "name", "datatype" and "shape" (Triton's and
// KServe's clients write them in that order; other orders are decoded in
// two passes). The small values (parameters, outputs, BYTES data) are
// handed to fastjson, a span at a time.
//
// fast has no error messages. On anything it does not take, valid or not,
// it returns errFallback and decodeRequest decodes the request again with
// the tree decoder, whose results and error texts are the ones of record.
// So fast must never accept what the tree decoder refuses, and must build
// the same request when both accept: FuzzDecodeFast checks both.

// withFiniteLiterals returns jsonPart with each Infinity outside strings
// written as fastjson's "Inf" padded with spaces to the same length, so
// that the tree decoder takes Infinity and -Infinity as the server writes
// them (fastjson takes NaN and Inf, not Infinity). jsonPart itself is not
// changed; without an Infinity it is returned as is.
func withFiniteLiterals(jsonPart []byte) []byte {
	if !bytes.Contains(jsonPart, []byte("Infinity")) {
		return jsonPart
	}
	out := bytes.Clone(jsonPart)
	inString := false
	for i := 0; i < len(out); i++ {
		switch c := out[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == 'I' && bytes.HasPrefix(out[i:], []byte("Infinity")):
			copy(out[i+3:i+8], "     ")
			i += 7
		}
	}
	return out
}

// errFallback reports that the one-pass decoder hands the request to the
// tree decoder.
var errFallback = errors.New("gateway: request left to the tree decoder")

const (
	// maxScanDepth bounds the nesting the scanner follows (fastjson's limit
	// is 300); deeper documents fall back.
	maxScanDepth = 64
	// maxArena is the largest decoding buffer a pooled request keeps.
	maxArena = 1 << 20
)

// scanner reads JSON from b at pos.
type scanner struct {
	b   []byte
	pos int
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// str reads the string at pos, which holds '"', and returns its bytes
// (aliasing b). A string with an escape is not taken.
func (s *scanner) str() ([]byte, bool) {
	start := s.pos + 1
	n := bytes.IndexByte(s.b[start:], '"')
	if n < 0 {
		return nil, false
	}
	raw := s.b[start : start+n]
	if bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false
	}
	s.pos = start + n + 1
	return raw, true
}

// object reads the object at pos (after whitespace), calling member for
// each key with pos at the start of its value; member must consume the
// value.
func (s *scanner) object(member func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.pos++
		s.peek()
		if !member(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// array reads the array at pos (after whitespace), calling elem for each
// element with pos at its start; elem must consume the element.
func (s *scanner) array(elem func(i int) bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.pos++
	if s.peek() == ']' {
		s.pos++
		return true
	}
	for i := 0; ; i++ {
		s.peek()
		if !elem(i) {
			return false
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// skip consumes one value, checking its syntax at least as strictly as
// fastjson's parser does.
func (s *scanner) skip(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func(int) bool { return s.skip(depth + 1) })
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || isDigit(c):
		return len(s.token()) > 1 || isDigit(c)
	}
	return false
}

// span consumes one value and returns its text.
func (s *scanner) span() ([]byte, bool) {
	start := s.pos
	if !s.skip(0) {
		return nil, false
	}
	return s.b[start:s.pos], true
}

// parse parses the value at pos with p, for a key that may come once
// (*seen says it came before: not taken). The value is valid until p
// parses again.
func (s *scanner) parse(p *fastjson.Parser, seen *bool) (*fastjson.Value, bool) {
	if *seen {
		return nil, false
	}
	*seen = true
	span, ok := s.span()
	if !ok {
		return nil, false
	}
	v, err := p.ParseBytes(span)
	return v, err == nil
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.pos < len(lit) || string(s.b[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// token consumes fastjson's number token at pos: the longest run of
// digits, '.', '-', '+', 'e' and 'E'.
func (s *scanner) token() []byte {
	start := s.pos
	for s.pos < len(s.b) && isNumberByte(s.b[s.pos]) {
		s.pos++
	}
	return s.b[start:s.pos]
}

func isDigit(c byte) bool { return c-'0' <= 9 }

func isNumberByte(c byte) bool {
	return isDigit(c) || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
}

// pow10 holds the powers of ten exactly representable as float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// float reads the number at pos, rounded correctly to bits (32 or 64) as
// strconv.ParseFloat(token, bits) rounds it: out-of-range numbers become
// infinities, as before.
//
// Decimals of up to 19 significant digits take fastFloat's exact paths;
// the rest go to strconv on the token in place.
func (s *scanner) float(bits int) (float64, bool) {
	b := s.b
	start := s.pos
	i := start
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	if i < len(b) && (b[i] == 'I' || b[i] == 'N') {
		// The non-finite values as the server writes them (appendFloat).
		switch rest := b[i:]; {
		case bytes.HasPrefix(rest, []byte("Infinity")):
			s.pos = i + len("Infinity")
			if neg {
				return math.Inf(-1), true
			}
			return math.Inf(1), true
		case !neg && bytes.HasPrefix(rest, []byte("NaN")):
			s.pos = i + len("NaN")
			return math.NaN(), true
		}
		return 0, false
	}
	var mant uint64
	digitsStart, dot := i, -1
	for ; i < len(b); i++ {
		c := b[i]
		if c-'0' <= 9 {
			mant = mant*10 + uint64(c-'0')
			continue
		}
		if c != '.' || dot >= 0 {
			break
		}
		dot = i
	}
	digits, exp := i-digitsStart, 0
	if dot >= 0 {
		digits--
		exp = dot + 1 - i
	}
	ok := digits > 0
	if ok && i < len(b) && (b[i]|0x20) == 'e' {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		expStart, e := i, 0
		for i < len(b) && isDigit(b[i]) && e < 10000 {
			e = e*10 + int(b[i]-'0')
			i++
		}
		if eneg {
			e = -e
		}
		exp += e
		ok = i > expStart
	}
	if ok && digits > 19 {
		// Leading zeros do not count against the 19 digits a uint64 holds.
		for j := digitsStart; j < len(b) && (b[j] == '0' || b[j] == '.'); j++ {
			if b[j] == '0' {
				digits--
			}
		}
	}
	if ok && digits <= 19 && (i == len(b) || !isNumberByte(b[i])) {
		if f, ok := fastFloat(mant, exp, bits); ok {
			s.pos = i
			if neg {
				f = -f
			}
			return f, true
		}
	}
	s.pos = start
	tok := s.token()
	if len(tok) == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), bits)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

// pow10f32 holds 10^-44 to 10^44, each the float64 nearest it: the scale
// of fastFloat's float32 path, index exp+44.
var pow10f32 = [...]float64{
	1e-44, 1e-43, 1e-42, 1e-41, 1e-40, 1e-39, 1e-38, 1e-37, 1e-36, 1e-35, 1e-34, 1e-33, 1e-32,
	1e-31, 1e-30, 1e-29, 1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21, 1e-20, 1e-19,
	1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6,
	1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25,
	1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40,
	1e41, 1e42, 1e43, 1e44,
}

// fastFloat returns mant × 10^exp rounded correctly to bits, when it can
// prove the rounding right; mant has at most 19 digits.
//
// For float64, a mantissa of at most 2^53 and a power of ten of at most 22
// make one correctly rounded operation (Clinger's fast path).
//
// For float32, one multiplication by the float64 nearest 10^exp leaves the
// product within 2 units in the last place (float64's) of the exact value:
// half a unit each from the mantissa, the power and the product. Rounded to
// float32 it is then right unless it lies that close to a midpoint between
// two float32s, whose low 29 bits are 1<<28; the path takes a margin of 16
// units, and leaves closer numbers, and results outside the normal float32
// range, to strconv. This covers the 17 digits Python prints for a float32
// as well as short decimals.
func fastFloat(mant uint64, exp, bits int) (float64, bool) {
	if mant == 0 {
		return 0, true
	}
	if bits == 32 {
		if exp < -44 || exp > 44 {
			return 0, false
		}
		f := float64(mant) * pow10f32[exp+44]
		if f < 0x1p-126 || f > math.MaxFloat32 {
			return 0, false
		}
		low := int64(math.Float64bits(f) & (1<<29 - 1))
		if d := low - 1<<28; d >= -16 && d <= 16 {
			return 0, false
		}
		return f, true
	}
	if mant > 1<<53 || exp < -22 || exp > 22 {
		return 0, false
	}
	f := float64(mant)
	if exp < 0 {
		f /= pow10[-exp]
	} else {
		f *= pow10[exp]
	}
	return f, true
}

// integer reads an integer of 1 to 18 digits, with a '-' when signed allows
// it: the integers fastjson's Int64 and Uint64 read the same way. Longer
// or other numbers are not taken.
func (s *scanner) integer(signed bool) (int64, bool) {
	b := s.b
	i := s.pos
	neg := signed && i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var x int64
	for i < len(b) && isDigit(b[i]) {
		x = x*10 + int64(b[i]-'0')
		i++
	}
	if n := i - start; n == 0 || n > 18 || (i < len(b) && isNumberByte(b[i])) {
		return 0, false
	}
	s.pos = i
	if neg {
		x = -x
	}
	return x, true
}

// fast is the one-pass decoder; see the comment at the top of the file.
func (d *decoder) fast(p *fastjson.Parser, jsonPart []byte, outputs []runtime.TensorInfo) error {
	req := d.req
	s := scanner{b: jsonPart}
	var haveID, haveParams, haveInputs, haveOutputs, anyInput bool
	var seenSmall [4]uint64
	seen := seenSmall[:]
	if n := (len(d.sig) + 63) / 64; n > len(seen) {
		seen = make([]uint64, n)
	}
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			if haveID || s.peek() != '"' {
				return false
			}
			haveID = true
			raw, ok := s.str()
			req.ID = string(raw)
			return ok
		case "parameters":
			v, ok := s.parse(p, &haveParams)
			return ok && decodeRequestParameters(v, req) == nil
		case "inputs":
			if haveInputs {
				return false
			}
			haveInputs = true
			d.prepare(true)
			return s.array(func(int) bool {
				anyInput = true
				idx, ok := d.fastInput(p, &s)
				if !ok || seen[idx/64]&(1<<(idx%64)) != 0 {
					return false
				}
				seen[idx/64] |= 1 << (idx % 64)
				return true
			})
		case "outputs":
			v, ok := s.parse(p, &haveOutputs)
			return ok && decodeRequestedOutputs(v, outputs, req) == nil
		}
		return s.skip(1)
	})
	if s.peek(); !ok || s.pos != len(s.b) || !haveInputs || !anyInput {
		return errFallback
	}
	for i := range d.sig {
		if seen[i/64]&(1<<(i%64)) == 0 {
			return errFallback
		}
	}
	if len(d.bin) != d.off {
		return errFallback
	}
	return nil
}

// fastInput decodes one entry of "inputs" into its slot of req.Inputs and
// returns the slot's index.
func (d *decoder) fastInput(p *fastjson.Parser, s *scanner) (int, bool) {
	var (
		name, dtype []byte
		shape       []int64
		haveShape   bool
		haveParams  bool
		size        int64  = -1 // binary_data_size
		data        []byte      // the text of "data", when it came early
		haveData    bool
		idx         = -1
		t           *runtime.Tensor
	)
	// resolve checks the name, datatype and shape, once all three are in.
	resolve := func() bool {
		for j := range d.sig {
			if d.sig[j].Name == string(name) {
				idx = j
				break
			}
		}
		if idx < 0 {
			return false
		}
		info := &d.sig[idx]
		if string(dtype) != info.DataType.String() || !runtime.ShapeMatches(info.Shape, shape) {
			return false
		}
		t = &d.req.Inputs[idx]
		t.Name, t.DataType, t.Shape = info.Name, info.DataType, shape
		return true
	}
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "name", "datatype":
			dst := &name
			if key[0] == 'd' {
				dst = &dtype
			}
			if *dst != nil || s.peek() != '"' {
				return false
			}
			v, ok := s.str()
			*dst = v
			return ok
		case "shape":
			if haveShape {
				return false
			}
			haveShape = true
			start := len(d.shapes)
			ok := s.array(func(int) bool {
				n, ok := s.integer(true)
				if !ok || n < 0 || len(d.shapes) == cap(d.shapes) {
					return false
				}
				d.shapes = append(d.shapes, n)
				return true
			})
			shape = d.shapes[start:len(d.shapes):len(d.shapes)]
			return ok
		case "parameters":
			v, ok := s.parse(p, &haveParams)
			if !ok || v.Type() != fastjson.TypeObject {
				return false
			}
			po, _ := v.Object()
			if po.Get("shared_memory_region") != nil {
				return false
			}
			if sv := present(po.Get("binary_data_size")); sv != nil {
				k, ok := jsonInt(sv)
				if !ok || k < 0 {
					return false
				}
				size = k
			}
			return true
		case "data":
			if haveData || s.peek() == 'n' {
				return false
			}
			haveData = true
			if name != nil && dtype != nil && haveShape {
				return resolve() && d.fastData(p, s, t)
			}
			var ok bool
			data, ok = s.span()
			return ok
		}
		return s.skip(1)
	})
	if !ok || name == nil || dtype == nil || !haveShape {
		return 0, false
	}
	if t == nil && !resolve() {
		return 0, false
	}
	switch {
	case haveData && size >= 0, !haveData && size < 0:
		return 0, false
	case size >= 0:
		if !d.binary || d.binaryBytes(t, size) != nil {
			return 0, false
		}
	case data != nil:
		sub := scanner{b: data}
		if !d.fastData(p, &sub, t) {
			return 0, false
		}
	}
	return idx, true
}

// fastData decodes the "data" array at s.pos into t, whose name, datatype
// and shape are set.
func (d *decoder) fastData(p *fastjson.Parser, s *scanner, t *runtime.Tensor) bool {
	if s.peek() != '[' {
		return false
	}
	n64, err := runtime.ElementCount(t.Shape, int64(d.jsonLen))
	if err != nil {
		return false
	}
	n := int(n64)
	if t.DataType == runtime.Bytes {
		span, ok := s.span()
		if !ok {
			return false
		}
		v, err := p.ParseBytes(span)
		return err == nil && countLeaves(v) == n && jsonStrings(t, v, n) == nil
	}
	size := t.DataType.Size()
	t.Data = d.alloc(n * size)
	return s.elements(t, n)
}

// elements scans the nested array at s.pos, writing its n leaves into
// t.Data in row-major order. Any nesting is taken, as the tree decoder
// flattens it: only the count of leaves must match the shape.
func (s *scanner) elements(t *runtime.Tensor, n int) bool {
	dst, dt := t.Data, t.DataType
	i, depth := 0, 0
	if dt == runtime.FP32 {
		if ok, done := s.flatFloat32(dst, n); done {
			return ok
		}
	}
	for {
		// At the start of a value, or of an array's first value.
		switch s.peek() {
		case '[':
			s.pos++
			if depth++; depth > maxScanDepth {
				return false
			}
			if s.peek() != ']' {
				continue
			}
			s.pos++ // an empty array is a value without leaves
			if depth--; depth == 0 {
				return i == n
			}
		default:
			if i == n || !s.element(dst, dt, i) {
				return false
			}
			i++
		}
		// After a value.
		for {
			c := s.peek()
			if c == ',' {
				s.pos++
				break
			}
			if c != ']' {
				return false
			}
			s.pos++
			if depth--; depth == 0 {
				return i == n
			}
		}
	}
}

// flatFloat32 decodes a flat array of n numbers into dst, the common
// case, in one tight loop. It reports done false, having consumed nothing,
// when the array is anything else (nested, or with a leaf that is not a
// plain number), for elements to read as usual; done true with ok false
// when the array is flat but does not hold n numbers.
func (s *scanner) flatFloat32(dst []byte, n int) (ok, done bool) {
	start := s.pos
	s.pos++ // '['
	if c := s.peek(); c == ']' || c == '[' {
		s.pos = start
		return false, false
	}
	b := s.b
	for i := 0; ; i++ {
		if i == n {
			return false, true // more numbers than the shape holds
		}
		f, ok := s.float(32)
		if !ok {
			s.pos = start
			return false, false
		}
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(float32(f)))
		c := s.peek()
		if c == ']' {
			s.pos++
			return i+1 == n, true
		}
		if c != ',' {
			s.pos = start
			return false, false
		}
		s.pos++
		if s.pos < len(b) && b[s.pos] <= ' ' {
			s.peek()
		}
	}
}

// element decodes the leaf at s.pos as element i of dst.
func (s *scanner) element(dst []byte, dt runtime.DataType, i int) bool {
	switch dt {
	case runtime.FP32:
		f, ok := s.float(32)
		binary.LittleEndian.PutUint32(dst[i*4:], math.Float32bits(float32(f)))
		return ok
	case runtime.FP64:
		f, ok := s.float(64)
		binary.LittleEndian.PutUint64(dst[i*8:], math.Float64bits(f))
		return ok
	case runtime.FP16:
		f, ok := s.float(32)
		binary.LittleEndian.PutUint16(dst[i*2:], float16.Fromfloat32(float32(f)).Bits())
		return ok
	case runtime.Bool:
		switch {
		case s.literal("true"):
			dst[i] = 1
		case s.literal("false"):
			dst[i] = 0
		default:
			return false
		}
		return true
	case runtime.Int8, runtime.Int16, runtime.Int32, runtime.Int64:
		x, ok := s.integer(true)
		size := dt.Size()
		if bits := uint(size * 8); !ok || bits < 64 && (x < -1<<(bits-1) || x > 1<<(bits-1)-1) {
			return false
		}
		putUint(dst, i, size, uint64(x))
		return true
	case runtime.Uint8, runtime.Uint16, runtime.Uint32, runtime.Uint64:
		x, ok := s.integer(false)
		size := dt.Size()
		if bits := uint(size * 8); !ok || bits < 64 && x > 1<<bits-1 {
			return false
		}
		putUint(dst, i, size, uint64(x))
		return true
	}
	return false
}

// alloc returns n bytes for decoded tensor data from the request's arena,
// aligned to runtime.TensorAlign. The arena is reused by the next request the
// pooled inferRequest serves, like the body the other tensors alias.
func (d *decoder) alloc(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	a := d.req.arena
	off := len(a)
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(a[:cap(a)])))+uintptr(off)) % runtime.TensorAlign; r != 0 {
		off += runtime.TensorAlign - r
	}
	if off+n > cap(a) {
		a = make([]byte, 0, max(2*cap(a), n+runtime.TensorAlign, 4096))
		off = 0
		if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(a[:cap(a)]))) % runtime.TensorAlign); r != 0 {
			off = runtime.TensorAlign - r
		}
	}
	d.req.arena = a[:off+n]
	return a[off : off+n : off+n]
}
