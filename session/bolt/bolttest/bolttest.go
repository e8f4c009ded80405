// Package bolttest opens bbolt stores for tests, as bbolt's own
// internal/btesting does for its databases: in a temporary directory,
// closed when the test ends, and then opened again and checked with
// bbolt's consistency check, so that every test that writes also proves
// the file it leaves is sound.
package bolttest

import (
	"testing"

	"github.com/callctx/callctx/session/bolt"
)

// MustOpen opens a store in a new temporary directory; see MustOpenDir.
func MustOpen(tb testing.TB, opts bolt.Options) *bolt.Store {
	tb.Helper()
	return MustOpenDir(tb, tb.TempDir(), opts)
}

// MustOpenDir opens the store in dir. When the test ends it is closed (if
// the test has not closed it), opened again and checked (MustCheck).
func MustOpenDir(tb testing.TB, dir string, opts bolt.Options) *bolt.Store {
	tb.Helper()
	st, err := bolt.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		st.Close() // a second Close is harmless
		MustCheck(tb, dir)
	})
	return st
}

// MustCheck opens the store in dir (replaying its write-ahead log, as a
// restart after a crash does), runs bbolt's consistency check and closes
// it again.
func MustCheck(tb testing.TB, dir string) {
	tb.Helper()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		tb.Fatalf("open %s for the consistency check: %v", dir, err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		tb.Fatalf("consistency check of %s: %v", dir, err)
	}
}
