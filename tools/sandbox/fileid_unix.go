//go:build unix

package sandbox

import (
	"io/fs"
	"syscall"
)

// fileID is a file's identity: its device and inode numbers.
type fileID struct{ dev, ino uint64 }

// idOf returns fi's identity, and false when the system gives none.
func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}
