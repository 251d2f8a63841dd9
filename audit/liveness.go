package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// ErrGone is matched (errors.Is) by the error of every write made while the
// audit DB file, or its WAL, at the Store's path is not the file the Store
// opened (deleted, or replaced by another file).
var ErrGone = errors.New("audit: log file deleted or replaced")

// goneError says which file is gone and what is at its path instead. It
// travels up to the gate, which refuses the call and shows it to the agent.
type goneError struct {
	path   string // the DB's path, as configured
	detail string
}

func (e *goneError) Error() string {
	return fmt.Sprintf("audit log %s was deleted or replaced while toolgate was running; calls are refused until it is back (%s)", e.path, e.detail)
}

func (e *goneError) Is(target error) bool { return target == ErrGone }

// liveFiles is the identity (device and inode, compared by os.SameFile) of
// the files a writing Store opened. SQLite keeps writing through its open
// descriptors after the path is unlinked or renamed, so without this check
// a deleted audit.db (or audit.db-wal) would silently swallow every later
// row while the calls they record run: a fail-open. The Store refuses to
// commit while either path names another file or nothing; a file moved
// away and back is the same file again, and writes resume.
//
// A check stats both paths only when something may have changed: watch
// (inotify on the log's directory, where it works) tells it whether any
// name there was created, deleted or renamed since, or the directory
// itself moved, and it stats anyway once fullCheckEvery has passed (a
// directory above renamed, which no event reports; the log's files move
// with it, intact). The kernel queues an event before the unlink or rename
// that causes it returns, so a check after the change sees it.
type liveFiles struct {
	db    os.FileInfo
	wal   os.FileInfo // nil when there was no WAL at open
	watch *dirWatch   // nil: every check stats
}

// fullCheckEvery bounds how long a watched check goes without a stat.
const fullCheckEvery = 250 * time.Millisecond

// dirWatch says whether a directory's names may have changed since its
// last quiet answer. dirty counts the changes seen and checks failed since
// a check last passed (zero: none); a check that passes clears it only if
// nothing was seen meanwhile.
type dirWatch struct {
	fd    atomic.Int64 // -1 once closed
	dirty atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the last full check that passed
}

// walSuffix names SQLite's write-ahead log beside the DB.
const walSuffix = "-wal"

// rememberFiles records the identity of the DB file at path and of its WAL,
// if one exists. Called once the writer's connection has opened the DB in
// WAL mode (so the WAL it writes is the one at the path now).
func rememberFiles(path string) (liveFiles, error) {
	var lf liveFiles
	var err error
	lf.watch = watchDir(filepath.Dir(path))
	if lf.db, err = os.Stat(path); err != nil {
		lf.close()
		return liveFiles{}, fmt.Errorf("audit: %w", err)
	}
	switch fi, err := os.Stat(path + walSuffix); {
	case err == nil:
		lf.wal = fi
	case !errors.Is(err, fs.ErrNotExist):
		lf.close()
		return liveFiles{}, fmt.Errorf("audit: %w", err)
	}
	return lf, nil
}

// close stops the watch.
func (lf liveFiles) close() {
	if lf.watch != nil {
		lf.watch.close()
	}
}

// check returns a *goneError unless path (and its WAL, if one was there at
// open) still names the files that were opened: one stat per file, or
// none while the watch has seen nothing (see liveFiles).
func (lf liveFiles) check(path string) error {
	return lf.watch.check(func() error { return lf.stat(path) })
}

// check runs full, the check of the files in w's directory, unless w has
// seen no change since the last one passed, less than fullCheckEvery ago;
// a nil w always runs it.
func (w *dirWatch) check(full func() error) error {
	if w == nil {
		return full()
	}
	now := time.Now().UnixNano()
	d := w.dirty.Load()
	if w.changed() {
		d = w.dirty.Add(1)
	} else if d == 0 && now-w.last.Load() < int64(fullCheckEvery) {
		return nil
	}
	if err := full(); err != nil {
		w.dirty.Add(1)
		return err
	}
	if w.dirty.CompareAndSwap(d, 0) {
		w.last.Store(now)
	}
	return nil
}

// stat returns a *goneError unless path and its WAL name the files opened.
func (lf liveFiles) stat(path string) error {
	if err := sameFile(path, lf.db); err != nil {
		return &goneError{path: path, detail: err.Error()}
	}
	if lf.wal != nil {
		if err := sameFile(path+walSuffix, lf.wal); err != nil {
			return &goneError{path: path, detail: "its write-ahead log: " + err.Error()}
		}
	}
	return nil
}

func sameFile(path string, want os.FileInfo) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case err != nil:
		return err
	case !os.SameFile(fi, want):
		return fmt.Errorf("%s is another file than the one opened", path)
	}
	return nil
}
