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
// and whether it holds any entry (a record or a tombstone) for it.
func (s *Store) CacheHolds(callID string) (record, entry bool) {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	e, ok := s.cache.m[callID]
	return ok && e.rec != nil, ok
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
