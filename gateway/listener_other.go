//go:build !linux

package gateway

import (
	"errors"
	"net"
)

// refuseNewConnections is Linux only: elsewhere the listener closes with
// what its accept queue holds.
func refuseNewConnections(ln net.Listener) (func() (int, error), error) {
	return nil, errors.ErrUnsupported
}
