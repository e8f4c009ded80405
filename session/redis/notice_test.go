package redis

import (
	"strconv"
	"testing"

	"github.com/callctx/callctx/session"
)

// The notice parser reads whatever arrives on the events channel: anyone
// with access to Redis can publish there.
func TestParseNotice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want notice
		ok   bool
	}{
		{"session.updated 5 call-1 node", notice{session.EventSessionUpdated, 5, "call-1", "node"}, true},
		{"call.started 1 01a1fb59-fd6a-779f-a76c-07f2737e9aab 6ca3fd5e", notice{session.EventCallStarted, 1, "01a1fb59-fd6a-779f-a76c-07f2737e9aab", "6ca3fd5e"}, true},
		{"transfer.status 18446744073709551615 a:b.c_d n", notice{"transfer.status", 18446744073709551615, "a:b.c_d", "n"}, true},
		{"Session.Updated 5 call node", notice{}, false},
		{"session-updated 5 call node", notice{}, false},
		{"session.updated 0 call node", notice{}, false},
		{"session.updated -1 call node", notice{}, false},
		{"session.updated 5 call", notice{}, false},
		{"session.updated 5 call node extra", notice{}, false},
		{"session.updated 5 bad/id node", notice{}, false},
		{"session.updated  5 call node", notice{}, false},
		{"session.updated 05 call node", notice{}, false},
		{"session.updated +5 call node", notice{}, false},
		{"session.updated 5 call ", notice{}, false},
		{"", notice{}, false},
	} {
		got, ok := parseNotice(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseNotice(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseNotice(f *testing.F) {
	for _, s := range []string{"session.updated 5 call-1 node", "call.ended 1 x y", "call.started 18446744073709551616 a b", "session.updated 5 \x00 n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseNotice(s)
		if !ok {
			return
		}
		// What it accepts names a valid call and round-trips.
		if n.version == 0 || len(n.callID) == 0 || len(n.callID) > 128 {
			t.Fatalf("accepted %q as %+v", s, n)
		}
		if back := string(n.event) + " " + strconv.FormatUint(n.version, 10) + " " + n.callID + " " + n.node; back != s {
			t.Fatalf("%q parsed as %+v, which prints as %q", s, n, back)
		}
	})
}
