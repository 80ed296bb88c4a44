package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestKindOf(t *testing.T) {
	closed := Sentinel(Unavailable, "session is closed")
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Internal},
		{"plain", errors.New("boom"), Internal},
		{"new", New(NotFound, "no model %q", "m"), NotFound},
		{"wrapped new", fmt.Errorf("route: %w", New(Overloaded, "queue is full")), Overloaded},
		{"sentinel", closed, Unavailable},
		{"wrapped sentinel", fmt.Errorf("%w: input x", Sentinel(Invalid, "invalid input")), Invalid},
		{"deadline", context.DeadlineExceeded, Timeout},
		{"deadline beats a sentinel", fmt.Errorf("%w: run terminated: %w", closed, context.DeadlineExceeded), Timeout},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), Canceled},
		{"sentinel beats canceled", fmt.Errorf("%w: run terminated: %w", closed, context.Canceled), Unavailable},
		{"cause kept", &Error{Kind: Unavailable, Msg: "m", Err: errors.New("cause")}, Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(tc.err); got != tc.want {
				t.Fatalf("KindOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	e := &Error{Kind: Overloaded, Msg: "full", RetryAfter: 2 * time.Second}
	if got := RetryAfter(fmt.Errorf("x: %w", e)); got != 2*time.Second {
		t.Fatalf("RetryAfter = %v", got)
	}
	if got := RetryAfter(errors.New("x")); got != 0 {
		t.Fatalf("RetryAfter = %v", got)
	}
}

func TestKindString(t *testing.T) {
	if Throttled.String() != "throttled" || Kind(200).String() != "kind(200)" {
		t.Fatal(Throttled.String(), Kind(200).String())
	}
}
