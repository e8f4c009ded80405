package bolt_test

import (
	"context"
	"errors"
	"testing"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/storetest"
)

// MustOpenStore opens a store in a temporary directory and checks the
// database's consistency when the test ends.
func MustOpenStore(tb testing.TB) *bolt.Store {
	tb.Helper()
	dir := tb.TempDir()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		st.Close()
		re, err := bolt.Open(dir, bolt.Options{})
		if err != nil {
			tb.Fatalf("reopen for check: %v", err)
		}
		defer re.Close()
		if err := re.Check(); err != nil {
			tb.Fatalf("consistency check: %v", err)
		}
	})
	return st
}

func TestStore_Contract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store { return MustOpenStore(t) })
}

func TestOpen_ErrInUse(t *testing.T) {
	dir := t.TempDir()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = bolt.Open(dir, bolt.Options{LockTimeout: 50e6})
	if !errors.Is(err, bolt.ErrInUse) {
		t.Fatalf("second open: %v, want ErrInUse", err)
	}
}

func TestStore_Reopen(t *testing.T) {
	dir := t.TempDir()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := session.NewService(st, session.Options{})
	ctx := context.Background()
	c, _, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, session.WriteOptions{Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Merge(ctx, c.ID, nil, session.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := session.NewService(st, session.Options{}).Session(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || string(got.Variables["call.id"]) != `"`+c.ID+`"` {
		t.Fatalf("after reopen: %+v", got)
	}
}
