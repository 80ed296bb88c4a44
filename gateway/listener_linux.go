//go:build linux

package gateway

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// synFilter is a classic BPF socket filter for a listening TCP socket: it
// drops segments with SYN set and ACK clear (new connection attempts) and
// lets the rest through, so that handshakes already under way complete.
// A socket filter sees the segment from its TCP header; byte 13 holds the
// flags.
var synFilter = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 13},
	{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x12}, // SYN | ACK
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0x02, Jt: 0, Jf: 1},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
}

// refuseNewConnections makes the kernel drop new connection attempts to
// ln, whose clients retry and, once ln closes, are refused, while the
// connections whose handshake completed wait in the accept queue to be
// accepted. queued reports the length of that queue (TCP_INFO's
// tcpi_unacked, for a listening socket).
func refuseNewConnections(ln net.Listener) (queued func() (int, error), err error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	prog := unix.SockFprog{Len: uint16(len(synFilter)), Filter: &synFilter[0]}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	return func() (int, error) {
		var n int
		var serr error
		if err := raw.Control(func(fd uintptr) {
			var info *unix.TCPInfo
			info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			if serr == nil {
				n = int(info.Unacked)
			}
		}); err != nil {
			return 0, err
		}
		return n, serr
	}, nil
}
