package testenv

import (
	"net"
	"testing"
)

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago: for a sipp
// peer to listen on, or for a peer that is meant not to answer.
func FreeUDPPort(tb testing.TB) int {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
