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
