package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// A gitlink in the workspace's index (a submodule's entry) whose path holds
// a .git makes git at the root enter that repository: git status there
// runs the submodule's filters, hooks and fsmonitor, from its own config,
// with the rights of whoever runs it, and a .gitmodules in the index can
// ask for it (ignore = none) whatever the command line's
// diff.ignoreSubmodules says. A submodule's config is held read-only only
// when its git directory lies under .git/modules and existed when the run
// started; the index, a repository made with git init --separate-git-dir
// and a .git file are all writable. So after a writable run that changed
// .git/index, each gitlink's .git that is a directory, or a .git file
// naming any other git directory, is taken away like a protected path that
// appeared (Cleanup); so is one that appeared or changed during the run at
// a gitlink that was there before it.

// gitlinkListTimeout bounds git ls-files on the workspace's index.
const gitlinkListTimeout = 30 * time.Second

// maxGitFile is the largest .git file read as a pointer to a git directory.
const maxGitFile = 4096

// gitlinks is what Cleanup needs to find a repository put at a submodule's
// path during a writable run: the root's index before the run, the
// gitlinks it held, and what was at each one's .git.
type gitlinks struct {
	s      *Sandbox
	index  fs.FileInfo // .git/index before the run; nil when there was none
	known  bool        // paths were listed from index
	paths  []string    // workspace-relative, slash-separated
	dotGit map[string]fs.FileInfo
}

// gitlinkCache is the gitlinks of the last index listed, kept while its
// stamp holds, so a run whose index has not changed does not run git.
type gitlinkCache struct {
	stamp
	size  int64
	mtime time.Time
	paths []string
}

// gitlinkState is a Sandbox's gitlinkCache, guarded.
type gitlinkState struct {
	mu    sync.Mutex
	cache gitlinkCache
}

// recordGitlinks notes the workspace's gitlinks and their .git before a
// writable run; nil when the workspace has no .git directory, the Protect
// paths do not hold it, or git is not installed (then no git runs a
// submodule's config). When the index cannot be listed now, Cleanup lists
// it after the run as if the run had changed it.
func (s *Sandbox) recordGitlinks(ctx context.Context, ws string) *gitlinks {
	if !s.holdsGit() || !realDir(filepath.Join(ws, ".git")) || gitExe() == "" {
		return nil
	}
	g := &gitlinks{s: s, dotGit: map[string]fs.FileInfo{}}
	fi, err := os.Lstat(filepath.Join(ws, ".git", "index"))
	if err == nil {
		g.index = fi
	}
	if g.paths, err = s.gitlinkPaths(ctx, ws, g.index); err != nil {
		return g
	}
	g.known = true
	for _, p := range g.paths {
		g.dotGit[p], _ = os.Lstat(filepath.Join(ws, filepath.FromSlash(p), ".git"))
	}
	return g
}

// gitlinkPaths returns the gitlinks in the workspace's index, which Lstat
// saw as index (nil: there is none), from the cache while it holds.
func (s *Sandbox) gitlinkPaths(ctx context.Context, ws string, index fs.FileInfo) ([]string, error) {
	if index == nil {
		return nil, nil
	}
	now := s.now()
	s.links.mu.Lock()
	c := s.links.cache
	s.links.mu.Unlock()
	if c.paths != nil && index.Size() == c.size && index.ModTime().Equal(c.mtime) && c.holds(index) {
		return c.paths, nil
	}
	st, ok := stampOf(index, now)
	paths, err := listGitlinks(ctx, ws)
	if err != nil {
		return nil, err
	}
	if ok && paths != nil {
		s.links.mu.Lock()
		s.links.cache = gitlinkCache{stamp: st, size: index.Size(), mtime: index.ModTime(), paths: paths}
		s.links.mu.Unlock()
	}
	return paths, nil
}

// listGitlinks runs git ls-files on the workspace's index and returns its
// gitlinks (mode 160000), an empty non-nil slice for none. git runs with
// none of the user's or toolgate's settings beyond the repository's own
// config, which the sandbox holds read-only: no system or global config,
// no fsmonitor, no hooks; ls-files only reads the index (a split index's
// shared part too, as git status does).
func listGitlinks(ctx context.Context, ws string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitlinkListTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitExe(), "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
		"--git-dir="+filepath.Join(ws, ".git"), "ls-files", "--stage", "-z")
	cmd.Dir = "/"
	cmd.Env = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=", "GIT_OPTIONAL_LOCKS=0"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	paths := []string{}
	r := bufio.NewReader(out)
	var perr error
	for {
		rec, err := r.ReadBytes(0)
		if errors.Is(err, io.EOF) && len(rec) == 0 {
			break
		}
		if err != nil {
			perr = err
			break
		}
		// "MODE OID STAGE\tPATH\0"
		meta, path, ok := bytes.Cut(bytes.TrimSuffix(rec, []byte{0}), []byte{'\t'})
		if !ok {
			perr = fmt.Errorf("git ls-files: unexpected record %q", rec)
			break
		}
		if !bytes.HasPrefix(meta, []byte("160000 ")) {
			continue
		}
		if !filepath.IsLocal(string(path)) {
			perr = fmt.Errorf("git ls-files: gitlink %q leaves the workspace", path)
			break
		}
		paths = append(paths, string(path))
	}
	if perr != nil {
		_ = cmd.Process.Kill()
	}
	if err := cmd.Wait(); err != nil || perr != nil {
		return nil, fmt.Errorf("git ls-files --stage: %w: %s", errors.Join(perr, err), strings.TrimSpace(stderr.String()))
	}
	slices.Sort(paths)
	return slices.Compact(paths), nil
}

// sameEntry reports whether a and b (Lstats of one name, nil for none) are
// the same file, unchanged: identity, size, modification and change time.
func sameEntry(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ida, okA := idOf(a)
	idb, okB := idOf(b)
	ca, okCA := changeTime(a)
	cb, okCB := changeTime(b)
	return okA && okB && okCA && okCB && ida == idb && ca.Equal(cb) && a.Size() == b.Size() &&
		a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

// takeGitlinks takes away, into q, each gitlink's .git that lets git at
// the root run a config the run could write: after a run that changed the
// index, every one that is not a .git file naming a git directory the run
// held; after one that did not, the same among those that appeared or
// changed. It returns the absolute paths it took away.
func (c *Cmd) takeGitlinks(root *os.Root, q *quarantine) (removed []string, errs []error) {
	g := c.links
	var index fs.FileInfo
	if fi, err := os.Lstat(filepath.Join(c.ws, ".git", "index")); err == nil {
		index = fi
	}
	changed := !g.known || !sameEntry(g.index, index)
	paths := g.paths
	if changed {
		var err error
		if paths, err = g.s.gitlinkPaths(context.Background(), c.ws, index); err != nil {
			return nil, []error{fmt.Errorf("sandbox: after the run: listing the submodules in %s, whose index the run changed "+
				"(a repository at a submodule's path runs its own config when git runs at the root): %w", c.ws, err)}
		}
	}
	for _, p := range paths {
		rel := filepath.Join(filepath.FromSlash(p), ".git")
		at, err := walk(root, rel, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox: after the run: %s: %w", filepath.Join(c.ws, rel), err))
			continue
		}
		// Nothing there, or a file or a link on the way: git enters no
		// submodule through a symlink.
		keep := at.fi == nil || at.rel != rel ||
			!changed && sameEntry(g.dotGit[p], at.fi) ||
			at.fi.Mode().IsRegular() && c.heldGitFile(root, p, rel)
		if !keep {
			if err := q.take(at); err != nil {
				errs = append(errs, fmt.Errorf("sandbox: taking away %s, a repository at a submodule's path: %w", filepath.Join(c.ws, rel), err))
			} else {
				removed = append(removed, filepath.Join(c.ws, rel))
			}
		}
		at.dir.Close()
	}
	return removed, errs
}

// heldGitFile reports whether the .git file rel, at gitlink path p, names
// a git directory whose config this run held read-only: one under
// .git/modules that existed when the run started. The named directory is
// found as git finds it (the kernel resolves the path), and compared by
// identity.
func (c *Cmd) heldGitFile(root *os.Root, p, rel string) bool {
	b, err := readFile(root, rel, maxGitFile)
	if err != nil {
		return false
	}
	dir, ok := strings.CutPrefix(string(b), "gitdir:")
	if !ok {
		return false
	}
	dir = strings.TrimSpace(dir)
	if !filepath.IsAbs(dir) {
		dir = c.ws + "/" + p + "/" + dir
	}
	target, err := os.Stat(dir)
	if err != nil || !target.IsDir() {
		return false
	}
	modules := filepath.Join(c.ws, ".git", "modules")
	for _, h := range c.hold {
		if h.kind != heldRO || h.gone || filepath.Base(h.path) != "config" || !Within(modules, h.path) {
			continue
		}
		if fi, err := os.Stat(filepath.Dir(h.path)); err == nil && os.SameFile(fi, target) {
			return true
		}
	}
	return false
}
