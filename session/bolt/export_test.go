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
