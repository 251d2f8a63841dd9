//go:build !linux

package audit

import "os"

// allocate makes f n bytes long; a store into a page the file system then
// cannot back faults, which fails its append.
func allocate(f *os.File, n int64) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() >= n {
		return err
	}
	return f.Truncate(n)
}
