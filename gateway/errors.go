package gateway

import (
	"fmt"
	"net/http"
)

// Error is a protocol error: an HTTP status and the message sent to the
// client as the KServe error body, {"error": "..."}.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// badRequest returns a 400 Error with a formatted message.
func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}
