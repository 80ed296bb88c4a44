package runtime

import (
	"encoding/binary"
	"math"

	"github.com/x448/float16"
	ort "github.com/yalue/onnxruntime_go"
)

// DataType is a tensor element type, named as in the KServe v2 protocol.
type DataType uint8

// The KServe v2 datatypes that ONNX Runtime supports.
const (
	Invalid DataType = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	FP32
	FP64
	Bytes
	numDataTypes
)

var dataTypeInfo = [numDataTypes]struct {
	name   string // KServe v2 name
	config string // Triton model configuration name
	size   int    // bytes per element; 0 for BYTES
	onnx   ort.TensorElementDataType
}{
	Invalid: {"INVALID", "TYPE_INVALID", 0, ort.TensorElementDataTypeUndefined},
	Bool:    {"BOOL", "TYPE_BOOL", 1, ort.TensorElementDataTypeBool},
	Uint8:   {"UINT8", "TYPE_UINT8", 1, ort.TensorElementDataTypeUint8},
	Uint16:  {"UINT16", "TYPE_UINT16", 2, ort.TensorElementDataTypeUint16},
	Uint32:  {"UINT32", "TYPE_UINT32", 4, ort.TensorElementDataTypeUint32},
	Uint64:  {"UINT64", "TYPE_UINT64", 8, ort.TensorElementDataTypeUint64},
	Int8:    {"INT8", "TYPE_INT8", 1, ort.TensorElementDataTypeInt8},
	Int16:   {"INT16", "TYPE_INT16", 2, ort.TensorElementDataTypeInt16},
	Int32:   {"INT32", "TYPE_INT32", 4, ort.TensorElementDataTypeInt32},
	Int64:   {"INT64", "TYPE_INT64", 8, ort.TensorElementDataTypeInt64},
	FP16:    {"FP16", "TYPE_FP16", 2, ort.TensorElementDataTypeFloat16},
	FP32:    {"FP32", "TYPE_FP32", 4, ort.TensorElementDataTypeFloat},
	FP64:    {"FP64", "TYPE_FP64", 8, ort.TensorElementDataTypeDouble},
	Bytes:   {"BYTES", "TYPE_STRING", 0, ort.TensorElementDataTypeString},
}

// ParseDataType returns the DataType with the given KServe v2 name ("FP32"),
// or Invalid.
func ParseDataType(name string) DataType {
	for dt := Bool; dt < numDataTypes; dt++ {
		if dataTypeInfo[dt].name == name {
			return dt
		}
	}
	return Invalid
}

// ParseConfigDataType returns the DataType with the given Triton model
// configuration name ("TYPE_FP32"), or Invalid.
func ParseConfigDataType(name string) DataType {
	for dt := Bool; dt < numDataTypes; dt++ {
		if dataTypeInfo[dt].config == name {
			return dt
		}
	}
	return Invalid
}

// String returns the KServe v2 name of the type.
func (d DataType) String() string {
	if d >= numDataTypes {
		return dataTypeInfo[Invalid].name
	}
	return dataTypeInfo[d].name
}

// ConfigName returns the Triton model configuration name of the type.
func (d DataType) ConfigName() string {
	if d >= numDataTypes {
		return dataTypeInfo[Invalid].config
	}
	return dataTypeInfo[d].config
}

// Size returns the size of one element in bytes, or 0 for BYTES and Invalid.
func (d DataType) Size() int {
	if d >= numDataTypes {
		return 0
	}
	return dataTypeInfo[d].size
}

func (d DataType) onnx() ort.TensorElementDataType {
	return dataTypeInfo[d].onnx
}

func fromONNX(t ort.TensorElementDataType) DataType {
	for dt := Bool; dt < numDataTypes; dt++ {
		if dataTypeInfo[dt].onnx == t {
			return dt
		}
	}
	return Invalid
}

// Float64 decodes the element at the start of b, in this type's binary
// form, as a float64 (BOOL as 0 or 1). It returns NaN for BYTES and
// Invalid. b must hold a whole element.
func (d DataType) Float64(b []byte) float64 {
	switch d {
	case FP32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case FP64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	case FP16:
		return float64(float16.Frombits(binary.LittleEndian.Uint16(b)).Float32())
	case Bool, Uint8:
		return float64(b[0])
	case Int8:
		return float64(int8(b[0]))
	case Uint16:
		return float64(binary.LittleEndian.Uint16(b))
	case Int16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case Uint32:
		return float64(binary.LittleEndian.Uint32(b))
	case Int32:
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case Uint64:
		return float64(binary.LittleEndian.Uint64(b))
	case Int64:
		return float64(int64(binary.LittleEndian.Uint64(b)))
	}
	return math.NaN()
}
