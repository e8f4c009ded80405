package sipbridge

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestSettled: a request is remembered by its Call-ID and branch for at least T4 and at
// most 2×T4 after it was added or last seen again; another branch or Call-ID is a new one.
func TestSettled(t *testing.T) {
	request := func(callID, branch string) *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1000", Host: "127.0.0.1"})
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060,
			Params: sip.HeaderParams{{K: "branch", V: branch}}})
		cid := sip.CallIDHeader(callID)
		req.AppendHeader(&cid)
		return req
	}
	s := newSettled()
	a, b := request("a@test", "z9hG4bK-1"), request("b@test", "z9hG4bK-1")
	s.add(a)
	s.add(b)
	for _, tc := range []struct {
		name string
		req  *sip.Request
		want bool
	}{
		{"the same request", request("a@test", "z9hG4bK-1"), true},
		{"another branch", request("a@test", "z9hG4bK-2"), false},
		{"another Call-ID", request("c@test", "z9hG4bK-1"), false},
	} {
		if got := s.has(tc.req); got != tc.want {
			t.Errorf("%s: has=%v, want %v", tc.name, got, tc.want)
		}
	}
	later := func() { s.reqs.turned = s.reqs.turned.Add(-sip.T4) } // T4 passes
	later()
	if !s.has(a) { // seen again: renewed
		t.Errorf("forgotten after T4")
	}
	later()
	if !s.has(a) {
		t.Errorf("forgotten T4 after it was seen again")
	}
	if s.has(b) {
		t.Errorf("a request neither added nor seen for 2×T4 is still remembered")
	}
	for range 2 {
		later()
		s.has(b) // only adds and lookups turn the generations
	}
	if n := len(s.reqs.cur) + len(s.reqs.old); n != 0 {
		t.Errorf("%d hashes held after 2×T4 without a copy, want 0", n)
	}
}
