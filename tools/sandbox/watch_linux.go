package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// watcher is a Sandbox's one inotify instance, which all its runs share:
// the per-user instances (fs.inotify.max_user_instances) are shared with
// the commands, which run as the same user, so one that uses them up
// while it runs must not make the runs that start meanwhile refuse. The
// first sandboxed run opens it, Sandbox.Close closes it. A directory that
// several runs watch is watched once, counting their references: inotify
// gives the same watch descriptor for the same directory. Every event is
// handled under mu, by the reader or by a run starting or ending, so a
// run sees every change queued before it stops watching.
type watcher struct {
	mu       sync.Mutex
	fd, wake int // inotify and the reader's eventfd; -1 until the first run and after Close
	buf      []byte
	closed   bool
	err      error               // the events could not be read: every run refuses
	dirs     map[int32]*dirWatch // watch descriptor → its directory's watch
	runs     map[*holdWatch]bool // the runs watching
	reader   sync.WaitGroup
}

// dirWatch is a watched directory and how many references runs hold on it.
type dirWatch struct {
	wd   int32
	refs int
}

// watchKey names a path by its directory's watch and its base name.
type watchKey struct {
	dir  *dirWatch
	name string
}

// holdWatch is one run's part: the names it holds, and its references.
type holdWatch struct {
	w     *watcher
	dirs  []*dirWatch
	names map[watchKey]holdPath // held, pinned and masked paths
	locks map[watchKey]holdPath // git's lock for a held file → the held file
	log   *holdLog
	lost  func()
}

func newWatcher() *watcher {
	return &watcher{fd: -1, wake: -1, runs: map[*holdWatch]bool{}}
}

// watchedEvents are the changes of a directory's entries that can end a
// hold: a name replaced (renamed over, or removed and created anew),
// removed or renamed away. A write into a file in place keeps the mount.
const watchedEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO

// watch starts watching the directories of hold before the run starts, so
// no change made while it runs goes unseen; lost kills the run. A watch
// that cannot be set up refuses the run: its holds would go unwatched.
func (w *watcher) watch(hold []holdPath, log *holdLog, lost func()) (*holdWatch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fail := func(err error) (*holdWatch, error) {
		return nil, fmt.Errorf("sandbox: watching the protected and masked paths for changes during the run "+
			"(see fs.inotify.max_user_instances and max_user_watches in sysctl): %w", err)
	}
	if err := w.open(); err != nil {
		return fail(err)
	}
	// What is queued now happened before this run's watches were in place.
	if w.drain(); w.err != nil {
		return fail(w.err)
	}
	hw := &holdWatch{w: w, names: map[watchKey]holdPath{}, locks: map[watchKey]holdPath{}, log: log, lost: lost}
	added := map[string]*dirWatch{}
	for _, h := range hold {
		d := filepath.Dir(h.path)
		dw := added[d]
		if dw == nil {
			wd, err := unix.InotifyAddWatch(w.fd, d, watchedEvents|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
			if err != nil {
				w.release(hw)
				return fail(fmt.Errorf("%s: %w", d, err))
			}
			if dw = w.dirs[int32(wd)]; dw == nil {
				dw = &dirWatch{wd: int32(wd)}
				w.dirs[dw.wd] = dw
			}
			dw.refs++
			added[d] = dw
			hw.dirs = append(hw.dirs, dw)
		}
		hw.names[watchKey{dw, filepath.Base(h.path)}] = h
		if h.lock != "" {
			hw.locks[watchKey{dw, filepath.Base(h.lock)}] = h
		}
	}
	w.runs[hw] = true
	return hw, nil
}

// open opens the instance and starts its reader, the first time.
func (w *watcher) open() error {
	switch {
	case w.closed:
		return errors.New("the sandbox is closed")
	case w.err != nil:
		return w.err
	case w.fd >= 0:
		return nil
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(fd)
		return err
	}
	w.fd, w.wake, w.buf, w.dirs = fd, wake, make([]byte, 64<<10), map[int32]*dirWatch{}
	w.reader.Add(1)
	go w.read()
	return nil
}

// stop handles every change queued until now and stops watching. Call it
// once, after the run has exited.
func (hw *holdWatch) stop() {
	hw.w.mu.Lock()
	defer hw.w.mu.Unlock()
	hw.w.drain()
	hw.w.release(hw)
}

// release drops hw and its references, removing a directory's watch with
// the last one.
func (w *watcher) release(hw *holdWatch) {
	delete(w.runs, hw)
	for _, dw := range hw.dirs {
		// A watch the kernel removed (IN_IGNORED) is no longer in dirs:
		// its descriptor is not removed again.
		if dw.refs--; dw.refs == 0 && w.dirs[dw.wd] == dw {
			delete(w.dirs, dw.wd)
			_, _ = unix.InotifyRmWatch(w.fd, uint32(dw.wd))
		}
	}
}

// close releases the inotify instance. A run still in flight is killed:
// its holds can no longer be followed.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	w.endAll("toolgate closed the sandbox while the command ran, so it no longer follows the protected and masked paths")
	if w.wake >= 0 {
		_, _ = unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	w.mu.Unlock()
	w.reader.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, fd := range []int{w.fd, w.wake} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	w.fd, w.wake = -1, -1
}

// read handles the events as they come, until Close or an error.
func (w *watcher) read() {
	defer w.reader.Done()
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.wake), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		w.mu.Lock()
		switch {
		case err == nil:
			w.drain()
		case !errors.Is(err, unix.EINTR):
			w.fail(err)
		}
		done := w.closed || w.err != nil
		w.mu.Unlock()
		if done {
			return
		}
	}
}

// fail ends every run and refuses the next ones: changes may go unseen.
func (w *watcher) fail(err error) {
	w.err = fmt.Errorf("toolgate could not follow the changes to the protected and masked paths: %w", err)
	w.endAll(w.err.Error())
}

func (w *watcher) endAll(reason string) {
	for hw := range w.runs {
		hw.end("", reason)
	}
}

// drain handles the events queued now.
func (w *watcher) drain() {
	for w.fd >= 0 && w.err == nil {
		n, err := unix.Read(w.fd, w.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			w.fail(err)
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(w.buf[off:]))
			mask := binary.NativeEndian.Uint32(w.buf[off+4:])
			size := int(binary.NativeEndian.Uint32(w.buf[off+12:]))
			name := strings.TrimRight(string(w.buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+size]), "\x00")
			off += unix.SizeofInotifyEvent + size
			w.event(wd, mask, name)
		}
	}
}

func (w *watcher) event(wd int32, mask uint32, name string) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		w.endAll("more changes happened in the workspace at once than toolgate could follow, so it cannot tell whether a protected or masked path was replaced")
		return
	}
	dw := w.dirs[wd]
	switch {
	case dw == nil:
	case mask&unix.IN_IGNORED != 0:
		// The directory is gone and the kernel removed its watch. It
		// hands out descriptors cyclically, so the IN_IGNORED that
		// follows release's own removal names no live watch.
		delete(w.dirs, wd)
	case name != "":
		for hw := range w.runs {
			hw.event(watchKey{dw, name}, mask)
		}
	}
}

func (hw *holdWatch) event(k watchKey, mask uint32) {
	if h, ok := hw.names[k]; ok {
		what := "was replaced"
		switch {
		case mask&unix.IN_CREATE != 0:
			what = "was created anew"
		case mask&unix.IN_DELETE != 0:
			what = "was removed"
		case mask&unix.IN_MOVED_FROM != 0:
			what = "was renamed away"
		}
		hw.end(h.path, holdReason(h, what))
		return
	}
	if h, ok := hw.locks[k]; ok && mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		// Another run may have made the lock (.git is writable in a run,
		// its control files are not): inotify does not say who did, so
		// every run holding the file ends, and the reason says so.
		hw.end(h.path, holdReason(h, "was about to be replaced: "+k.name+" appeared, which git writes and renames over it,"))
	}
}

// end notes the reason and, the first time, kills the run.
func (hw *holdWatch) end(path, reason string) {
	if path == "" {
		path = reason
	}
	if hw.log.add(path, reason) {
		hw.log.kill(hw.lost)
	}
}
