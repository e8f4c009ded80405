package bolt

import (
	"path/filepath"
	"strconv"
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

// TestOverlay_AddedKeys: the overlay counts the keys it holds outside the
// sessions bucket and the history log, which bound a catch-up commit; a key
// written again is counted once, and dropping what bbolt holds brings the
// count back down, but not for a key a later group wrote again.
func TestOverlay_AddedKeys(t *testing.T) {
	o := newOverlay()
	put := func(b bucketID, key string) change { return change{key: string(rune(b)) + key, val: []byte("v")} }
	g1 := pendingGroup{gen: 1, changes: []change{put(bCalls, "a"), put(bSessions, "a"), put(bLog, string(seqKey(1))), put(bByStart, "1a")}}
	g2 := pendingGroup{gen: 2, changes: []change{put(bSessions, "a"), put(bCalls, "a"), {key: string(rune(bByEnd)) + "2a"}}}
	o.publish(g1.gen, g1.changes)
	if n := o.addedKeys(); n != 2 {
		t.Fatalf("after a call's start: %d added keys, want 2 (the call and its index)", n)
	}
	o.publish(g2.gen, g2.changes)
	if n := o.addedKeys(); n != 3 {
		t.Fatalf("after the call written again and a deletion: %d added keys, want 3", n)
	}
	o.drop(1, []pendingGroup{g1})
	if n := o.addedKeys(); n != 2 {
		t.Fatalf("after bbolt took the first group: %d added keys, want 2 (the call, written again, and the deletion)", n)
	}
	o.drop(2, []pendingGroup{g2})
	if n := o.addedKeys(); n != 0 || len(o.m) != 0 || len(o.log) != 0 {
		t.Fatalf("after bbolt took both: %d added keys, %d keys, %d history entries; want none", n, len(o.m), len(o.log))
	}
}

// TestApplier_FlushLetsGoOfOverlay: once flush returns, the overlay holds
// none of the keys bbolt took, so that a direct transaction after it (a
// retention sweep's deletes) is what reads see. Before, flush returned when
// bbolt had committed, while the overlay still held the keys for as long as
// dropping them took, and a sweep's deleted flow run was read back.
func TestApplier_FlushLetsGoOfOverlay(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range append(bucketNames[:], bucketMeta) {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ov := newOverlay()
	a := newApplier(db, ov, 1, 0)
	t.Cleanup(a.close)
	for round := range 5 {
		gen := uint64(round + 1)
		changes := make([]change, 50000) // dropping them takes a while
		for i := range changes {
			changes[i] = change{key: string(rune(bFlowRuns)) + strconv.Itoa(round) + "-" + strconv.Itoa(i), val: []byte("state")}
		}
		ov.publish(gen, changes)
		a.add(pendingGroup{gen: gen, changes: changes})
		if err := a.flush(); err != nil {
			t.Fatal(err)
		}
		ov.mu.RLock()
		held := len(ov.m)
		ov.mu.RUnlock()
		if held != 0 {
			t.Fatalf("round %d: flush returned with %d keys still in the overlay", round, held)
		}
	}
}
