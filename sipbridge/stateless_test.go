package sipbridge

import (
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
