package bolt

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable, and of its metadata what reading the
// data back needs (its size), as bbolt does on Linux.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// openDirect opens the log for O_DIRECT|O_DSYNC writes, or returns nil
// where the file system refuses it (tmpfs).
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT|syscall.O_DSYNC, 0)
	if err != nil {
		return nil
	}
	return f
}

// initialMmapSize is the size bbolt maps the file with from the start: an
// address range only (the kernel maps pages as they are read, so resident
// memory follows the file), which spares bbolt a remap each time the file
// doubles up to it. A remap copies every key and value of the commit in
// progress out of the map first, and waits for all readers and holds new
// ones meanwhile. etcd maps 10 GiB for the same reasons.
const initialMmapSize = 1 << 30
