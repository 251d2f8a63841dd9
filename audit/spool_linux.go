package audit

import (
	"os"
	"syscall"
)

// allocate makes f at least n bytes long, its blocks allocated, so a store
// into its mapping never finds the disk full.
func allocate(f *os.File, n int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, n)
	if err == syscall.EOPNOTSUPP {
		return f.Truncate(n) // a file system that cannot allocate ahead: a fault then fails the append
	}
	return err
}
