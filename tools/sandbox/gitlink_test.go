package sandbox

import (
	"bytes"
	"crypto/sha1"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ranCleaned runs script with sh in workspace-write, then Cleanup, and
// returns the command (for its Quarantine) and what Cleanup took away.
func (f *fixture) ranCleaned(t *testing.T, script string) (*Cmd, []string) {
	t.Helper()
	c := ranIn(t, f.sb, f.ws, script)
	c.Kill()
	removed, err := c.Cleanup()
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	return c, removed
}

// userStatus runs git status at the workspace's root as the user's shell
// server does (outside the sandbox, with toolgate's command-line config),
// and then as the user's terminal does, and reports whether either ran the
// filter that touches marker.
func (f *fixture) userStatus(t *testing.T, marker string) bool {
	t.Helper()
	server := []string{"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=diff.ignoreSubmodules", "GIT_CONFIG_VALUE_0=all",
		"GIT_CONFIG_KEY_1=core.fsmonitor", "GIT_CONFIG_VALUE_1=false"}
	for _, extra := range [][]string{server, nil} {
		cmd := exec.Command("git", "status", "--short")
		cmd.Dir = f.ws
		cmd.Env = append(append(os.Environ(), "HOME="+f.home, "GIT_CONFIG_NOSYSTEM=1"), extra...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git status: %v\n%s", err, out)
		}
	}
	_, err := os.Lstat(marker)
	return err == nil
}

// gitmodules asks git at the root to enter submodule lib whatever
// diff.ignoreSubmodules says.
const gitmodules = `[submodule "lib"]\n\tpath = lib\n\turl = ./lib\n\tignore = none\n`

// plantFilter is a script that gives the git directory at gitdir a filter
// that touches marker, and changes lib/R so git status runs it.
func plantFilter(gitdir, marker string) string { return plantFilterIn("lib", gitdir, marker) }

// plantFilterIn is plantFilter for the submodule at path sub.
func plantFilterIn(sub, gitdir, marker string) string {
	return `printf '[filter "x"]\n\tclean = touch ` + marker + ` && cat\n' >> ` + gitdir + `/config && ` +
		`echo 'R filter=x' > ` + sub + `/.gitattributes && echo s > ` + sub + `/R`
}

// TestGitlinkRepositoryTakenAway: a run that puts a repository of its own
// at a submodule's path (git add of a nested repository, one made with
// --separate-git-dir, or a .git at a gitlink the user's index already
// had) loses its .git to the quarantine, and the user's git status at the
// root runs none of its config. Without takeGitlinks, that git status
// runs the filter in every case.
func TestGitlinkRepositoryTakenAway(t *testing.T) {
	// A worktree .gitmodules the run makes is taken away (Persistence):
	// the run puts one in the index, which git reads when the file is
	// missing.
	indexModules := `git add lib 2>/dev/null && oid=$(printf '` + gitmodules + `' | git hash-object -w --stdin) && ` +
		`git update-index --add --cacheinfo 100644,$oid,.gitmodules && `
	cases := []struct {
		name, setup, script, gitdir string
	}{
		{"separate git dir", "", `git init -q --separate-git-dir=gd lib && ` + initLib + indexModules, "gd"},
		{"nested repository", "", `git init -q lib && ` + initLib + indexModules, "lib/.git"},
		// The user's own submodule entry, not checked out: the run
		// leaves the index alone.
		{"gitlink already in the index", "lib", `git init -q lib && ` + initLib, "lib/.git"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := repoFixture(t)
			marker := filepath.Join(filepath.Dir(f.ws), "ran")
			if tc.setup != "" {
				f.userGitlink(t, tc.setup)
			}
			c, removed := f.ranCleaned(t, tc.script+plantFilter(tc.gitdir, marker))
			dotGit := filepath.Join(f.ws, "lib", ".git")
			if !slices.Contains(removed, dotGit) {
				t.Errorf("Cleanup took away %q, want %s among them", removed, dotGit)
			}
			if _, err := os.Lstat(dotGit); err == nil {
				t.Errorf("%s is still in place", dotGit)
			}
			if _, err := os.Lstat(filepath.Join(c.Quarantine, "lib", "dot-git")); err != nil {
				t.Errorf("lib/.git is not kept in the quarantine: %v", err)
			}
			if f.userStatus(t, marker) {
				t.Error("the user's git status at the root ran the filter the run planted in a submodule")
			}
		})
	}
}

// userGitlink commits a gitlink at sub, not checked out, and a
// .gitmodules that asks git at the root to enter it.
func (f *fixture) userGitlink(t *testing.T, sub string) {
	t.Helper()
	write(t, filepath.Join(f.ws, ".gitmodules"), strings.ReplaceAll(strings.ReplaceAll(gitmodules, `\n`, "\n"), `\t`, "\t"))
	f.git(t, "add", ".gitmodules")
	f.git(t, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("a", 40)+","+sub)
	f.git(t, "commit", "-q", "-m", "gitlink")
}

// userSubmodule makes lib a submodule the user added: a .git file naming
// .git/modules/lib.
func (f *fixture) userSubmodule(t *testing.T) {
	t.Helper()
	src := filepath.Join(filepath.Dir(f.ws), "src")
	for _, args := range [][]string{{"init", "-q", src}, {"-C", src, "commit", "-q", "--allow-empty", "-m", "s"},
		{"-c", "protocol.file.allow=always", "submodule", "add", "-q", src, "lib"}, {"commit", "-q", "-m", "submodule"}} {
		f.git(t, args...)
	}
}

// TestGitlinkInSubmoduleTakenAway: a repository a run adds to the index
// of the user's submodule (.git/modules/lib/index, writable like the
// root's) loses its .git: git status at the root enters the submodule,
// and from it the repository.
func TestGitlinkInSubmoduleTakenAway(t *testing.T) {
	f := repoFixture(t)
	f.userSubmodule(t)
	marker := filepath.Join(filepath.Dir(f.ws), "ran")
	_, removed := f.ranCleaned(t, `cd lib && git init -q evil && (cd evil && echo r > R && git add R && git commit -qm r) && `+
		`git add evil 2>/dev/null && cd .. && `+plantFilterIn("lib/evil", "lib/evil/.git", marker))
	if want := []string{filepath.Join(f.ws, "lib", "evil", ".git")}; !slices.Equal(removed, want) {
		t.Errorf("Cleanup took away %q, want %q", removed, want)
	}
	if f.userStatus(t, marker) {
		t.Error("the user's git status at the root ran the filter the run planted in a submodule's submodule")
	}
	if _, err := os.Lstat(filepath.Join(f.ws, "lib", ".git")); err != nil {
		t.Errorf("the user's submodule lost its .git: %v", err)
	}
}

// TestGitlinkProperSubmoduleKept: a submodule the user added (a .git file
// naming its git directory under .git/modules) stays checked out through
// runs that change the index, and git in the sandbox still works with it;
// one a run makes has a git directory the run wrote, so its .git goes.
func TestGitlinkProperSubmoduleKept(t *testing.T) {
	f := repoFixture(t)
	f.userSubmodule(t)
	c, removed := f.ranCleaned(t, `echo y > new && git add new && git -C lib status --short`)
	if len(removed) != 0 || c.Quarantine != "" {
		t.Errorf("Cleanup took away %q from a run that only added a file", removed)
	}
	if b, err := os.ReadFile(filepath.Join(f.ws, "lib", ".git")); err != nil || !strings.Contains(string(b), ".git/modules/lib") {
		t.Errorf("lib/.git = %q, %v; want the user's submodule left in place", b, err)
	}
	// A git directory the run made under .git/modules (git submodule
	// add cannot write .git/config in the sandbox, but git init can put
	// one there) did not exist when it started: its config was the
	// run's to write. Both go.
	_, removed = f.ranCleaned(t, `git init -q --separate-git-dir=.git/modules/lib2 lib2 && `+
		`git -C lib2 commit -q --allow-empty -m s && git add lib2 2>/dev/null`)
	if want := []string{filepath.Join(f.ws, ".git", "modules", "lib2"), filepath.Join(f.ws, "lib2", ".git")}; !slices.Equal(removed, want) {
		t.Errorf("Cleanup took away %q, want %q", removed, want)
	}
	if _, err := os.Lstat(filepath.Join(f.ws, "lib", ".git")); err != nil {
		t.Errorf("the user's submodule lost its .git: %v", err)
	}
}

// initLib is a script that commits a file in the repository at lib.
const initLib = `(cd lib && echo r > R && git add R && git commit -qm r) && `

// TestGitlinkListingFailsClosed: an index entry no checkout could make
// ("../x", written into the index with its checksum redone) does not stop
// the look at the other gitlinks, and an index git cannot read after the
// run still costs the run every repository at the gitlinks known before
// it, with an error that says the check failed. Without either, the
// planted lib/.git stayed.
func TestGitlinkListingFailsClosed(t *testing.T) {
	t.Run("gitlink leaving the workspace", func(t *testing.T) {
		f := repoFixture(t)
		f.userGitlink(t, "lib")
		f.git(t, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("a", 40)+",.-/x")
		index := filepath.Join(f.ws, ".git", "index")
		b, err := os.ReadFile(index)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b[:len(b)-sha1.Size], []byte(".-/x"), []byte("../x"), 1)
		sum := sha1.Sum(b)
		write(t, index, string(append(b, sum[:]...)))
		marker := filepath.Join(filepath.Dir(f.ws), "ran")
		_, removed := f.ranCleaned(t, `git init -q lib && `+initLib+plantFilter("lib/.git", marker))
		if want := []string{filepath.Join(f.ws, "lib", ".git")}; !slices.Equal(removed, want) {
			t.Errorf("Cleanup took away %q, want %q", removed, want)
		}
		if f.userStatus(t, marker) {
			t.Error("the user's git status at the root ran the filter the run planted in a submodule")
		}
	})
	t.Run("index git cannot read", func(t *testing.T) {
		f := repoFixture(t)
		f.userGitlink(t, "lib")
		c := ranIn(t, f.sb, f.ws, `git init -q lib && `+initLib+`printf XXXX | dd of=.git/index conv=notrunc 2>/dev/null`)
		c.Kill()
		removed, err := c.Cleanup()
		if err == nil || !strings.Contains(err.Error(), "listing the submodules") {
			t.Errorf("Cleanup: %v, want the failed listing reported", err)
		}
		if want := []string{filepath.Join(f.ws, "lib", ".git")}; !slices.Equal(removed, want) {
			t.Errorf("Cleanup took away %q, want %q", removed, want)
		}
	})
}

// TestGitDirMadeUnderModulesTakenAway: a git directory a run makes under
// .git/modules (or a nested submodule's modules/, or .git/worktrees) goes
// to the quarantine with it, so a later run cannot point a .git file at
// it as at a submodule the user added: the sandbox would hold the config
// the first run wrote, and take it for the user's. Without takeGitDirs,
// the second run's restored lib/.git stayed and the user's git status ran
// the first run's filter.
func TestGitDirMadeUnderModulesTakenAway(t *testing.T) {
	f := repoFixture(t)
	f.userSubmodule(t)
	marker := filepath.Join(filepath.Dir(f.ws), "ran")
	_, removed := f.ranCleaned(t, `mkdir -p .git/modules/lib/modules/inner .git/worktrees/w && `+
		`git init -q --separate-git-dir=.git/modules/evil x && (cd x && echo r > R && git add R && git commit -qm r) && `+
		`git add x && mkdir t && cp x/.git t/ && `+plantFilterIn("x", ".git/modules/evil", marker))
	for _, p := range []string{".git/modules/evil", ".git/modules/lib/modules", ".git/worktrees"} {
		if !slices.Contains(removed, filepath.Join(f.ws, p)) {
			t.Errorf("Cleanup took away %q, want %s among them", removed, p)
		}
	}
	_, removed = f.ranCleaned(t, `cp -a t/. x/`)
	if want := []string{filepath.Join(f.ws, "x", ".git")}; !slices.Equal(removed, want) {
		t.Errorf("the second run: Cleanup took away %q, want %q", removed, want)
	}
	if f.userStatus(t, marker) {
		t.Error("the user's git status at the root ran the filter a run planted in a git directory under .git/modules")
	}
}

// TestGitlinkGitDirectoryHeld: the config, hooks and attributes of a
// repository the user has at a gitlink, its .git a directory in the
// worktree (git init lib && git add lib on the host, an old-style
// submodule), stay read-only in a run, which leaves the index alone: git
// at the root enters it, .gitmodules asking for it. Without the hold, the
// run's filter sat in lib/.git/config, whose directory's Lstat did not
// change, and the user's git status ran it.
func TestGitlinkGitDirectoryHeld(t *testing.T) {
	f := repoFixture(t)
	f.oldStyleLib(t)
	write(t, filepath.Join(f.ws, ".gitmodules"), strings.ReplaceAll(strings.ReplaceAll(gitmodules, `\n`, "\n"), `\t`, "\t"))
	f.git(t, "add", ".gitmodules", "lib")
	f.git(t, "commit", "-q", "-m", "lib")
	config, err := os.ReadFile(filepath.Join(f.ws, "lib", ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(filepath.Dir(f.ws), "ran")
	_, removed := f.ranCleaned(t, `printf '[core]\n\tfsmonitor = "touch `+marker+`; false"\n' >> lib/.git/config; `+
		`printf '* filter=x\n' >> lib/.git/info/attributes; mkdir -p lib/.git/hooks; echo 'touch `+marker+`' > lib/.git/hooks/post-index-change; `+
		plantFilter("lib/.git", marker)+`; true`)
	if b, _ := os.ReadFile(filepath.Join(f.ws, "lib", ".git", "config")); string(b) != string(config) {
		t.Errorf("the run changed lib/.git/config to:\n%s", b)
	}
	if want := []string{filepath.Join(f.ws, "lib", ".git", "info", "attributes")}; !slices.Equal(removed, want) {
		t.Errorf("Cleanup took away %q, want %q", removed, want)
	}
	if f.userStatus(t, marker) {
		t.Error("the user's git status at the root ran what a run wrote into the config of the repository at a gitlink")
	}
	if _, err := os.Lstat(filepath.Join(f.ws, "lib", ".git", "HEAD")); err != nil {
		t.Errorf("the user's repository at lib lost its .git: %v", err)
	}
}

// TestGitlinkInOldStyleSubmoduleTakenAway: the index of a repository the
// user has at a gitlink as a .git directory (an old-style submodule) is
// writable; a run that adds a gitlink of its own there, with a nested
// repository at it, loses that repository's .git, and the user's git
// status at the root, which enters lib and then lib/inner, runs nothing.
func TestGitlinkInOldStyleSubmoduleTakenAway(t *testing.T) {
	f := repoFixture(t)
	f.oldStyleLib(t)
	f.git(t, "add", "lib")
	f.git(t, "commit", "-q", "-m", "lib")
	marker := filepath.Join(filepath.Dir(f.ws), "ran")
	// The gitlink goes in through a copy of lib's index written back in
	// place, so neither lib/.git nor the root's index changes.
	_, removed := f.ranCleaned(t, `set -e; git init -q lib/inner; echo i > lib/inner/R; `+
		`git -C lib/inner add R; git -C lib/inner -c user.name=u -c user.email=u@x commit -qm i; `+
		`printf '[core]\n\tfsmonitor = "touch `+marker+`; false"\n' >> lib/inner/.git/config; `+
		`cp lib/.git/index /tmp/ix; GIT_INDEX_FILE=/tmp/ix git -C lib update-index --add --cacheinfo 160000,$(git -C lib/inner rev-parse HEAD),inner; `+
		`cat /tmp/ix > lib/.git/index`)
	if want := []string{filepath.Join(f.ws, "lib", "inner", ".git")}; !slices.Equal(removed, want) {
		t.Errorf("Cleanup took away %q, want %q", removed, want)
	}
	if f.userStatus(t, marker) {
		t.Error("the user's git status at the root ran the config of a repository a run put at a gitlink of lib's index")
	}
}

// oldStyleLib makes lib a repository with one commit, its .git a directory
// in its worktree, for the caller to add at the root as a gitlink.
func (f *fixture) oldStyleLib(t *testing.T) {
	t.Helper()
	f.git(t, "init", "-q", "lib")
	write(t, filepath.Join(f.ws, "lib", "R"), "r\n")
	f.git(t, "-C", "lib", "add", "R")
	f.git(t, "-C", "lib", "commit", "-q", "-m", "r")
}
