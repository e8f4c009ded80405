package session_test

import (
	"encoding/json"
	"testing"

	"github.com/callctx/callctx/session"
)

// TestHistoryEntry_Type: entries stored before the event type was recorded
// get the type the stream used to infer for them; newer ones the type
// recorded.
func TestHistoryEntry_Type(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		want        session.EventType
	}{
		{"Recorded", `{"version":3,"event":"call.referred","changes":{"ivr.a":{"old":null,"new":1}}}`, session.EventCallReferred},
		{"OldFirst", `{"version":1,"changes":{"call.id":{"old":null,"new":"c"}}}`, session.EventCallStarted},
		{"OldEnd", `{"version":4,"changes":{"call.state":{"old":"active","new":"ended"}}}`, session.EventCallEnded},
		{"OldTransferOutcome", `{"version":4,"changes":{"sip.transfer.status":{"old":"pending","new":"answered"}}}`, session.EventTransferStatus},
		{"OldTransferPending", `{"version":4,"changes":{"sip.transfer.status":{"old":null,"new":"pending"}}}`, session.EventSessionUpdated},
		{"OldRefer", `{"version":4,"changes":{"sip.refer.target":{"old":null,"new":"sip:q@h"}}}`, session.EventCallReferred},
		{"OldUpdate", `{"version":2,"changes":{"ivr.a":{"old":null,"new":1}}}`, session.EventSessionUpdated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h session.HistoryEntry
			if err := json.Unmarshal([]byte(tc.entry), &h); err != nil {
				t.Fatal(err)
			}
			if got := h.Type(); got != tc.want {
				t.Fatalf("Type()=%s, want %s", got, tc.want)
			}
			// The JSON written back names the event only when it was recorded.
			var back map[string]any
			json.Unmarshal(h.AppendJSON(nil), &back)
			if _, has := back["event"]; has != (h.Event != "") {
				t.Fatalf("AppendJSON %s", h.AppendJSON(nil))
			}
		})
	}
}
