package sandbox

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// A run's mounts hold files by their directory entry, not by name: a
// single-file bind mount (a protected file held read-only, a secret masked
// with /dev/null) sits on the dentry it was made on. When a program on the
// host replaces that entry (git writes config.lock and renames it over
// config; sed -i, an editor's safe-write and most tools that rewrite a
// file do the same) or removes it, the kernel detaches the mount in every
// namespace, and the running sandbox sees the new file as it is: writable,
// or readable. The sandbox cannot keep its hold through that, so it
// watches the names it holds while a run is in flight and kills the run
// as soon as one is replaced, removed or created, or git's lock for a held
// file appears (watch_linux.go), and after the run it checks that each held
// file is still the one, with the content, it had when the run started.
// The kill comes after the change, not before it: a process in the run
// that watches for it may still reach the new file in between, so the call
// fails with the paths for the user to inspect (ErrHoldEnded). Nothing is
// restored: the new file is the user's own change, maybe with the run's on
// top, and only the user can tell them apart.

// ErrHoldEnded is returned by Cmd.HoldErr when a protected or masked path
// was replaced, removed or changed on the host (or git's lock for it
// appeared, which another run may make too) while the run was in flight,
// so the sandbox's hold on it may have ended before the run did.
var ErrHoldEnded = errors.New("the sandbox's hold on a protected or masked path ended while the command ran")

// holdKind is how a run's mounts hold a path.
type holdKind uint8

const (
	heldRO holdKind = iota // a protected path, held read-only
	pinned                 // a directory on the way to a held or masked path, bound onto itself
	masked                 // a secret or Hide path, masked
)

func (k holdKind) String() string {
	switch k {
	case heldRO:
		return "held read-only"
	case pinned:
		return "pinned in place"
	}
	return "masked"
}

// maxHeldSum is the largest held file whose content is compared after a
// run; a larger one is compared by identity only. git's control files are
// a few kilobytes.
const maxHeldSum = 1 << 20

// holdPath is one path a run's mounts hold, as it was when the run started.
type holdPath struct {
	path string // absolute
	kind holdKind
	// lock is git's lock file for path (path + ".lock"), whose appearance
	// means git on the host is about to replace path; "" for none.
	lock   string
	id     fileID
	sum    [sha256.Size]byte
	hasSum bool
	gone   bool // path did not exist when the run started
}

// record notes what h.path is now: its identity and, for a held regular
// file, its content's hash.
func (h *holdPath) record() {
	fi, err := os.Lstat(h.path)
	if err != nil {
		h.gone = true
		return
	}
	h.id, _ = idOf(fi)
	if h.kind == heldRO && fi.Mode().IsRegular() && fi.Size() <= maxHeldSum {
		h.sum, h.hasSum = fileSum(h.path)
	}
}

// changed says how h.path differs from what record saw, or "" if it does
// not.
func (h *holdPath) changed() string {
	fi, err := os.Lstat(h.path)
	switch {
	case h.gone && err == nil:
		return "was created"
	case h.gone:
		return ""
	case err != nil:
		return "was removed"
	}
	if id, ok := idOf(fi); ok && id != h.id {
		return "was replaced"
	}
	if h.hasSum {
		if sum, ok := fileSum(h.path); !ok || sum != h.sum {
			return "was changed"
		}
	}
	return ""
}

func fileSum(p string) (sum [sha256.Size]byte, ok bool) {
	f, err := os.Open(p)
	if err != nil {
		return sum, false
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, io.LimitReader(f, maxHeldSum+1)); err != nil {
		return sum, false
	}
	copy(sum[:], hash.Sum(nil))
	return sum, true
}

// holdLog collects the paths whose hold ended during a run, once each.
type holdLog struct {
	mu      sync.Mutex
	reasons []string
	seen    map[string]bool
	killed  bool // the watcher killed the run
}

// kill calls stop the first time it is called.
func (l *holdLog) kill(stop func()) {
	l.mu.Lock()
	first := !l.killed
	l.killed = true
	l.mu.Unlock()
	if first {
		stop()
	}
}

// add notes that the hold on path ended, for reason; it reports whether
// this is the first time for path.
func (l *holdLog) add(path, reason string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[path] {
		return false
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.seen[path] = true
	l.reasons = append(l.reasons, reason)
	return true
}

// err returns ErrHoldEnded with every reason, or nil.
func (l *holdLog) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reasons) == 0 {
		return nil
	}
	killed := ""
	if l.killed {
		killed = ", so toolgate killed the run at once"
	}
	return fmt.Errorf("%w%s: %s. The sandbox holds a file, not its name: git, an editor's save, sed -i and most tools "+
		"that rewrite a file write a new one and rename it over the old, and the new one is not held; git's lock file appearing "+
		"means such a rename is coming, whether git on the host or another command of the agent (in .git, which runs may write) "+
		"made it. Retry the call once the change is done; to avoid this, do not change these files on the host while a command "+
		"of the agent runs in the workspace, or give the agent a worktree of its own", ErrHoldEnded, killed, strings.Join(l.reasons, "; "))
}

// holdPaths returns what a run's mounts hold: the held protected paths,
// the directories pinned on the way to them and to the masks in the
// workspace, and the masked files and directories. Each held file gets
// git's lock name, which is harmless to watch where git does not write.
func holdPaths(held, pins, masks []string) []holdPath {
	var out []holdPath
	for _, p := range held {
		h := holdPath{path: p, kind: heldRO}
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			h.lock = p + ".lock"
		}
		out = append(out, h)
	}
	for _, p := range pins {
		out = append(out, holdPath{path: p, kind: pinned})
	}
	for _, p := range masks {
		out = append(out, holdPath{path: p, kind: masked})
	}
	return out
}

// holdReason words what happened to h, for the agent and the user.
func holdReason(h holdPath, what string) string {
	advice := "the user should check it before running git or the tools that read it"
	if h.kind == masked {
		advice = "the command may have read the new file"
	}
	return fmt.Sprintf("%s, which the sandbox %s, %s on the host or by another command running in the workspace "+
		"(toolgate cannot tell which) (%s)", h.path, h.kind, what, advice)
}

// holdLogged adds, after a run, every held path that is not what it was
// when the run started and that the watcher did not report.
func holdLogged(l *holdLog, hold []holdPath) {
	for i := range hold {
		if what := hold[i].changed(); what != "" {
			l.add(hold[i].path, holdReason(hold[i], what))
		}
	}
}
