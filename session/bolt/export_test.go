package bolt

import bolt "go.etcd.io/bbolt"

// LogLen returns how many history entries the log holds, for tests.
func (s *Store) LogLen() (n int) {
	s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketLog).Stats().KeyN
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
