package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoFixture is a fixture whose workspace is a real git repository with
// one commit, and a sandbox over it with the default protected paths.
func repoFixture(t *testing.T, hide ...string) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed: %v", err)
	}
	f := newFixture(t)
	if err := os.RemoveAll(filepath.Join(f.ws, ".git")); err != nil {
		t.Fatal(err)
	}
	f.git(t, "init", "-q")
	f.git(t, "add", "-A")
	f.git(t, "commit", "-q", "-m", "first")
	f.sb = newSandbox(t, Options{
		Bwrap:     f.sb.o.Bwrap,
		Workspace: f.ws,
		Home:      f.home,
		Hide:      hide,
		Protect:   DefaultProtect,
		Env: []string{"PATH=/usr/bin:/bin", "HOME=" + f.home, "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com",
			"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com"},
	})
	return f
}

// git runs git in the workspace outside the sandbox, as the user would.
func (f *fixture) git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := f.gitTry(args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (f *fixture) gitTry(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = f.ws
	cmd.Env = append(os.Environ(), "HOME="+f.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=u", "GIT_AUTHOR_EMAIL=u@example.com",
		"GIT_COMMITTER_NAME=u", "GIT_COMMITTER_EMAIL=u@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// evilGitDir is a script that makes evil/ a git directory whose config
// runs a command (core.fsmonitor) that creates marker, on the user's next
// git status.
func evilGitDir(marker string) string {
	return `mkdir -p evil && cp -r .git/objects .git/refs .git/HEAD evil/ && ` +
		`printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = "touch ` + marker + `; false"\n' > evil/config`
}

// TestGitRedirectionsHeld (F2): a run cannot point git at a config or
// hooks of its own through the files that tell git where they are:
// .git/commondir, .git/config.worktree, a linked worktree's commondir, a
// submodule's git directory. After each attack, the user's git status
// runs nothing, and git in the sandbox still adds and commits.
func TestGitRedirectionsHeld(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "PWNED")
	for _, tc := range []struct{ name, script string }{
		{"commondir", evilGitDir(marker) + ` && printf '../evil\n' > .git/commondir`},
		{"commondir by rename", evilGitDir(marker) + ` && printf '../evil\n' > c && mv c .git/commondir`},
		{"config.worktree", `printf '[core]\n\tfsmonitor = "touch ` + marker + `; false"\n' > .git/config.worktree`},
		{"a linked worktree's commondir", evilGitDir(marker) + ` && printf "$PWD/evil\n" > .git/worktrees/wt/commondir`},
		{"a submodule's config", `printf '[core]\n\tfsmonitor = "touch ` + marker + `; false"\n' >> .git/modules/libs/ui/config`},
		{"a submodule's hook", `printf '#!/bin/sh\ntouch ` + marker + `\n' > .git/modules/libs/ui/hooks/post-checkout`},
		{"a submodule's git directory renamed", `mv .git/modules/libs/ui .git/modules/libs/ui2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(marker)
			f := repoFixture(t)
			// A submodule's git directory and a linked worktree's, as
			// git makes them (the worktree itself lies outside).
			f.git(t, "clone", "-q", "--bare", ".", ".git/modules/libs/ui")
			wt := filepath.Join(filepath.Dir(f.ws), "wt")
			f.git(t, "worktree", "add", "-q", wt)
			wtCommondir := filepath.Join(f.ws, ".git", "worktrees", "wt", "commondir")
			wtBefore, err := os.ReadFile(wtCommondir)
			if err != nil {
				t.Fatal(err)
			}

			out, _ := f.run(t, WorkspaceWrite, tc.script)
			for _, p := range []string{".git/commondir", ".git/config.worktree"} {
				if _, err := os.Lstat(filepath.Join(f.ws, p)); err == nil {
					t.Errorf("%s exists after the run (output: %s)", p, out)
				}
			}
			if b, _ := os.ReadFile(wtCommondir); string(b) != string(wtBefore) {
				t.Errorf("the linked worktree's commondir is now %q", b)
			}
			if got := strings.TrimSpace(f.git(t, "rev-parse", "--git-common-dir")); got != ".git" {
				t.Errorf("git's common directory is now %q", got)
			}
			f.git(t, "status")
			f.git(t, "-C", wt, "status")
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the user's git ran a command the sandboxed run planted")
			}
			if out, err := f.gitTry("--git-dir", ".git/modules/libs/ui", "config", "core.fsmonitor"); err == nil {
				t.Errorf("the submodule's config sets core.fsmonitor: %s", out)
			}
			for _, p := range []string{".git/modules/libs/ui/HEAD", ".git/modules/libs/ui/hooks/post-checkout"} {
				_, err := os.Stat(filepath.Join(f.ws, p))
				if exists := err == nil; exists != strings.HasSuffix(p, "HEAD") {
					t.Errorf("%s: exists %v after the run", p, exists)
				}
			}
			// git still works in the sandbox.
			out, code := f.run(t, WorkspaceWrite, "rm -rf evil c; echo y > main.txt && git add -A && git commit -q -m second && git log --format=%s -1")
			if code != 0 || !strings.Contains(out, "second") {
				t.Fatalf("git add and commit in workspace-write: exit %d\n%s", code, out)
			}
		})
	}
}

// TestHooksPathHeld (F6): the directory core.hooksPath names in the
// repository's config is held read-only like .git/hooks: husky's .husky,
// and with husky 9's .husky/_ the .husky its scripts run.
func TestHooksPathHeld(t *testing.T) {
	for _, hooksPath := range []string{".husky", ".husky/_", "tools/githooks"} {
		t.Run(hooksPath, func(t *testing.T) {
			f := repoFixture(t)
			marker := filepath.Join(t.TempDir(), "PWNED")
			if err := os.MkdirAll(filepath.Join(f.ws, hooksPath), 0o755); err != nil {
				t.Fatal(err)
			}
			f.git(t, "config", "core.hooksPath", hooksPath)
			hook := filepath.Join(strings.TrimSuffix(hooksPath, "/_"), "pre-commit")
			out, code := f.run(t, WorkspaceWrite, "printf '#!/bin/sh\\ntouch "+marker+"\\n' > "+hook+" && chmod +x "+hook)
			if code == 0 {
				t.Errorf("a run wrote the hook %s:\n%s", hook, out)
			}
			if out, code := f.run(t, WorkspaceWrite, "mv "+strings.Split(hooksPath, "/")[0]+" moved"); code == 0 {
				t.Errorf("a run renamed the hooks directory away:\n%s", out)
			}
			f.git(t, "commit", "-q", "--allow-empty", "-m", "user")
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the user's git commit ran a hook the sandboxed run wrote")
			}
			// The rest of the workspace stays writable.
			if out, code := f.run(t, WorkspaceWrite, "echo x > other.txt"); code != 0 {
				t.Fatalf("an ordinary write failed: %s", out)
			}
		})
	}
}

// TestAgentSettingsHeld (F6): the settings of every agent and editor the
// rule pack knows (AgentSettings) stay out of a run's reach: an existing
// directory is read-only, and one a run creates is removed after it.
func TestAgentSettingsHeld(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(filepath.Join(f.ws, ".gemini"), 0o755); err != nil {
		t.Fatal(err)
	}
	mcp := `{"mcpServers":{"x":{"command":"touch","args":["/tmp/pwned"]}}}`
	if out, code := f.run(t, WorkspaceWrite, "echo '"+mcp+"' > .gemini/settings.json"); code == 0 {
		t.Errorf("a run wrote into the existing .gemini:\n%s", out)
	}
	f.run(t, WorkspaceWrite, "for d in .roo .amazonq .zed .codex .continue .windsurf; do mkdir -p $d && echo '"+mcp+"' > $d/mcp.json; done; "+
		"echo x > .clinerules; echo x > .aider.conf.yml")
	for _, p := range []string{".gemini/settings.json", ".roo", ".amazonq", ".zed", ".codex", ".continue", ".windsurf", ".clinerules", ".aider.conf.yml"} {
		if _, err := os.Lstat(filepath.Join(f.ws, p)); err == nil {
			t.Errorf("%s survived the run", p)
		}
	}
	for _, p := range []string{".gemini/settings.json", ".roo/mcp.json", ".amazonq/mcp.json", ".zed/settings.json", ".clinerules",
		".git/commondir", ".git/modules/libs/ui/config", ".git/modules/a/modules/b/hooks/pre-commit", ".git/worktrees/wt/commondir"} {
		if !f.sb.Protected(p) {
			t.Errorf("Protected(%q) = false: write_file would not refuse it", p)
		}
	}
}

// TestHiddenInWorkspaceStaysHidden (F4): a sandbox.hide path inside the
// workspace cannot be moved out from under its mask by renaming a
// directory above it, and the file tools' check (Hidden) knows it by
// identity under another name: a hard link, or a directory renamed
// outside the sandbox.
func TestHiddenInWorkspaceStaysHidden(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(f.ws, "conf", "deep", "prod.secret")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, secret, "HIDDEN-IN-WS-SECRET")
	keys := filepath.Join(f.ws, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(keys, "k"), "HIDDEN-KEY")
	f.sb = newSandbox(t, Options{Bwrap: f.sb.o.Bwrap, Workspace: f.ws, Home: f.home, Hide: []string{secret, keys}, Protect: DefaultProtect,
		Env: []string{"PATH=/usr/bin:/bin"}})
	for _, script := range []string{"mv conf conf2", "mv conf/deep conf/deep2", "cp -a conf conf3 && cat conf3/deep/prod.secret", "ln conf/deep/prod.secret l", "mv keys keys2"} {
		f.run(t, WorkspaceWrite, script)
	}
	out, _ := f.run(t, ReadOnly, "cat conf2/deep/prod.secret conf/deep2/prod.secret conf3/deep/prod.secret l conf/deep/prod.secret keys2/k 2>&1")
	if strings.Contains(out, "HIDDEN-IN-WS-SECRET") || strings.Contains(out, "HIDDEN-KEY") {
		t.Fatalf("the hidden file was read after a rename:\n%s", out)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "HIDDEN-IN-WS-SECRET" {
		t.Fatalf("the hidden file moved: %q %v", b, err)
	}
	// Other names for it, made outside any sandbox.
	if err := os.Link(secret, filepath.Join(f.ws, "hardlink")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"conf", "keys"} {
		if err := os.Rename(filepath.Join(f.ws, d), filepath.Join(f.ws, d+"-renamed")); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"hardlink", "conf-renamed/deep/prod.secret", "keys-renamed", "keys-renamed/k"} {
		if !f.sb.Hidden(filepath.Join(f.ws, p)) {
			t.Errorf("Hidden(%s) = false", p)
		}
	}
	if f.sb.Hidden(filepath.Join(f.ws, "main.txt")) {
		t.Error("Hidden(main.txt) = true")
	}
}

// TestProtectedLeavesOrdinaryPaths: Protected names no path git must write.
func TestProtectedLeavesOrdinaryPaths(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"main.txt", ".git/HEAD", ".git/index", ".git/modules/ui/HEAD", ".git/modules/ui/index",
		".git/worktrees/wt/HEAD", ".git/objects/ab/cd", ".gitignore", "src/config"} {
		if f.sb.Protected(p) {
			t.Errorf("Protected(%q) = true", p)
		}
	}
}

// TestUnreadableGitConfigRefusesRun: when git cannot read the repository's
// config, toolgate cannot tell where its hooks live, so a writable run
// does not start rather than run with the hooks unprotected.
func TestUnreadableGitConfigRefusesRun(t *testing.T) {
	f := repoFixture(t)
	if err := os.WriteFile(filepath.Join(f.ws, ".git", "config"), []byte("[core\nhooksPath = .husky\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"/bin/true"})
	if err == nil || !strings.Contains(err.Error(), "core.hooksPath") {
		t.Fatalf("a run with an unreadable git config: %v, want it refused naming core.hooksPath", err)
	}
}
