package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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
type liveFiles struct {
	db  os.FileInfo
	wal os.FileInfo // nil when there was no WAL at open
}

// walSuffix names SQLite's write-ahead log beside the DB.
const walSuffix = "-wal"

// rememberFiles records the identity of the DB file at path and of its WAL,
// if one exists. Called once the writer's connection has opened the DB in
// WAL mode (so the WAL it writes is the one at the path now).
func rememberFiles(path string) (liveFiles, error) {
	var lf liveFiles
	var err error
	if lf.db, err = os.Stat(path); err != nil {
		return lf, fmt.Errorf("audit: %w", err)
	}
	switch fi, err := os.Stat(path + walSuffix); {
	case err == nil:
		lf.wal = fi
	case !errors.Is(err, fs.ErrNotExist):
		return lf, fmt.Errorf("audit: %w", err)
	}
	return lf, nil
}

// check returns a *goneError unless path (and its WAL, if one was there at
// open) still names the files that were opened. It costs one stat per file.
func (lf liveFiles) check(path string) error {
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
