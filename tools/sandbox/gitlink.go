package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
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
// a gitlink that was there before it. A held submodule's own index
// (.git/modules/NAME/index, writable too) is looked at the same way, down
// to maxGitlinkDepth: git at the root enters its gitlinks from it. A
// gitlink's .git that is a directory in the worktree has its control
// files held read-only during the run (gitlinkGitDirs).

// gitlinkListTimeout bounds git ls-files on one index.
const gitlinkListTimeout = 30 * time.Second

// maxGitFile is the largest .git file read as a pointer to a git directory.
const maxGitFile = 4096

// maxGitlinkDepth is how deep submodules of submodules are looked at;
// deeper, a .git at a gitlink counts as one the run could have written.
const maxGitlinkDepth = 8

// gitlinks is what Cleanup needs to find a repository put at a submodule's
// path during a writable run: for each index looked at before the run (by
// the workspace-relative git directory holding it: ".git",
// ".git/modules/NAME"), what it was, its gitlinks, and what was at each
// one's .git.
type gitlinks struct {
	s     *Sandbox
	repos map[string]*repoLinks
}

type repoLinks struct {
	index fs.FileInfo // its index before the run; nil when there was none
	known bool        // paths were listed from index
	paths []string    // relative to the repository's worktree, slash-separated
	// dotGit is the Lstat of each gitlink's .git before the run, by
	// workspace-relative path (nil: none).
	dotGit map[string]fs.FileInfo
}

// gitlinkCache is the gitlinks of one index as last listed, kept while its
// stamp holds, so a run whose index has not changed does not run git.
type gitlinkCache struct {
	stamp
	size  int64
	mtime time.Time
	paths []string
}

// gitlinkState is a Sandbox's gitlinkCache of each index (by absolute
// path), guarded.
type gitlinkState struct {
	mu    sync.Mutex
	cache map[string]gitlinkCache
}

// recordGitlinks notes the gitlinks of the workspace's index, and of its
// held submodules', and their .git before a writable run whose mounts hold
// read-only the submodule configs held (absolute paths); nil when the workspace has no .git directory, the Protect paths do
// not hold it, or git is not installed (then no git runs a submodule's
// config). An index that cannot be listed now is listed after the run as
// if the run had changed it.
func (s *Sandbox) recordGitlinks(ctx context.Context, ws string, held []string) *gitlinks {
	if !s.holdsGit() || !realDir(filepath.Join(ws, ".git")) || gitExe() == "" {
		return nil
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		return &gitlinks{s: s} // every index is listed after the run
	}
	defer root.Close()
	g := &gitlinks{s: s, repos: map[string]*repoLinks{}}
	var record func(gitDir, wt string, depth int)
	record = func(gitDir, wt string, depth int) {
		if depth > maxGitlinkDepth || g.repos[gitDir] != nil {
			return
		}
		r := &repoLinks{dotGit: map[string]fs.FileInfo{}}
		g.repos[gitDir] = r
		if fi, err := os.Lstat(filepath.Join(ws, gitDir, "index")); err == nil {
			r.index = fi
		}
		var err error
		if r.paths, err = s.gitlinkPaths(ctx, ws, gitDir, r.index); err != nil {
			return
		}
		r.known = true
		for _, p := range r.paths {
			dotGit := filepath.Join(wt, filepath.FromSlash(p), ".git")
			fi, _ := os.Lstat(filepath.Join(ws, dotGit))
			r.dotGit[dotGit] = fi
			if sub := heldGitDir(root, ws, dotGit, held); sub != "" {
				record(sub, filepath.Join(wt, filepath.FromSlash(p)), depth+1)
			} else if fi != nil && fi.IsDir() {
				// A .git directory in the worktree (an old-style
				// submodule): its control files are held, its index
				// is not, and git at the root enters its gitlinks too.
				record(dotGit, filepath.Join(wt, filepath.FromSlash(p)), depth+1)
			}
		}
	}
	record(".git", "", 0)
	return g
}

// gitlinkPaths returns the gitlinks in the index of git directory gitDir
// (workspace-relative), which Lstat saw as index (nil: there is none),
// from the cache while it holds.
func (s *Sandbox) gitlinkPaths(ctx context.Context, ws, gitDir string, index fs.FileInfo) ([]string, error) {
	if index == nil {
		return nil, nil
	}
	key := filepath.Join(ws, gitDir, "index")
	now := s.now()
	s.links.mu.Lock()
	c, ok := s.links.cache[key]
	s.links.mu.Unlock()
	if ok && index.Size() == c.size && index.ModTime().Equal(c.mtime) && c.holds(index) {
		return c.paths, nil
	}
	st, ok := stampOf(index, now)
	paths, err := listGitlinks(ctx, filepath.Join(ws, gitDir))
	if err != nil {
		return nil, err
	}
	if ok {
		s.links.mu.Lock()
		if s.links.cache == nil {
			s.links.cache = map[string]gitlinkCache{}
		}
		s.links.cache[key] = gitlinkCache{stamp: st, size: index.Size(), mtime: index.ModTime(), paths: paths}
		s.links.mu.Unlock()
	}
	return paths, nil
}

// listGitlinks runs git ls-files on the index of git directory gitDir
// (absolute) and returns its gitlinks (mode 160000). git runs with
// none of the user's or toolgate's settings beyond the repository's own
// config, which the sandbox holds read-only: no system or global config,
// no fsmonitor, no hooks; ls-files only reads the index (a split index's
// shared part too, as git status does).
func listGitlinks(ctx context.Context, gitDir string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitlinkListTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitExe(), "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
		"--git-dir="+gitDir, "ls-files", "--stage", "-z")
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
	var paths []string
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
			// An entry no checkout could have made ("../x", "/x"): git
			// at the root makes no submodule of it, so it is no
			// gitlink to look at, and failing the whole listing for
			// it would leave every other one unlooked at.
			continue
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
// the root run a config the run could write: after a run that changed an
// index, every one of its gitlinks' that is not a .git file naming a git
// directory the run held; after one that did not, the same among those
// that appeared or changed. The held submodules' indexes are looked at the
// same way. It returns the absolute paths it took away.
func (c *Cmd) takeGitlinks(root *os.Root, q *quarantine) (removed []string, errs []error) {
	g := c.links
	held := heldConfigs(c.hold)
	var check func(gitDir, wt string, depth int)
	check = func(gitDir, wt string, depth int) {
		r := g.repos[gitDir]
		if r == nil {
			r = &repoLinks{}
		}
		var index fs.FileInfo
		if fi, err := os.Lstat(filepath.Join(c.ws, gitDir, "index")); err == nil {
			index = fi
		}
		changed := !r.known || !sameEntry(r.index, index)
		paths := r.paths
		if changed {
			// An index that cannot be listed now (git fails on it, or
			// times out) may hold gitlinks the run added: the ones
			// known from before the run are looked at as if each had
			// changed, and the error says the rest went unchecked.
			if now, err := g.s.gitlinkPaths(context.Background(), c.ws, gitDir, index); err != nil {
				errs = append(errs, fmt.Errorf("sandbox: after the run: listing the submodules in %s, whose index the run changed, failed, "+
					"so a repository the run put at a submodule's path it added may still be there and run its own config when git "+
					"runs at the root (toolgate took away every one at the submodules it knew of before the run); have the user check "+
					"git ls-files --stage | grep ^160000 before running git there: %w", filepath.Join(c.ws, gitDir), err))
			} else {
				paths = now
			}
		}
		for _, p := range paths {
			dotGit := filepath.Join(wt, filepath.FromSlash(p), ".git")
			at, err := walk(root, dotGit, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("sandbox: after the run: %s: %w", filepath.Join(c.ws, dotGit), err))
				continue
			}
			// Nothing there, or a file or a link on the way: git enters
			// no submodule through a symlink.
			if at.fi == nil || at.rel != dotGit {
				at.dir.Close()
				continue
			}
			sub := ""
			if depth < maxGitlinkDepth && at.fi.Mode().IsRegular() {
				sub = heldGitDir(root, c.ws, dotGit, held)
			}
			switch {
			case sub != "":
				check(sub, filepath.Join(wt, filepath.FromSlash(p)), depth+1)
			case !changed && sameEntry(r.dotGit[dotGit], at.fi):
				if at.fi.IsDir() && depth < maxGitlinkDepth {
					check(dotGit, filepath.Join(wt, filepath.FromSlash(p)), depth+1) // as recordGitlinks
				}
			default:
				if err := q.take(at); err != nil {
					errs = append(errs, fmt.Errorf("sandbox: taking away %s, a repository at a submodule's path: %w", filepath.Join(c.ws, dotGit), err))
				} else {
					removed = append(removed, filepath.Join(c.ws, dotGit))
				}
			}
			at.dir.Close()
		}
	}
	check(".git", "", 0)
	return removed, errs
}

// heldGitDir returns the workspace-relative git directory that the .git
// file dotGit (relative to ws, which root opens) names when it is one
// whose config is among held (absolute paths the run holds read-only):
// one under .git/modules that existed when the run started; ""
// otherwise. The named directory is found as git finds it (the kernel
// resolves the path), and compared by identity.
func heldGitDir(root *os.Root, ws, dotGit string, held []string) string {
	b, err := readFile(root, dotGit, maxGitFile)
	if err != nil {
		return ""
	}
	dir, ok := strings.CutPrefix(string(b), "gitdir:")
	if !ok {
		return ""
	}
	dir = strings.TrimSpace(dir)
	if !filepath.IsAbs(dir) {
		dir = filepath.Dir(filepath.Join(ws, dotGit)) + "/" + dir
	}
	target, err := os.Stat(dir)
	if err != nil || !target.IsDir() {
		return ""
	}
	modules := filepath.Join(ws, ".git", "modules")
	for _, h := range held {
		if filepath.Base(h) != "config" || !Within(modules, h) {
			continue
		}
		if fi, err := os.Stat(filepath.Dir(h)); err == nil && os.SameFile(fi, target) {
			rel, _ := filepath.Rel(ws, filepath.Dir(h))
			return rel
		}
	}
	return ""
}

// heldConfigs returns the paths hold holds read-only.
func heldConfigs(hold []holdPath) []string {
	var out []string
	for _, h := range hold {
		if h.kind == heldRO {
			out = append(out, h.path)
		}
	}
	return out
}

// gitBefore is what Cleanup's check of git's repositories (takeGitlinks,
// takeGitDirs) needs from before a writable run; recorded once, with the
// paths the run holds (protectPaths).
type gitBefore struct {
	links *gitlinks
	slots gitDirSlots
}

// existingFiles returns the regular files among rels (relative to ws), as
// absolute paths: the ones of them a run's mounts hold.
func existingFiles(ws string, rels []string) []string {
	var out []string
	for _, rel := range rels {
		if fi, err := os.Lstat(filepath.Join(ws, rel)); err == nil && fi.Mode().IsRegular() {
			out = append(out, filepath.Join(ws, rel))
		}
	}
	return out
}

// gitlinkGitDirs returns the control files (GitControl) of each gitlink's
// .git that is a directory in the worktree (an old-style submodule, or git
// init sub && git add sub on the host), workspace-relative, for the run to
// hold read-only: git at the root enters it and runs its config, which is
// the user's, so a run must not write it. The gitlinks are g's (nil: none).
// A .git reached through a link is left out: git enters no submodule
// through one.
func gitlinkGitDirs(g *gitlinks, ws string) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, r := range g.repos {
		for dotGit, fi := range r.dotGit {
			abs := filepath.Join(ws, dotGit)
			if fi == nil || !fi.IsDir() || dotGit == ".git" {
				continue
			}
			if real, err := filepath.EvalSymlinks(abs); err != nil || real != abs {
				continue
			}
			out = append(out, gitPaths(dotGit, GitControl)...)
		}
	}
	return out
}

// gitDirSlots are the names in each directory under .git where git finds
// other git directories (see gitControlPaths), by workspace-relative
// path, before a writable run; nil names for one that did not exist.
//
// A git directory the run makes in one (git init
// --separate-git-dir=.git/modules/evil) has a config the run wrote; at
// the next run it exists, so the sandbox holds it, and a .git file naming
// it would pass as a submodule the user added (heldGitDir). So whatever
// appears in a slot during a writable run is taken away like a protected
// path that appeared: a submodule or a linked worktree is added on the
// host, not by an agent.
type gitDirSlots map[string]map[string]bool

// gitDirSlotsOf lists the slots rels (gitControlPaths) of the workspace
// ws's .git before a writable run.
func gitDirSlotsOf(ws string, rels []string) (gitDirSlots, error) {
	slots := gitDirSlots{}
	for _, rel := range rels {
		des, err := os.ReadDir(filepath.Join(ws, rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			slots[rel] = nil
			continue
		case err != nil:
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		names := make(map[string]bool, len(des))
		for _, de := range des {
			names[de.Name()] = true
		}
		slots[rel] = names
	}
	return slots, nil
}

// takeGitDirs takes away, into q, what appeared in a slot during the run:
// a slot that did not exist, or each new name in one that did. It
// returns the absolute paths it took away.
func (c *Cmd) takeGitDirs(root *os.Root, q *quarantine) (removed []string, errs []error) {
	// Sorted, a slot comes before the slots under it: one taken away
	// whole takes those with it.
	for _, rel := range slices.Sorted(maps.Keys(c.slots)) {
		before := c.slots[rel]
		var news []string
		if before == nil {
			news = []string{rel}
		} else {
			names, err := readNames(root, rel)
			if err != nil {
				errs = append(errs, fmt.Errorf("sandbox: after the run: %s: %w", filepath.Join(c.ws, rel), err))
			}
			for _, n := range names {
				if !before[n] {
					news = append(news, filepath.Join(rel, n))
				}
			}
			slices.Sort(news)
		}
		for _, p := range news {
			at, err := walk(root, p, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("sandbox: after the run: %s: %w", filepath.Join(c.ws, p), err))
				continue
			}
			if at.fi != nil && at.rel == p {
				if err := q.take(at); err != nil {
					errs = append(errs, fmt.Errorf("sandbox: taking away %s, which appeared during the run where git finds "+
						"submodules' and worktrees' git directories: %w", filepath.Join(c.ws, p), err))
				} else {
					removed = append(removed, filepath.Join(c.ws, p))
				}
			}
			at.dir.Close()
		}
	}
	return removed, errs
}

// readNames returns the names in directory rel, reached without following
// a link; none when it is missing, or a link or a file is on the way.
func readNames(root *os.Root, rel string) ([]string, error) {
	at, err := walk(root, rel, true)
	if err != nil {
		return nil, err
	}
	defer at.dir.Close()
	if at.fi == nil || at.rel != rel || !at.fi.IsDir() {
		return nil, nil
	}
	sub, err := openDir(at.dir, at.name, at.fi)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	f, err := sub.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
