package sipbridge_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/sipbridge"
)

// TestBridge_ParkedSDP: a parked call's answer is an RFC 3264 answer to the caller's offer
// (Linphone's, Opus first); its re-INVITEs are answered per offer in the same session:
// a hold and a resume keep the answer and its version, an added stream is rejected in a new
// version, and an offer that is not SDP gets 488 while the call goes on.
func TestBridge_ParkedSDP(t *testing.T) {
	e := startBridge(t, sipbridge.Config{})
	uac := sipptest.Start(t, "uac_park_opus_hold.xml", e.bridge.Addr(), 0)
	call := e.call(t)
	uac.Wait(t)
	if got, want := e.endedCall(t, call.ID).EndReason, sipbridge.EndHangup; got != want {
		t.Errorf("EndReason=%q, want %q", got, want)
	}
	first := strings.Fields(uac.Logged(t, "answer"))
	if len(first) != 3 {
		t.Fatalf("answer origin %v", first)
	}
	version, _ := strconv.Atoi(first[2])
	for key, want := range map[string]int{"hold": version, "resume": version, "video": version + 1} {
		o := strings.Fields(uac.Logged(t, key))
		if len(o) != 3 || o[1] != first[1] || o[2] != strconv.Itoa(want) {
			t.Errorf("%s answered with origin %v, want session %s version %d", key, o, first[1], want)
		}
	}
	if w := uac.Logged(t, "warning"); !strings.Contains(w, "sdp") {
		t.Errorf("Warning of the 488: %q", w)
	}
}
