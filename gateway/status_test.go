package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/router"
	"github.com/infergate/infergate/runtime"
)

// TestStatusOf: every kind of the lower layers gets its status here, and
// only here.
func TestStatusOf(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		msg    string
	}{
		{"protocol", badRequest("bad %s", "shape"), http.StatusBadRequest, "bad shape"},
		{"invalid input", fmt.Errorf("%w: input x", runtime.ErrInvalidInput), http.StatusBadRequest, "invalid input: input x"},
		{"routing header", fmt.Errorf("%w: header X", router.ErrInvalidRequest), http.StatusBadRequest, "invalid request: header X"},
		{"not found", errdefs.New(errdefs.NotFound, "unknown model %q", "m"), http.StatusNotFound, `unknown model "m"`},
		{"no rollout", router.ErrNoRollout, http.StatusNotFound, "no rollout"},
		{"unavailable", errdefs.New(errdefs.Unavailable, "not ready"), http.StatusServiceUnavailable, "not ready"},
		{"unloading", runtime.ErrClosed, http.StatusServiceUnavailable, "model version is unloading: session is closed"},
		{"overloaded", errdefs.New(errdefs.Overloaded, "queue is full"), http.StatusServiceUnavailable, "queue is full"},
		{"throttled", errdefs.New(errdefs.Throttled, "queue is full"), http.StatusTooManyRequests, "queue is full"},
		{"queue timeout", errdefs.New(errdefs.Timeout, "timed out in the queue"), http.StatusGatewayTimeout, "timed out in the queue"},
		{"deadline", fmt.Errorf("%w: run terminated: %w", runtime.ErrClosed, context.DeadlineExceeded), http.StatusGatewayTimeout,
			"request timed out: model version is unloading: session is closed: run terminated: context deadline exceeded"},
		{"canceled", context.Canceled, statusClientClosed, "the client closed the request: context canceled"},
		{"model failure", errors.New("Non-zero status code"), http.StatusInternalServerError, "Non-zero status code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := statusOf(tt.err)
			if status != tt.status || msg != tt.msg {
				t.Fatalf("statusOf(%v) = %d %q, want %d %q", tt.err, status, msg, tt.status, tt.msg)
			}
		})
	}
}
