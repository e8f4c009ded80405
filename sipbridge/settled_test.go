package sipbridge

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestSettled: an INVITE is remembered by its Call-ID and branch for at least T4 and at
// most 2×T4 after it was added; another branch or Call-ID is a new INVITE.
func TestSettled(t *testing.T) {
	invite := func(callID, branch string) *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1000", Host: "127.0.0.1"})
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060,
			Params: sip.HeaderParams{{K: "branch", V: branch}}})
		cid := sip.CallIDHeader(callID)
		req.AppendHeader(&cid)
		return req
	}
	s := newSettled()
	a := invite("a@test", "z9hG4bK-1")
	s.add(a)
	for _, tc := range []struct {
		name string
		req  *sip.Request
		want bool
	}{
		{"the same INVITE", invite("a@test", "z9hG4bK-1"), true},
		{"another branch", invite("a@test", "z9hG4bK-2"), false},
		{"another Call-ID", invite("b@test", "z9hG4bK-1"), false},
	} {
		if got := s.has(tc.req); got != tc.want {
			t.Errorf("%s: has=%v, want %v", tc.name, got, tc.want)
		}
	}
	s.turned = s.turned.Add(-sip.T4) // T4 later: kept in the older generation
	if !s.has(a) {
		t.Errorf("forgotten after T4")
	}
	s.turned = s.turned.Add(-sip.T4) // 2×T4 later
	if s.has(a) {
		t.Errorf("still remembered after 2×T4")
	}
	if n := len(s.cur) + len(s.old); n != 0 {
		t.Errorf("%d hashes held, want 0", n)
	}
}
