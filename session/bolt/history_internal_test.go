package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/callctx/callctx/session"
)

// TestStore_RecordsHoldNoSlack: the records the store keeps for an active
// call, its session and the call, are exactly as long as their encodings,
// and say what the encoders write.
func TestStore_RecordsHoldNoSlack(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := session.NewService(st, session.Options{})
	c, sess, err := svc.CreateCall(context.Background(), session.NewCall{From: "+4930123456", To: "+4940555000",
		SIPCallID: strings.Repeat("a84b4c76e66710", 20) + "@pc33.example.com", // a record well past the old 256-byte buffer
		Variables: map[string]json.RawMessage{"ivr.email": json.RawMessage(`"jane@example.com"`)}},
		session.WriteOptions{Origin: session.OriginClient})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := st.cache.get(c.ID)
	if !ok {
		t.Fatal("the active call is not in the read cache")
	}
	if cap(e.rec) != len(e.rec) || cap(e.callRec) != len(e.callRec) {
		t.Errorf("session record %d bytes in %d, call record %d in %d: want no spare capacity",
			len(e.rec), cap(e.rec), len(e.callRec), cap(e.callRec))
	}
	if got, want := e.json(), sess.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Errorf("session record\n got %s\nwant %s", got, want)
	}
	if got, want := e.callRec, c.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Errorf("call record\n got %s\nwant %s", got, want)
	}
}

// TestExactly: a prefix and what is appended, at exactly their length,
// whether or not the scratch buffer is kept for the next.
func TestExactly(t *testing.T) {
	for _, n := range []int{0, 10, maxScratch + 1, 10} {
		body := bytes.Repeat([]byte("x"), n)
		got := exactly([]byte("head"), func(b []byte) []byte { return append(b, body...) })
		if want := "head" + string(body); string(got) != want || cap(got) != len(got) {
			t.Errorf("n=%d: %d bytes in %d, want %d and no spare capacity", n, len(got), cap(got), len(want))
		}
	}
}
