package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The workspace's own secret files (.env, keys, a .aws directory) are
// masked in every sandboxed run that mounts any of the workspace: the
// rules deny a command that names one, but a command can reach a file
// without naming it (a computed word, a script, a test), so the sandbox
// must hold what the rules mean. Which paths are secret is the caller's to
// say (Options.Secret: toolgate passes the rules' own secret class), so
// the two cannot drift apart. At each run the workspace is walked, as
// toolgate, through an os.Root one directory at a time, following no
// symlink, and every secret file or directory found is masked like a Hide
// path, but a file whose content git already holds (gitknown.go).

// SkipDirs are the directory names the walk for secret files does not
// enter, at any depth: version control stores, installed dependencies and
// caches of tools, which are large and hold no user secrets. A secret
// inside one is not masked; the rules still deny a command that names it.
var SkipDirs = []string{".git", ".hg", ".svn", ".jj", "node_modules", ".venv", "__pycache__",
	".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".gradle"}

// Bounds of the walk for secret files. A workspace past them refuses every
// run that would mount it: a secret the walk did not reach would be
// readable inside.
const (
	// defaultMaxSecretWalk is how many files and directories the walk
	// looks at, outside SkipDirs.
	defaultMaxSecretWalk = 200_000
	// maxSecretDepth is how deep it goes: each level holds a directory
	// open.
	maxSecretDepth = 256
	// maxSecretMasks is how many secrets it masks: each is a mount, and
	// bubblewrap's cost grows faster than their number (about a tenth of
	// a second for a hundred, seconds for a thousand).
	maxSecretMasks = 256
)

// ErrSecretWalk is returned by Command when the workspace could not be
// searched for its secret files, or holds too many to mask (see the
// bounds above, or a directory toolgate cannot read): the run is refused
// rather than run with them readable.
var ErrSecretWalk = errors.New("sandbox: toolgate could not look through the whole workspace for secret files to mask, so the command was not run")

// secretHint says how to fix a workspace the walk cannot finish.
const secretHint = "; fix that, or set sandbox.workspace_secrets: visible in toolgate's config to let sandboxed " +
	"commands read the workspace's secret files"

// stableAge is how long before a walk starts a directory (or a file
// hashed) must have last changed for what the walk learnt of it to be
// trusted by later walks: a change made in the same clock tick as the
// reading (file system times are coarse) could leave the change time as
// it was.
const stableAge = 2 * time.Second

// stamp is a file as a walk saw it: its identity, its change time (which
// every change of its entries or content moves forward and no one can set
// back) and when the walk read it.
type stamp struct {
	id          fileID
	ctime, seen time.Time
}

// stampOf is fi as seen at time seen; ok is false where the system gives
// no identity or change time.
func stampOf(fi fs.FileInfo, seen time.Time) (st stamp, ok bool) {
	id, okID := idOf(fi)
	ctime, okTime := changeTime(fi)
	return stamp{id: id, ctime: ctime, seen: seen}, okID && okTime
}

// holds reports whether fi, the file at the stamp's path now, is the same
// one, unchanged, and its change time was stableAge older than the
// reading: only then does what was read of it still hold.
func (st stamp) holds(fi fs.FileInfo) bool {
	now, ok := stampOf(fi, st.seen)
	return ok && now.id == st.id && now.ctime.Equal(st.ctime) && st.ctime.Before(st.seen.Add(-stableAge))
}

// listing is what the walk learnt from one directory: how many entries it
// holds, which of them are secret (files and dirs, names) and which are
// directories to walk (sub). A later walk reuses it, instead of reading
// the directory and matching every name again, while its stamp holds.
type listing struct {
	stamp
	entries          int
	files, dirs, sub []string
}

// secretWalk finds the secret files and directories under a workspace.
type secretWalk struct {
	ctx    context.Context
	secret func(rel string) bool
	start  time.Time
	limit  int // entries the walk may look at
	left   int // entries still to look at
	// files and dirs are the secret paths found, workspace-relative.
	files, dirs []string
	// prev are the listings of the last walk that finished, by
	// workspace-relative path ("" for the workspace); next are this
	// walk's, which replace them if it finishes.
	prev, next map[string]listing
	// listed counts the directories this walk read.
	listed int
}

// secretPaths walks the workspace and returns the workspace-relative slash
// paths of its secret files (anything but a directory or a symlink) to
// mask, those whose content git does not hold (see unheld), and of its
// secret directories. It does not enter a secret directory (the whole of
// it is masked), a SkipDirs directory or a symlink. An error
// (ErrSecretWalk) means the walk did not see the whole workspace.
//
// A secret file with another name (a hard link) refuses the run
// (ErrSecretLinked): the masks hold names, and the other name, wherever
// it is, would show the secret's content (see linkedSecrets).
func (s *Sandbox) secretPaths(ctx context.Context) (files, dirs []string, err error) {
	files, dirs, linked, err := s.secretsAndLinks(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(linked) > 0 {
		return nil, nil, s.linkedSecretError(linked)
	}
	return files, dirs, nil
}

// secretsAndLinks returns what secretPaths masks, and the secret files
// among them that have other names (linkedSecrets).
func (s *Sandbox) secretsAndLinks(ctx context.Context) (files, dirs []string, linked map[fileID]linkedSecret, err error) {
	w, err := s.walkSecrets(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	files = s.unheld(w.files)
	if linked, err = s.linkedSecrets(ctx, files, w.dirs, w.left); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w%s", ErrSecretWalk, err, secretHint)
	}
	return files, w.dirs, linked, nil
}

// walkSecrets walks the workspace for secretPaths.
func (s *Sandbox) walkSecrets(ctx context.Context) (*secretWalk, error) {
	root, err := os.OpenRoot(s.o.Workspace)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSecretWalk, err)
	}
	defer root.Close()
	s.walkMu.Lock()
	prev := s.walked
	s.walkMu.Unlock()
	w := &secretWalk{ctx: ctx, secret: s.o.Secret, start: s.now(), limit: s.maxSecretWalk, left: s.maxSecretWalk,
		prev: prev, next: make(map[string]listing, len(prev))}
	fi, err := root.Stat(".")
	if err == nil {
		err = w.dir(root, fi, "", 0)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w%s", ErrSecretWalk, err, secretHint)
	}
	s.walkMu.Lock()
	s.walked = w.next
	s.walkMu.Unlock()
	return w, nil
}

// dir takes in the entries of d, the workspace directory rel ("" for the
// workspace itself) that Lstat saw as fi, and walks the directories among
// them that are neither secret nor skipped, after closing d's listing, so
// a level of the walk holds one descriptor.
func (w *secretWalk) dir(d *os.Root, fi fs.FileInfo, rel string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if depth > maxSecretDepth {
		return fmt.Errorf("%s: directories nested more than %d deep", rel, maxSecretDepth)
	}
	l, ok := w.reuse(rel, fi)
	if !ok {
		var err error
		if l, err = w.list(d, rel, fi); err != nil {
			return err
		}
	}
	if w.left -= l.entries; w.left < 0 {
		return w.tooMany()
	}
	w.next[rel] = l
	if n := len(w.files) + len(w.dirs) + len(l.files) + len(l.dirs); n > maxSecretMasks {
		return fmt.Errorf("it holds more than %d secret files and directories (%s among them), each of which a run "+
			"would mask with a mount; rename the ones that hold no secret (test fixtures), or move them out", maxSecretMasks, display(rel))
	}
	for _, name := range l.files {
		w.files = append(w.files, join(rel, name))
	}
	for _, name := range l.dirs {
		w.dirs = append(w.dirs, join(rel, name))
	}
	for _, name := range l.sub {
		p := join(rel, name)
		fi, err := d.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed since it was listed: nothing under it to mask
		case err != nil:
			return fmt.Errorf("%s: %w", p, err)
		case !fi.IsDir():
			return fmt.Errorf("%s: %w", p, errChanged)
		}
		sd, err := openDir(d, name, fi)
		if err != nil {
			return dirError(p, err)
		}
		err = w.dir(sd, fi, p, depth+1)
		sd.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// reuse returns the last walk's listing of rel if it still holds for the
// directory Lstat saw as fi.
func (w *secretWalk) reuse(rel string, fi fs.FileInfo) (listing, bool) {
	l, ok := w.prev[rel]
	return l, ok && l.holds(fi)
}

// list reads directory d (rel, seen as fi) in batches and sorts its
// entries: secret, to walk, or neither.
func (w *secretWalk) list(d *os.Root, rel string, fi fs.FileInfo) (listing, error) {
	w.listed++
	var l listing
	l.stamp, _ = stampOf(fi, w.start)
	f, err := d.Open(".")
	if err != nil {
		return l, dirError(rel, err)
	}
	defer f.Close()
	r, err := plainDir(f)
	if err != nil {
		return l, fmt.Errorf("%s: %w", display(rel), err)
	}
	if r != f {
		defer r.Close()
	}
	for {
		des, err := r.ReadDir(1024)
		for _, de := range des {
			if l.entries++; l.entries > w.left {
				return l, w.tooMany()
			}
			name, t := de.Name(), de.Type()
			switch p := join(rel, name); {
			case t&fs.ModeSymlink != 0:
				// Not followed: what a link leads to is masked when
				// its own path is a secret.
			case t.IsDir() && slices.Contains(SkipDirs, name):
			case w.secret(p) && t.IsDir():
				l.dirs = append(l.dirs, name)
			case w.secret(p):
				l.files = append(l.files, name)
			case t.IsDir():
				l.sub = append(l.sub, name)
			}
		}
		switch {
		case err == io.EOF:
			return l, nil
		case err != nil:
			return l, fmt.Errorf("%s: %w", display(rel), err)
		}
	}
}

func (w *secretWalk) tooMany() error {
	return fmt.Errorf("it holds more than %d files and directories (not counting %s); move generated trees "+
		"(build outputs, vendored code) out of it", w.limit, strings.Join(SkipDirs, ", "))
}

// dirError is the walk's error for directory rel, which it could not open.
func dirError(rel string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s: toolgate cannot read this directory (chmod u+rx fixes it): %w", display(rel), err)
	}
	return fmt.Errorf("%s: %w", display(rel), err)
}

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// display is a workspace-relative path as messages show it.
func display(rel string) string {
	if rel == "" {
		return "the workspace"
	}
	return rel
}

// secretIn reports whether rel, a clean workspace-relative path, is masked
// as a secret in the runs: it, or a directory above it, is a secret path
// that the walk would find now (it exists and is no symlink, and no
// directory on the way is a symlink or one of SkipDirs), and is not a
// file whose content git holds. When that cannot be told, it is taken as
// masked.
func (s *Sandbox) secretIn(rel string) bool {
	if s.o.Secret == nil || s.o.Workspace == "" || !filepath.IsLocal(rel) {
		return false
	}
	names := strings.Split(filepath.ToSlash(rel), "/")
	for i, name := range names {
		p := strings.Join(names[:i+1], "/")
		if s.o.Secret(p) {
			return s.secretExists(p)
		}
		if slices.Contains(SkipDirs, name) {
			return false
		}
	}
	return false
}

// secretExists reports whether the workspace holds the secret path p, not
// through a symlink, and not as one, nor as a file whose content git
// holds; true when it cannot be told.
func (s *Sandbox) secretExists(p string) bool {
	root, err := openWorkspace(s.o.Workspace, false)
	if err != nil {
		return true
	}
	defer root.Close()
	at, err := walk(root, p, false)
	if err != nil {
		return true
	}
	defer at.dir.Close()
	if at.rel != filepath.FromSlash(p) || at.fi == nil || at.fi.Mode()&fs.ModeSymlink != 0 {
		return false
	}
	return at.fi.IsDir() || !s.held(root, p)
}
