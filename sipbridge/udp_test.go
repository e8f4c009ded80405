package sipbridge_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/callctx/callctx/sipbridge"
)

// TestBridge_UDPReceiveBuffer: the bridge asks for the receive buffer it is configured with
// and gets it up to the system's limit (net.core.rmem_max); one capped by that limit is
// logged with what to raise, since requests beyond the buffer are lost in a burst.
func TestBridge_UDPReceiveBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the size granted is read back on Linux only")
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no rmem_max to compare with: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		asked  int
		want   int
		capped bool
	}{
		{"within the limit", min(limit, 1<<20), min(limit, 1<<20), false},
		{"beyond the limit", limit + 1<<20, limit, true},
		{"the default", 0, min(limit, sipbridge.DefaultUDPReceiveBuffer), limit < sipbridge.DefaultUDPReceiveBuffer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startBridge(t, sipbridge.Config{UDPReceiveBuffer: tc.asked})
			if got := e.bridge.UDPReceiveBuffer(); got != tc.want {
				t.Errorf("UDPReceiveBuffer() = %d, want %d (rmem_max %d)", got, tc.want, limit)
			}
			if got := strings.Contains(e.logs.String(), "raise net.core.rmem_max"); got != tc.capped {
				t.Errorf("warned of a capped buffer: %v, want %v\n%s", got, tc.capped, e.logs.String())
			}
		})
	}
}
