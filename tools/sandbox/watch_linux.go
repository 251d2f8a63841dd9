package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// holdWatch follows, with inotify, the directories that hold a run's held,
// pinned and masked paths, and calls lost the first time one of those
// names is replaced, removed or created, or git's lock for a held file
// appears (see hold.go).
type holdWatch struct {
	fd, stopR, stopW int
	dirs             map[int32]string // watch descriptor → directory
	names            map[string]int   // held, pinned or masked path → index in hold
	locks            map[string]int   // git's lock for a held file → index in hold
	hold             []holdPath
	log              *holdLog
	lost             func()
	done             chan struct{}
}

// watchedEvents are the changes of a directory's entries that can end a
// hold: a name replaced (renamed over, or removed and created anew),
// removed or renamed away. A write into a file in place keeps the mount.
const watchedEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO

// watchHold starts watching the directories of hold before the run
// starts, so no change made while it runs goes unseen. A watch that cannot
// be set up refuses the run: its holds would go unwatched.
func watchHold(hold []holdPath, log *holdLog, lost func()) (*holdWatch, error) {
	w := &holdWatch{fd: -1, stopR: -1, stopW: -1, dirs: map[int32]string{}, names: map[string]int{}, locks: map[string]int{},
		hold: hold, log: log, lost: lost, done: make(chan struct{})}
	fail := func(err error) (*holdWatch, error) {
		w.close()
		return nil, fmt.Errorf("sandbox: watching the protected and masked paths for changes during the run "+
			"(see fs.inotify.max_user_instances and max_user_watches in sysctl): %w", err)
	}
	var err error
	if w.fd, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err != nil {
		return fail(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fail(err)
	}
	w.stopR, w.stopW = p[0], p[1]
	var dirs []string
	for i, h := range hold {
		w.names[h.path] = i
		if h.lock != "" {
			w.locks[h.lock] = i
		}
		dirs = append(dirs, filepath.Dir(h.path))
	}
	added := map[string]bool{}
	for _, d := range dirs {
		if added[d] {
			continue
		}
		added[d] = true
		wd, err := unix.InotifyAddWatch(w.fd, d, watchedEvents|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", d, err))
		}
		w.dirs[int32(wd)] = d
	}
	go w.loop()
	return w, nil
}

// stop handles every change queued until now and stops watching. Call it
// once, after the run has exited.
func (w *holdWatch) stop() {
	_, _ = unix.Write(w.stopW, []byte{0})
	<-w.done
	w.close()
}

func (w *holdWatch) close() {
	for _, fd := range []int{w.fd, w.stopR, w.stopW} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

func (w *holdWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.stopR), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			w.end("", fmt.Sprintf("toolgate could not follow the changes to the protected and masked paths: %v", err))
			return
		}
		if err := w.drain(buf); err != nil {
			w.end("", fmt.Sprintf("toolgate could not follow the changes to the protected and masked paths: %v", err))
			return
		}
		if fds[1].Revents != 0 {
			return
		}
	}
}

// drain handles the events queued now.
func (w *holdWatch) drain(buf []byte) error {
	for {
		n, err := unix.Read(w.fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return err
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			size := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+size]), "\x00")
			off += unix.SizeofInotifyEvent + size
			w.event(wd, mask, name)
		}
	}
}

func (w *holdWatch) event(wd int32, mask uint32, name string) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		w.end("", "more changes happened in the workspace at once than toolgate could follow, so it cannot tell whether a protected or masked path was replaced")
		return
	}
	dir, ok := w.dirs[wd]
	if !ok || name == "" {
		return
	}
	p := filepath.Join(dir, name)
	if i, ok := w.names[p]; ok {
		what := "was replaced"
		switch {
		case mask&unix.IN_CREATE != 0:
			what = "was created anew"
		case mask&unix.IN_DELETE != 0:
			what = "was removed"
		case mask&unix.IN_MOVED_FROM != 0:
			what = "was renamed away"
		}
		w.end(p, holdReason(w.hold[i], what))
		return
	}
	if i, ok := w.locks[p]; ok && mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		// Another run may have made the lock (.git is writable in a run,
		// its control files are not): inotify does not say who did, so
		// every run holding the file ends, and the reason says so.
		w.end(w.hold[i].path, holdReason(w.hold[i], "was about to be replaced: "+filepath.Base(p)+" appeared, which git writes and renames over it,"))
	}
}

// end notes the reason and, the first time, kills the run.
func (w *holdWatch) end(path, reason string) {
	if path == "" {
		path = reason
	}
	if w.log.add(path, reason) {
		w.log.kill(w.lost)
	}
}
