package bolt

import bolt "go.etcd.io/bbolt"

// LogLen returns how many history entries the log holds, for tests.
func (s *Store) LogLen() (n int) {
	s.readApplied(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketNames[bLog]).Stats().KeyN
		return nil
	})
	return n
}

// CacheHolds reports whether the read cache holds a call's session record,
// and whether it holds a tombstone for it.
func (s *Store) CacheHolds(callID string) (record, tombstone bool) {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	_, record = s.cache.m[callID]
	_, t1 := s.cache.ended[callID]
	_, t2 := s.cache.endedBefore[callID]
	return record, t1 || t2
}

// AgeTombstones has the read cache's tombstones age by two periods, as if
// 2 × tombstoneLife had passed.
func (s *Store) AgeTombstones() {
	s.cache.mu.Lock()
	s.cache.rotated = s.cache.rotated.Add(-2 * tombstoneLife)
	s.cache.mu.Unlock()
}

// SetWALRewind has the write-ahead log start again once it is past n
// bytes, instead of walRewindSize, until the returned function restores it.
func SetWALRewind(n int64) (restore func()) {
	old := walRewindAt
	walRewindAt = n
	return func() { walRewindAt = old }
}

// WALEpoch returns the write-ahead log's epoch, once the store is closed.
func (s *Store) WALEpoch() uint64 { return s.wal.epoch }

// ReplayedEnd returns the offset after the last log record that Open
// replayed, or where replay began when there was none.
func (s *Store) ReplayedEnd() int64 { return s.replayedEnd }
