package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Host-side work on the workspace (protect's checks and directories before
// a run, Cleanup's removals after it) runs with toolgate's own rights, on
// names a sandboxed command may have rearranged. So it goes through an
// os.Root on the workspace, which cannot leave it, and it opens one name at
// a time and never follows a symlink, not even one that stays inside: a
// symlinked directory on the way is reported, not entered.

// errChanged says a directory was replaced between looking at it and
// opening it: a command running at the same time is rearranging the path.
var errChanged = errors.New("changed while toolgate looked at it")

// place is where a walk down a workspace-relative path stopped.
type place struct {
	// dir is the directory holding name, opened without following a
	// link. The caller closes it.
	dir *os.Root
	// rel is the workspace-relative path of name.
	rel  string
	name string
	// fi is name's Lstat; nil when name does not exist.
	fi fs.FileInfo
}

// walk goes down rel (clean and local) from ws one name at a time and stops
// at rel itself or at the first name on the way that is missing, is a
// symlink or is not a directory. Each directory is opened by its single
// name and checked to be the one Lstat saw, so no link, and no directory
// swapped for one, is ever followed. With fix, a directory on the way that
// its owner cannot read or search (a command took the bits away) gets its
// owner's bits back before it is entered.
func walk(ws *os.Root, rel string, fix bool) (place, error) {
	dir, err := ws.OpenRoot(".")
	if err != nil {
		return place{}, err
	}
	names := strings.Split(filepath.ToSlash(rel), "/")
	for i, name := range names {
		p := place{dir: dir, rel: filepath.Join(names[:i+1]...), name: name}
		fi, err := dir.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return p, nil
		case err != nil:
			dir.Close()
			return place{}, err
		}
		p.fi = fi
		if i == len(names)-1 || !fi.IsDir() {
			return p, nil // rel itself, or a link or a file where a directory should be
		}
		if fix && fi.Mode().Perm()&0o500 != 0o500 {
			if err := ownerRWX(dir, name); err != nil {
				dir.Close()
				return place{}, err
			}
		}
		sub, err := openDir(dir, name, fi)
		dir.Close()
		if err != nil {
			return place{}, fmt.Errorf("%s: %w", p.rel, err)
		}
		dir = sub
	}
	panic("unreachable")
}

// openDir opens directory name in dir, which Lstat saw as fi, and checks
// that what it opened is that directory (not a link put in its place).
func openDir(dir *os.Root, name string, fi fs.FileInfo) (*os.Root, error) {
	sub, err := dir.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if got, err := sub.Stat("."); err != nil || !os.SameFile(fi, got) {
		sub.Close()
		return nil, errChanged
	}
	return sub, nil
}

// ownerRWX gives the owner of directory name in dir read, write and search
// permission, keeping the other bits. os.Root's Chmod does not follow a
// symlink in name's place.
func ownerRWX(dir *os.Root, name string) error {
	fi, err := dir.Lstat(name)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", name)
	}
	if fi.Mode().Perm()&0o700 == 0o700 {
		return nil
	}
	return dir.Chmod(name, fi.Mode().Perm()|0o700)
}

// remove removes name in dir (a link itself, not what it points to; a
// directory with everything in it). A command can make that fail for
// toolgate by taking the write bit off dir or off directories it created
// under name: those get their owner's bits back, and the removal is tried
// again. Only dir (which the caller could search, so the Chmod of "."
// reaches it) and what lies under name are touched, and no link is
// followed.
func remove(dir *os.Root, name string) error {
	err := dir.RemoveAll(name)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if ferr := ownerRWX(dir, "."); ferr != nil {
		return errors.Join(err, ferr)
	}
	if ferr := writableTree(dir, name); ferr != nil {
		return errors.Join(err, ferr)
	}
	return dir.RemoveAll(name)
}

// writableTree gives every directory at or under name in dir (links not
// followed) its owner's read, write and search bits.
func writableTree(dir *os.Root, name string) error {
	fi, err := dir.Lstat(name)
	if err != nil || !fi.IsDir() {
		return nil // gone, a file or a link: nothing to open
	}
	if err := ownerRWX(dir, name); err != nil {
		return err
	}
	sub, err := openDir(dir, name, fi)
	if err != nil {
		return err
	}
	defer sub.Close()
	f, err := sub.Open(".")
	if err != nil {
		return err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, writableTree(sub, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// openWorkspace opens ws, the configured workspace (an absolute path with
// symlinks evaluated). With fix, a workspace its owner cannot read or
// search (a command took the bits away) gets its owner's bits back first.
func openWorkspace(ws string, fix bool) (*os.Root, error) {
	if fi, err := os.Stat(ws); fix && err == nil && fi.IsDir() && fi.Mode().Perm()&0o500 != 0o500 {
		if err := os.Chmod(ws, fi.Mode().Perm()|0o700); err != nil {
			return nil, err
		}
	}
	return os.OpenRoot(ws)
}

// QuarantineDir is the workspace directory Cleanup moves what appeared at a
// watched protected path into, one directory per run (a UTC time and a
// random suffix), the workspace-relative path kept under it. It lies in
// .toolgate/, which DefaultProtect holds read-only in every writable run,
// so no run can change what was put there or reach it through a link, and
// it is on the workspace's filesystem, so a rename moves it there. No tool
// reads a file there as what it was (a workflow, an .envrc, a hook); a
// directory or file named .git is stored as dot-git, so git does not take
// it for a repository when the user looks around there.
const QuarantineDir = ".toolgate/quarantine"

// quarantine moves what Cleanup takes away into a new directory under
// QuarantineDir; ok says whether the run held .toolgate/, so the move may
// go there. dir is the directory it made (workspace-relative), "" until
// it made one.
type quarantine struct {
	root *os.Root
	ok   bool
	dir  string
}

// take moves p (a name a walk found, in p.dir) into the quarantine and
// checks that nothing is left at its name; when it cannot be moved there,
// it removes it.
func (q *quarantine) take(p place) error {
	if q.ok {
		if err := q.move(p); err == nil {
			if _, err := p.dir.Lstat(p.name); errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
	}
	return remove(p.dir, p.name)
}

func (q *quarantine) move(p place) error {
	if q.dir == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		dir := filepath.Join(QuarantineDir, time.Now().UTC().Format("2006-01-02T15-04-05Z")+"-"+hex.EncodeToString(b[:]))
		if err := q.root.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := q.ignored(); err != nil {
			return err
		}
		q.dir = dir
	}
	var names []string
	for _, n := range strings.Split(filepath.ToSlash(p.rel), "/") {
		if n == ".git" {
			n = "dot-git"
		}
		names = append(names, n)
	}
	dst := filepath.Join(q.dir, filepath.Join(names...))
	if err := q.root.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	err := q.root.Rename(p.rel, dst)
	if errors.Is(err, fs.ErrPermission) {
		// A run may have taken the write bit off the directory holding
		// p, or off p itself (a directory's ".." changes with it).
		if p.fi.IsDir() {
			_ = ownerRWX(p.dir, p.name)
		}
		if ferr := ownerRWX(p.dir, "."); ferr != nil {
			return errors.Join(err, ferr)
		}
		err = q.root.Rename(p.rel, dst)
	}
	if err != nil {
		return err
	}
	return q.detach(dst)
}

// ignored makes git ignore QuarantineDir (a .gitignore of "*" there), so
// what was taken away from a run is not committed back by a "git add -A",
// under another path or, once the user moves it, in its own place.
func (q *quarantine) ignored() error {
	f, err := q.root.OpenFile(filepath.Join(QuarantineDir, ".gitignore"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString("*\n")
	return errors.Join(err, f.Close())
}

// detach gives each file under dst (kept in the quarantine) that has
// another name an inode of its own, a copy: a run that linked what it
// created (ln CLAUDE.md keep) must not be able to change what is kept,
// which the user may move back to where the sandbox holds it.
func (q *quarantine) detach(dst string) error {
	return fs.WalkDir(q.root.FS(), filepath.ToSlash(dst), func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil || links(fi) < 2 {
			return err
		}
		b, err := fs.ReadFile(q.root.FS(), name)
		if err != nil {
			return err
		}
		tmp := name + ".toolgate-copy"
		if err := q.root.WriteFile(tmp, b, fi.Mode().Perm()); err != nil {
			return err
		}
		return q.root.Rename(tmp, name)
	})
}

// links is fi's number of hard links (1 where the system does not say).
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// defaultMaxHeldWalk bounds the entries soleNames looks at in one run's
// held directories together: git's hooks and the agents' and editors'
// settings are a few dozen files.
const defaultMaxHeldWalk = 10000

// heldWalk is what is left of the entries soleNames may look at in one
// run, out of limit.
type heldWalk struct{ limit, left int }

// linkedError says held file rel has n names, and how the user makes it a
// file of its own. A mount holds a name, not the file: another name for
// it, in the workspace or in a profile's Write path, would write it
// behind the hold (a hook the user's next git commit runs). Where the
// other names are is not known without searching every mounted
// filesystem, so any other name refuses the run; the copy the message
// gives breaks the link wherever the other names are.
func linkedError(rel string, n uint64) error {
	return fmt.Errorf("%s has %d hard links: another name for the file could change it behind the sandbox's hold "+
		"(a command can link a file it created, or one moved back from %s); the user should make it a file of its own "+
		"(cp %s x && mv x %s) and remove the other names (find . -samefile %s)", rel, n, QuarantineDir, rel, rel, rel)
}

// soleNames checks that no regular file under held directory p has
// another name (linkedError): the directory's read-only mount holds the
// names in it, not the files. A run cannot give one another name (link(2)
// from a read-only bind mount to any other mount fails with EXDEV), so the
// check is made once, before the run. A symlink in p is held as a link and
// not followed: where it points is as writable as that place is. It looks
// at no more than w.left entries, counting down, and refuses the run past
// them, or when it cannot read one (it fails closed). QuarantineDir is not looked into: each file it keeps was given a
// name of its own as it was moved in (detach), no run can give it another,
// and no tool reads it as what it was; it can hold whole repositories.
func soleNames(p place, w *heldWalk) error {
	parent := filepath.Dir(p.rel)
	return fs.WalkDir(p.dir.FS(), p.name, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("checking its files for other names (hard links): %w", err)
		}
		rel := filepath.Join(parent, filepath.FromSlash(name))
		if w.left--; w.left < 0 {
			return fmt.Errorf("the protected directories hold more than %d files and directories, each of which toolgate "+
				"checks for other names (hard links) before a writable run, so no command runs with a writable workspace "+
				"until they hold fewer (%s is where the check stopped)", w.limit, rel)
		}
		switch {
		case d.IsDir() && rel == QuarantineDir:
			return fs.SkipDir
		case !d.Type().IsRegular():
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("checking %s for other names (hard links): %w", rel, err)
		}
		if n := links(fi); n > 1 {
			return linkedError(rel, n)
		}
		return nil
	})
}
