package sipbridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/callctx/callctx/internal/outage"
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

// filterBridge returns a bridge in redirect mode with what readFilter and its queue need, and
// no listener; its workers stop when the test ends.
func filterBridge(t testing.TB) *Bridge {
	b := &Bridge{cfg: Config{Mode: ModeRedirect, Observer: nopObserver{}}, settled: newSettled(), answered: newAnswered(), parser: sip.NewParser(), ackParser: newACKParser(),
		lateLog: outage.New(slog.New(slog.DiscardHandler), "test", 0)}
	b.queue = newInviteQueue(b)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	t.Cleanup(b.cancel)
	return b
}

// TestReadFilter_ACK: an ACK of an INVITE answered statelessly is dropped, whatever its
// headers' form (compact names, a Via with more parameters); any other ACK, and what is not
// an ACK or INVITE, goes on to sipgo.
func TestReadFilter_ACK(t *testing.T) {
	b := filterBridge(t)
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
		b := filterBridge(t)
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

// TestInviteQueue: the INVITEs readFilter takes are served by at most statelessWorkers
// workers, in the order they came; one that waited for a worker longer than lateAfter is
// refused 503 with a Retry-After, and its copy gets the 503 again; while the calls answered
// last took longer than lateAfter, new calls are refused at once; workers with nothing to do
// stop.
func TestInviteQueue(t *testing.T) {
	b := filterBridge(t)
	b.cfg.MaxCalls = 10 * statelessWorkers
	b.queue.idleFor = 100 * time.Millisecond
	caller, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	if b.udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer b.udp.Close()
	release := make(chan struct{})
	var served sync.Map
	var busy atomic.Int32
	b.onNewInvite = b.guard(func(req *sip.Request, _ sip.ServerTransaction) {
		busy.Add(1)
		<-release
		served.Store(req.CallID().Value(), true)
	})
	info := sip.TransportReadProps{Transport: "UDP", RemoteAddr: caller.LocalAddr()}
	invite := func(i int) []byte {
		return []byte(fmt.Sprintf("INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\n"+
			"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: c%d@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
			caller.LocalAddr(), i, i))
	}
	take := func(i int) {
		t.Helper()
		if out, err := b.readFilter(info, invite(i)); err != nil || len(out) > 0 {
			t.Fatalf("readFilter did not take INVITE %d: %q, %v", i, out, err)
		}
	}
	// Every worker busy with a call that waits; one more INVITE waits for a worker.
	for i := range statelessWorkers {
		take(i)
	}
	waitFor(t, "every worker busy", func() bool { return busy.Load() == statelessWorkers })
	take(statelessWorkers)
	if n := b.queue.workers.Load(); n != statelessWorkers {
		t.Fatalf("%d workers, want at most %d", n, statelessWorkers)
	}
	take(statelessWorkers) // its copy, while it waits: dropped, its answer is on its way
	if n := len(b.queue.ch); n != 1 {
		t.Fatalf("%d INVITEs queued, want 1 (a copy of a queued INVITE is not queued)", n)
	}
	time.Sleep(30 * time.Millisecond)
	b.queue.lateAfter.Store(int64(20 * time.Millisecond))
	close(release)

	res := readResponse(t, caller)
	if res.StatusCode != 503 || res.CallID().Value() != fmt.Sprintf("c%d@test", statelessWorkers) {
		t.Fatalf("answer %d for %s, want 503 for the INVITE that waited", res.StatusCode, res.CallID().Value())
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != retryAfterLate {
		t.Errorf("Retry-After %v, want %s", ra, retryAfterLate)
	}
	waitFor(t, "the calls that got a worker served", func() bool {
		n := 0
		served.Range(func(any, any) bool { n++; return true })
		return n == statelessWorkers
	})
	if _, ok := served.Load(fmt.Sprintf("c%d@test", statelessWorkers)); ok {
		t.Errorf("the INVITE refused 503 was served too")
	}
	if !b.lateLog.Failing() {
		t.Errorf("the refusal was not logged")
	}

	// Once the queue is short again, the refused INVITE's copy (its 503 was lost) gets the 503
	// again, its ACK goes no further than the filter, and a new INVITE is served.
	b.queue.lateAfter.Store(int64(DefaultLateAfter))
	take(statelessWorkers)
	if res := readResponse(t, caller); res.StatusCode != 503 {
		t.Errorf("the refused INVITE's copy: %d, want 503 again", res.StatusCode)
	}
	ack := fmt.Sprintf("ACK sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\nCall-ID: c%d@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		caller.LocalAddr(), statelessWorkers, statelessWorkers)
	if out, _ := b.readFilter(info, []byte(ack)); len(out) > 0 {
		t.Errorf("the ACK of the 503 went on to sipgo")
	}
	take(statelessWorkers + 1)
	waitFor(t, "a new INVITE served", func() bool {
		_, ok := served.Load(fmt.Sprintf("c%d@test", statelessWorkers+1))
		return ok
	})
	if _, ok := served.Load(fmt.Sprintf("c%d@test", statelessWorkers)); ok {
		t.Errorf("the refused INVITE's copy was served")
	}
	// While the calls answered last took longer than lateAfter, a new call is refused at once,
	// by the filter itself; once that figure is stale, calls are served again.
	b.queue.fresh.Store(int64(time.Hour))
	b.queue.tookFrom(time.Now().Add(-2 * DefaultLateAfter))
	take(statelessWorkers + 2)
	if res := readResponse(t, caller); res.StatusCode != 503 || res.CallID().Value() != fmt.Sprintf("c%d@test", statelessWorkers+2) {
		t.Errorf("a new call while answers are late: %d for %s, want 503", res.StatusCode, res.CallID().Value())
	}
	b.queue.fresh.Store(0) // the figure is stale
	take(statelessWorkers + 3)
	waitFor(t, "a new INVITE served once answers were no longer late", func() bool {
		_, ok := served.Load(fmt.Sprintf("c%d@test", statelessWorkers+3))
		return ok
	})
	if _, ok := served.Load(fmt.Sprintf("c%d@test", statelessWorkers+2)); ok {
		t.Errorf("the INVITE refused while answers were late was served")
	}

	waitFor(t, "idle workers gone", func() bool { return b.queue.workers.Load() == 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func readResponse(t *testing.T, c net.PacketConn) *sip.Response {
	t.Helper()
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatalf("answer %q: %v", buf[:n], err)
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		t.Fatalf("not a response: %q", buf[:n])
	}
	return res
}
