package audit

import (
	"errors"
	"syscall"
)

// watchDir watches dir's names and dir itself; nil if inotify is not to be
// had (the checks then stat).
func watchDir(dir string) *dirWatch {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	const mask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
		syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF
	if _, err := syscall.InotifyAddWatch(fd, dir, mask); err != nil {
		syscall.Close(fd)
		return nil
	}
	w := &dirWatch{}
	w.fd.Store(int64(fd))
	return w
}

// changed reports whether any event (or an overflow, or an error reading)
// came since the last call; it reads them all.
func (w *dirWatch) changed() bool {
	var buf [4096]byte
	seen := false
	for {
		n, err := syscall.Read(int(w.fd.Load()), buf[:])
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return seen
		case err != nil || n <= 0:
			return true
		}
		seen = true
	}
}

// close closes the watch's descriptor, once.
func (w *dirWatch) close() {
	if fd := w.fd.Swap(-1); fd >= 0 {
		syscall.Close(int(fd))
	}
}
