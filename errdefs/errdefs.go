// Package errdefs is the vocabulary of failures below the protocol
// layers: an error carries a Kind (not found, unavailable, overloaded,
// ...), never an HTTP status or a gRPC code. The protocol packages
// (gateway, grpc) each map kinds to their protocol in one function.
//
// A lower layer returns either an *Error built with New, or wraps one of
// its sentinels made with Sentinel; KindOf finds the kind through any
// chain of %w wrapping.
package errdefs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind classifies a failure by what the caller should do about it.
type Kind uint8

// The kinds. Internal, the zero value, is anything unclassified: a bug or
// a failure of the model itself.
const (
	// Internal: the server or the model failed (HTTP 500).
	Internal Kind = iota
	// Invalid: the request is wrong and retrying it will not help (400).
	Invalid
	// NotFound: no such model, version, label or rollout (404).
	NotFound
	// Unavailable: it exists but cannot serve now: loading, unloading,
	// stopping (503).
	Unavailable
	// Overloaded: refused to protect the server (a full queue, memory
	// spent); retry after RetryAfter (503).
	Overloaded
	// Throttled: refused because a client or model is over its own
	// limit; retry after RetryAfter (429).
	Throttled
	// Timeout: a deadline or a queue timeout expired (504).
	Timeout
	// Canceled: the caller went away.
	Canceled
	// Unauthenticated: the call has no valid credentials (401).
	Unauthenticated
	// Forbidden: the credentials do not allow the call (403).
	Forbidden
)

var kindNames = [...]string{"internal", "invalid", "not found", "unavailable", "overloaded", "throttled", "timeout", "canceled", "unauthenticated", "forbidden"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is a failure with a kind and a message meant for the client.
type Error struct {
	Kind Kind
	Msg  string
	// RetryAfter, when positive, is when the client may try again.
	RetryAfter time.Duration
	// Err is the cause, if any; it is not part of the message.
	Err error
}

// New returns an *Error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// kinded is implemented by *Error and by sentinels.
type kinded interface{ errorKind() Kind }

func (e *Error) errorKind() Kind { return e.Kind }

type sentinel struct {
	kind Kind
	msg  string
}

func (s *sentinel) Error() string   { return s.msg }
func (s *sentinel) errorKind() Kind { return s.kind }

// Sentinel returns a sentinel error of kind k, for errors.Is and for
// wrapping with %w.
func Sentinel(k Kind, msg string) error { return &sentinel{kind: k, msg: msg} }

// KindOf returns the kind of err: Timeout for any chain holding
// context.DeadlineExceeded (whatever else wraps it, since the deadline
// is what the caller set), else the kind of the outermost *Error or
// sentinel in the chain, else Canceled for context.Canceled, else
// Internal.
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	var k kinded
	if errors.As(err, &k) {
		return k.errorKind()
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return Internal
}

// RetryAfter returns the RetryAfter of the first *Error in err's chain,
// or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
