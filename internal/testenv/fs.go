package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallFS mounts a real file system of size bytes (tmpfs) on a new
// directory and returns it; it is unmounted when the test ends. Writes past
// its size fail with ENOSPC, as on a full disk. Mounting takes root: make
// test runs as root in CI; elsewhere the test skips, naming make test, or
// fails when CI is set.
func SmallFS(tb testing.TB, size int64) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "smallfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if err != nil {
		msg := fmt.Sprintf("mounting a %d-byte tmpfs needs root (%v); `make test` runs as root in CI", size, err)
		if InCI() {
			tb.Fatalf("%s; %s is set, so this fails instead of skipping", msg, CI)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds a file open: a lazy unmount lets the test end.
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// Fill writes a file into dir until the file system is full and returns
// its path: removing it frees the space again.
func Fill(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !isNoSpace(err) {
				tb.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

func isNoSpace(err error) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == syscall.ENOSPC
}
