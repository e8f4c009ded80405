package bolt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// TestStore_FullDisk runs the store on a real file system that fills up
// (a small tmpfs): writes fail with CodeStorageFull, not as internal
// errors; once space is freed they succeed again; and after a restart
// every acknowledged write is there and the file checks clean.
func TestStore_FullDisk(t *testing.T) {
	dir := testenv.SmallFS(t, 24<<20)
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	// Ten 4 KB variables per call (a session holds 64 KiB), a new call every ten writes.
	value := `"` + strings.Repeat("x", 4000) + `"`
	acked := map[string]int{} // call/variable → the value number acknowledged last
	var calls []string
	write := func(i int) error {
		if i%10 == 0 {
			c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{Actor: "t"})
			if err != nil {
				return err
			}
			calls = append(calls, c.ID)
		}
		id, name := calls[len(calls)-1], fmt.Sprintf("ivr.v%d", i%10)
		_, _, err := svc.Merge(ctx, id, vars(fmt.Sprintf(`{%q:[%d,%s]}`, name, i, value)), session.WriteOptions{Actor: "t"})
		if err == nil {
			acked[id+"/"+name] = i
		}
		return err
	}
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	filler := testenv.Fill(t, dir) // the disk fills up while callctx runs
	var failed error
	i := 1
	for ; i < 20000 && failed == nil; i++ {
		failed = write(i)
	}
	if failed == nil {
		t.Fatal("20,000 writes of 4 KB fitted on a full 24 MiB file system")
	}
	i-- // the write that failed is tried again below
	if code := session.ErrorCode(failed); code != session.CodeStorageFull {
		t.Fatalf("write on a full disk: %v (code %s), want %s", failed, code, session.CodeStorageFull)
	}
	if svc.WriteFailure() == nil {
		t.Fatal("the service does not report the failing store")
	}
	// Reads go on.
	if _, err := svc.Session(ctx, calls[0]); err != nil {
		t.Fatalf("read on a full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 50; j++ {
		if err := write(i + j); err != nil {
			t.Fatalf("write %d after space was freed: %v", j, err)
		}
	}
	if svc.WriteFailure() != nil {
		t.Fatal("the service still reports the store failing after writes succeeded")
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	st2 := bolttest.MustOpenDir(t, dir, bolt.Options{})
	for key, n := range acked {
		id, name, _ := strings.Cut(key, "/")
		s, err := st2.Session(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(s.Variables[name]); !strings.HasPrefix(got, fmt.Sprintf("[%d,", n)) {
			t.Fatalf("after the restart %s %s=%.20s…, want the acknowledged value %d", id, name, got, n)
		}
	}
	t.Logf("%d writes acknowledged before the disk was full; all there after a restart", i)
}

func vars(s string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		panic(err)
	}
	return m
}
