package bolt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/bolt/bolttest"
)

// crashCopy copies the store's files as the disk holds them at this moment
// (the page cache, which a killed process leaves behind) into a new
// directory: the state a restart after SIGKILL finds.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{bolt.FileName, "callctx.wal"} {
		in, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

// writeMany has 16 writers write n versions each into their own calls and
// returns the calls; every write has been acknowledged when it returns.
func writeMany(t *testing.T, svc *session.Service, n int) []string {
	t.Helper()
	ctx := context.Background()
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	ids := make([]string, 16)
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for w := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
			if err != nil {
				errs <- err
				return
			}
			ids[w] = c.ID
			for i := 1; i <= n; i++ {
				v := json.RawMessage(fmt.Sprint(i))
				if _, _, err := svc.Merge(ctx, c.ID, map[string]json.RawMessage{"app.n": v, fmt.Sprintf("app.v%d", i%7): v}, client); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// wantWritten checks that each call's session in dir holds version n+1
// (created, then n writes) and its whole history.
func wantWritten(t *testing.T, dir string, ids []string, n int) {
	t.Helper()
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	defer st.Close()
	ctx := context.Background()
	for _, id := range ids {
		sess, err := st.Session(ctx, id)
		if err != nil {
			t.Fatalf("call %s: %v", id, err)
		}
		if got, want := sess.Version, uint64(n+1); got != want {
			t.Fatalf("call %s: version %d, want %d", id, got, want)
		}
		if got, want := string(sess.Variables["app.n"]), fmt.Sprint(n); got != want {
			t.Fatalf("call %s: app.n=%s, want %s", id, got, want)
		}
		h, err := st.History(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(h), n+1; got != want {
			t.Fatalf("call %s: %d history entries, want %d", id, got, want)
		}
	}
}

// TestStore_CrashRecovery: every acknowledged write survives a crash the
// moment it is acknowledged, whether bbolt has it yet or only the
// write-ahead log does: a restart replays the log.
func TestStore_CrashRecovery(t *testing.T) {
	dir := t.TempDir()
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	const n = 40
	ids := writeMany(t, session.NewService(st, session.Options{}), n)
	crashed := crashCopy(t, dir) // while the store runs: the applier may lag
	wantWritten(t, crashed, ids, n)
	// Recovery started a new epoch of the log; a second crash right after
	// it, and a restart of that, lose nothing either.
	wantWritten(t, crashCopy(t, crashed), ids, n)
}

// TestStore_TornLogRecord: a log record cut short by a crash in the middle
// of its write was never acknowledged; the records before it are replayed
// and the store opens.
func TestStore_TornLogRecord(t *testing.T) {
	dir := t.TempDir()
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	svc := session.NewService(st, session.Options{})
	ids := writeMany(t, svc, 10)
	crashed := crashCopy(t, dir)
	// A partial record after the last good one: a header that promises more
	// than follows, and garbage.
	wal := filepath.Join(crashed, "callctx.wal")
	f, err := os.OpenFile(wal, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	end := lastRecordEnd(t, crashed)
	if _, err := f.WriteAt([]byte{1, 2, 3, 4, 0, 0, 1, 0, 0xde, 0xad}, end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantWritten(t, crashed, ids, 10)
}

// lastRecordEnd returns where the log of a crashed copy ends: after its
// last record that replay accepts, found by opening a copy.
func lastRecordEnd(t *testing.T, dir string) int64 {
	t.Helper()
	st := bolttest.MustOpenDir(t, crashCopy(t, dir), bolt.Options{})
	defer st.Close()
	return st.ReplayedEnd()
}

// TestStore_LogRewind: the log starts again at its beginning once bbolt
// holds all of it, and what is written after that survives a crash too.
func TestStore_LogRewind(t *testing.T) {
	defer bolt.SetWALRewind(16 << 10)()
	dir := t.TempDir()
	st := bolttest.MustOpenDir(t, dir, bolt.Options{})
	ids := writeMany(t, session.NewService(st, session.Options{}), 60)
	wantWritten(t, crashCopy(t, dir), ids, 60)
	st.Close()
	if epoch := st.WALEpoch(); epoch < 3 {
		t.Fatalf("log epoch %d after writing far past the rewind size; want it restarted", epoch)
	}
}
