package grpc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCodeOf: every kind maps to Triton's code, through wrapping, and a
// status error keeps its code.
func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{errdefs.New(errdefs.Invalid, "x"), codes.InvalidArgument},
		{fmt.Errorf("model: %w", errdefs.New(errdefs.NotFound, "x")), codes.NotFound},
		{errdefs.New(errdefs.Unavailable, "x"), codes.Unavailable},
		{errdefs.New(errdefs.Overloaded, "full queue"), codes.Unavailable},
		{errdefs.New(errdefs.Throttled, "x"), codes.ResourceExhausted},
		{errdefs.New(errdefs.Timeout, "x"), codes.DeadlineExceeded},
		{fmt.Errorf("run: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{errdefs.New(errdefs.Unauthenticated, "x"), codes.Unauthenticated},
		{errdefs.New(errdefs.Forbidden, "x"), codes.PermissionDenied},
		{errors.New("onnxruntime failed"), codes.Internal},
		{status.Error(codes.PermissionDenied, "x"), codes.PermissionDenied},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			if got := codeOf(tc.err); got != tc.want {
				t.Errorf("codeOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if st, _ := status.FromError(toStatus(errdefs.New(errdefs.NotFound, `unknown model "m"`))); st.Message() != `unknown model "m"` {
		t.Errorf("the text changed: %q", st.Message())
	}
}

// TestFromRawInPlace: raw contents at an aligned address become the
// tensor's bytes without a copy; unaligned ones are copied once, into an
// aligned buffer.
func TestFromRawInPlace(t *testing.T) {
	buf := runtime.AlignedBuffer(4*8 + 4)
	for _, tc := range []struct {
		name    string
		b       []byte
		inPlace bool
	}{
		{"aligned", buf[:32], true},
		{"unaligned", buf[4:36], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tensor := runtime.Tensor{Name: "x", DataType: runtime.FP32, Shape: []int64{2, 4}}
			if err := fromRaw(&tensor, tc.b, 8); err != nil {
				t.Fatal(err)
			}
			same := unsafe.SliceData(tensor.Data) == unsafe.SliceData(tc.b)
			if same != tc.inPlace || !runtime.Aligned(tensor.Data) || len(tensor.Data) != 32 {
				t.Errorf("in place %v (want %v), aligned %v, %d bytes", same, tc.inPlace, runtime.Aligned(tensor.Data), len(tensor.Data))
			}
		})
	}
}
