//go:build !linux

package bolt

import "os"

// fdatasync makes f durable; outside Linux that is a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }

// openDirect returns nil: the log is written buffered and synced.
func openDirect(string) *os.File { return nil }

// initialMmapSize is 0: elsewhere (Windows) bbolt grows the file itself to
// the size it maps.
const initialMmapSize = 0
