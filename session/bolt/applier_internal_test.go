package bolt

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestApplyGroups: a catch-up commit leaves bbolt as applying every group
// in turn would, though it puts each key once and in key order: a key
// written by several groups holds the last value, whether that is a put or
// a delete, and the history log's sequence is its highest key.
func TestApplyGroups(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range bucketNames {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketNames[bSessions]).Put([]byte("gone"), []byte("old"))
	})
	if err != nil {
		t.Fatal(err)
	}
	put := func(b bucketID, key, val string) change { return change{key: string(rune(b)) + key, val: []byte(val)} }
	del := func(b bucketID, key string) change { return change{key: string(rune(b)) + key} }
	logKey := func(seq uint64) string { return string(seqKey(seq)) }
	groups := []pendingGroup{
		{changes: []change{put(bSessions, "b", "b1"), put(bLog, logKey(7), "e7"), put(bSessions, "a", "a1"), put(bCalls, "a", "call a")}},
		{changes: []change{put(bSessions, "a", "a2"), put(bLog, logKey(8), "e8"), del(bSessions, "gone"), put(bSessions, "c", "c1")}},
		{changes: []change{del(bSessions, "c"), put(bSessions, "b", "b2"), put(bLog, logKey(9), "e9"), del(bLog, logKey(7))}},
		{changes: []change{put(bSessions, "c", "c3"), put(bSessions, "a", "a3")}},
	}
	if err := db.Update(func(tx *bolt.Tx) error { return applyGroups(tx, groups) }); err != nil {
		t.Fatal(err)
	}
	want := map[bucketID]map[string]string{
		bSessions: {"a": "a3", "b": "b2", "c": "c3"},
		bCalls:    {"a": "call a"},
		bLog:      {logKey(8): "e8", logKey(9): "e9"},
	}
	err = db.View(func(tx *bolt.Tx) error {
		for b, kv := range want {
			got := map[string]string{}
			tx.Bucket(bucketNames[b]).ForEach(func(k, v []byte) error {
				got[string(k)] = string(v)
				return nil
			})
			if len(got) != len(kv) {
				t.Errorf("%s holds %q, want %q", bucketNames[b], got, kv)
			}
			for k, v := range kv {
				if got[k] != v {
					t.Errorf("%s %q = %q, want %q", bucketNames[b], k, got[k], v)
				}
			}
		}
		if seq := tx.Bucket(bucketNames[bLog]).Sequence(); seq != 9 {
			t.Errorf("history log sequence %d, want 9", seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
