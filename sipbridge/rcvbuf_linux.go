package sipbridge

import (
	"net"
	"syscall"
)

// receiveBuffer returns the receive buffer the system grants uc, in bytes; 0 when it does
// not say. Linux reports twice the size asked (the rest is its own bookkeeping), capped at
// net.core.rmem_max: half of it is what compares with the size asked.
func receiveBuffer(uc *net.UDPConn) int {
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	var n int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		return 0
	}
	return n / 2
}
