package sipbridge

import (
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
)

// TestAnswered: the first claim of an INVITE answers it; a copy is dropped while it is
// answered, gets the redirect's call once it was redirected, and is answered afresh once
// it was refused (released). An entry lasts T4 to 2×T4 from when it was last claimed.
func TestAnswered(t *testing.T) {
	a := newAnswered()
	call := uuid.Must(uuid.NewV7())
	claim := func(k uint64, want int, wantID uuid.UUID) {
		t.Helper()
		if id, got := a.claim(k); got != want || id != wantID {
			t.Errorf("claim(%d) = %v, %d; want %v, %d", k, id, got, wantID, want)
		}
	}
	claim(1, claimNew, uuid.Nil)
	claim(1, claimBusy, uuid.Nil)
	if !a.has(1) || a.has(2) {
		t.Errorf("has(1)=%v has(2)=%v, want true, false", a.has(1), a.has(2))
	}
	a.done(1, call)
	claim(1, claimDone, call)

	claim(2, claimNew, uuid.Nil)
	a.release(2)
	if a.has(2) {
		t.Errorf("a released INVITE is still remembered")
	}
	claim(2, claimNew, uuid.Nil)

	later := func() { a.turned = a.turned.Add(-sip.T4) } // T4 passes
	later()
	claim(1, claimDone, call) // renewed
	later()
	claim(1, claimDone, call)
	if a.has(2) {
		t.Errorf("an INVITE neither answered nor copied for 2×T4 is still remembered")
	}
	for range 2 {
		later()
		a.has(3) // something happens at each T4
	}
	if a.has(1) {
		t.Errorf("remembered 2×T4 after its last copy")
	}
}

// TestReadFilter_ACK: an ACK of an INVITE answered statelessly is dropped, whatever its
// headers' form (compact names, a Via with more parameters); any other ACK, and what is not
// an ACK or INVITE, goes on to sipgo.
func TestReadFilter_ACK(t *testing.T) {
	b := &Bridge{cfg: Config{Mode: ModeRedirect}, settled: newSettled(), answered: newAnswered(), parser: sip.NewParser(), ackParser: newACKParser()}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5070}
	info := sip.TransportReadProps{Transport: "UDP", RemoteAddr: from}
	invite, err := sip.ParseMessage([]byte("INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.answered.done(b.settled.key(invite.(*sip.Request)), uuid.Must(uuid.NewV7()))
	for _, tc := range []struct {
		name, msg string
		dropped   bool
	}{
		{"the ACK of the 302", "ACK sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\n" +
			"To: <sip:1000@127.0.0.1>;tag=x\r\nCall-ID: c1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", true},
		{"compact headers", "ACK sip:1000@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK-1\r\nf: <sip:a@127.0.0.1>;tag=a\r\n" +
			"t: <sip:1000@127.0.0.1>;tag=x\r\ni: c1@test\r\nCSeq: 1 ACK\r\nl: 0\r\n\r\n", true},
		{"another branch", "ACK sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2\r\n" +
			"Call-ID: c1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", false},
		{"another Call-ID", "ACK sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
			"Call-ID: c2@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", false},
		{"no Via", "ACK sip:1000@127.0.0.1 SIP/2.0\r\nCall-ID: c1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", false},
		{"not SIP", "ACK nonsense", false},
		{"a BYE", "BYE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nCall-ID: c1@test\r\n\r\n", false},
	} {
		out, err := b.readFilter(info, []byte(tc.msg))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if dropped := len(out) == 0; dropped != tc.dropped {
			t.Errorf("%s: dropped=%v, want %v", tc.name, dropped, tc.dropped)
		}
	}
}

// FuzzReadFilter: whatever a datagram holds, the filter neither fails nor panics, and it
// takes only an INVITE outside a dialog or an ACK of a stateless answer; the rest goes on to
// sipgo as it came.
func FuzzReadFilter(f *testing.F) {
	f.Add([]byte("INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("ACK sip:1000@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\ni: c1@test\r\nl: 0\r\n\r\n"))
	f.Add([]byte("INVITE \r\n\r\n"))
	f.Add([]byte("ACK sip:x SIP/2.0\r\nContent-Length: 99\r\n\r\nshort"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &Bridge{cfg: Config{Mode: ModeRedirect}, settled: newSettled(), answered: newAnswered(), parser: sip.NewParser(), ackParser: newACKParser()}
		taken := make(chan *sip.Request, 1)
		b.onNewInvite = func(req *sip.Request, _ sip.ServerTransaction) { taken <- req }
		info := sip.TransportReadProps{Transport: "UDP", RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5070}}
		out, err := b.readFilter(info, append([]byte(nil), data...))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > 0 || len(data) == 0 {
			if string(out) != string(data) {
				t.Fatalf("the datagram was changed: %q", out)
			}
			return
		}
		if !strings.HasPrefix(string(data), "INVITE ") {
			t.Fatalf("dropped %q, which is not an INVITE, and no ACK of a stateless answer was remembered", data)
		}
		if req := <-taken; req.IsInvite() && req.To() != nil && req.To().Params.Has("tag") {
			t.Fatalf("took an INVITE inside a dialog: %q", data)
		}
	})
}
