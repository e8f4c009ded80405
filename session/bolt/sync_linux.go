package bolt

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable, and of its metadata what reading the
// data back needs (its size), as bbolt does on Linux.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
