package gateway

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/x448/float16"

	"github.com/infergate/infergate/runtime"
)

// encodeResponse appends the KServe v2 inference response for outputs to
// buf and returns it:
//
//	{"model_name":"m","model_version":"1","id":"42","outputs":[
//	  {"name":"y","datatype":"FP32","shape":[2],"data":[1.5,2]},
//	  {"name":"z","datatype":"INT64","shape":[1],"parameters":{"binary_data_size":8}}]}
//
// "id" is left out when id is empty. JSON data is flat, row-major (the shape
// carries the structure), as Triton writes it. binary[i] says whether
// outputs[i] is sent with the binary tensor data extension (a missing entry
// means false): its JSON carries parameters.binary_data_size instead of
// "data", and its bytes follow the JSON, in output order — fixed-size
// elements little-endian as in Tensor.Data, BYTES elements each as a 4-byte
// little-endian length and the bytes.
//
// It returns the length of the JSON part (from the end of the buf it was
// given) when any output is binary, for the Inference-Header-Content-Length
// header, and -1 otherwise.
//
// Floating-point values that JSON cannot express are written as NaN,
// Infinity and -Infinity, which Python's json module (and so the KServe and
// Triton Python clients) reads back; ask for binary outputs to stay within
// strict JSON. BYTES elements in JSON are strings with invalid UTF-8 replaced
// by U+FFFD; ask for binary outputs to get arbitrary bytes unchanged.
func encodeResponse(buf []byte, model string, version int64, id string, outputs []runtime.Tensor, binary []bool) ([]byte, int) {
	start := len(buf)
	buf = append(buf, `{"model_name":`...)
	buf = appendJSONString(buf, model)
	buf = append(buf, `,"model_version":"`...)
	buf = strconv.AppendInt(buf, version, 10)
	buf = append(buf, '"')
	if id != "" {
		buf = append(buf, `,"id":`...)
		buf = appendJSONString(buf, id)
	}
	buf = append(buf, `,"outputs":[`...)
	binarySize := 0
	anyBinary := false
	for i := range outputs {
		t := &outputs[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"name":`...)
		buf = appendJSONString(buf, t.Name)
		buf = append(buf, `,"datatype":"`...)
		buf = append(buf, t.DataType.String()...)
		buf = append(buf, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, d, 10)
		}
		buf = append(buf, ']')
		if i < len(binary) && binary[i] {
			anyBinary = true
			n := binaryLen(t)
			binarySize += n
			buf = append(buf, `,"parameters":{"binary_data_size":`...)
			buf = strconv.AppendInt(buf, int64(n), 10)
			buf = append(buf, "}}"...)
			continue
		}
		buf = append(buf, `,"data":[`...)
		buf = appendJSONData(buf, t)
		buf = append(buf, "]}"...)
	}
	buf = append(buf, "]}"...)
	if !anyBinary {
		return buf, -1
	}
	jsonLen := len(buf) - start
	buf = slices.Grow(buf, binarySize)
	for i := range outputs {
		if i < len(binary) && binary[i] {
			buf = appendBinaryData(buf, &outputs[i])
		}
	}
	return buf, jsonLen
}

// binaryLen returns the size of t in the binary tensor data extension.
func binaryLen(t *runtime.Tensor) int {
	if t.DataType != runtime.Bytes {
		return len(t.Data)
	}
	n := 4 * len(t.Strings)
	for _, s := range t.Strings {
		n += len(s)
	}
	return n
}

// appendBinaryData appends t in the binary tensor data extension's layout.
func appendBinaryData(buf []byte, t *runtime.Tensor) []byte {
	if t.DataType != runtime.Bytes {
		return append(buf, t.Data...)
	}
	for _, s := range t.Strings {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// jsonWidth guesses the bytes one element of dt takes in JSON, comma
// included, to size the buffer once.
func jsonWidth(dt runtime.DataType) int {
	switch dt {
	case runtime.Bool, runtime.Uint16, runtime.Int16:
		return 6
	case runtime.Uint8, runtime.Int8:
		return 4
	case runtime.Uint32, runtime.Int32, runtime.FP16:
		return 8
	case runtime.FP64:
		return 20
	default:
		return 12
	}
}

// appendJSONData appends t's elements as a flat list of JSON values, without
// the brackets.
func appendJSONData(buf []byte, t *runtime.Tensor) []byte {
	if t.DataType == runtime.Bytes {
		for i, s := range t.Strings {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, s)
		}
		return buf
	}
	size := t.DataType.Size()
	if size == 0 {
		return buf
	}
	n := len(t.Data) / size
	buf = slices.Grow(buf, n*jsonWidth(t.DataType))
	d := t.Data
	for i := range n {
		if i > 0 {
			buf = append(buf, ',')
		}
		switch t.DataType {
		case runtime.Bool:
			if d[i] != 0 {
				buf = append(buf, "true"...)
			} else {
				buf = append(buf, "false"...)
			}
		case runtime.Uint8:
			buf = strconv.AppendUint(buf, uint64(d[i]), 10)
		case runtime.Uint16:
			buf = strconv.AppendUint(buf, uint64(binary.LittleEndian.Uint16(d[i*2:])), 10)
		case runtime.Uint32:
			buf = strconv.AppendUint(buf, uint64(binary.LittleEndian.Uint32(d[i*4:])), 10)
		case runtime.Uint64:
			buf = strconv.AppendUint(buf, binary.LittleEndian.Uint64(d[i*8:]), 10)
		case runtime.Int8:
			buf = strconv.AppendInt(buf, int64(int8(d[i])), 10)
		case runtime.Int16:
			buf = strconv.AppendInt(buf, int64(int16(binary.LittleEndian.Uint16(d[i*2:]))), 10)
		case runtime.Int32:
			buf = strconv.AppendInt(buf, int64(int32(binary.LittleEndian.Uint32(d[i*4:]))), 10)
		case runtime.Int64:
			buf = strconv.AppendInt(buf, int64(binary.LittleEndian.Uint64(d[i*8:])), 10)
		case runtime.FP16:
			f := float16.Frombits(binary.LittleEndian.Uint16(d[i*2:])).Float32()
			buf = appendFloat(buf, float64(f), 32)
		case runtime.FP32:
			f := math.Float32frombits(binary.LittleEndian.Uint32(d[i*4:]))
			buf = appendFloat(buf, float64(f), 32)
		case runtime.FP64:
			buf = appendFloat(buf, math.Float64frombits(binary.LittleEndian.Uint64(d[i*8:])), 64)
		}
	}
	return buf
}

// appendFloat appends f in its shortest form for the given bit size, and
// the non-finite values as NaN, Infinity and -Infinity.
func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case f != f:
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: it escapes '"', '\\' and
// control characters, and writes invalid UTF-8 as \ufffd.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
