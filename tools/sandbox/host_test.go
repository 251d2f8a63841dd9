package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/tools/sandbox/sandboxtest"
)

// hostFixture is a workspace with no repository, with the default protected
// paths, next to another project's git directory outside it that no run
// may change through toolgate.
type hostFixture struct {
	ws, other string
	sb        *Sandbox
}

func newHostFixture(t *testing.T) *hostFixture {
	t.Helper()
	bwrap, base := bwrapAndBase(t)
	f := &hostFixture{ws: filepath.Join(base, "ws"), other: filepath.Join(base, "other", ".git")}
	for _, d := range []string{f.ws, filepath.Join(f.other, "hooks"), filepath.Join(f.other, "info")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(f.other, "config"), "[core]\n")
	write(t, filepath.Join(f.other, "hooks", "pre-commit"), "#!/bin/sh\n")
	write(t, filepath.Join(f.other, "info", "attributes"), "* text\n")
	f.sb = newSandbox(t, Options{Bwrap: bwrap, Workspace: f.ws, Home: filepath.Join(base, "home"), Protect: DefaultProtect,
		Env: []string{"PATH=/usr/bin:/bin"}})
	// A test that fails may leave directories without their write bit.
	t.Cleanup(func() { _ = exec.Command("chmod", "-R", "u+rwx", base).Run() })
	return f
}

// runClean runs script in workspace-write, then Cleanup, and returns what
// Cleanup removed (relative to the workspace, sorted) and its error.
func (f *hostFixture) runClean(t *testing.T, script string) ([]string, error) {
	t.Helper()
	removed, err := f.ran(t, script).Cleanup()
	for i, p := range removed {
		var rerr error
		if removed[i], rerr = filepath.Rel(f.ws, p); rerr != nil {
			t.Fatal(rerr)
		}
	}
	slices.Sort(removed)
	return removed, err
}

// ran runs script in workspace-write and returns the command, which
// exited 0, for Cleanup.
func (f *hostFixture) ran(t *testing.T, script string) *Cmd { return ranIn(t, f.sb, f.ws, script) }

// ranIn runs script with sh in workspace-write in ws and returns the
// command, which exited 0, for Cleanup.
func ranIn(t *testing.T, sb *Sandbox, ws, script string) *Cmd {
	t.Helper()
	c, err := sb.Command(t.Context(), WorkspaceWrite, ws, []string{"/bin/sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	return c
}

// TestCleanupStaysInWorkspace: a run that replaces a directory on the way
// to a watched protected path with a symlink out of the workspace makes
// Cleanup remove the link, never what it points to (toolgate used to delete
// another project's git config and hooks, or ~/.kube/config, this way).
func TestCleanupStaysInWorkspace(t *testing.T) {
	for _, tc := range []struct {
		name, setup, script string
		want                []string // what Cleanup removes
	}{
		{"a symlinked .git where there was none", "", "ln -s OTHER .git", []string{".git"}},
		{"a relative symlinked .git", "", "ln -s ../other/.git .git", []string{".git"}},
		{"a symlinked .git/info in a repository", "mkdir -p .git/hooks .git/info && echo '[core]' > .git/config",
			"rm -r .git/info && ln -s OTHER/info .git/info", []string{filepath.Join(".git", "info")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFixture(t)
			if tc.setup != "" {
				if out, err := exec.Command("/bin/sh", "-c", "cd "+f.ws+" && "+tc.setup).CombinedOutput(); err != nil {
					t.Fatalf("%v %s", err, out)
				}
			}
			before := sandboxtest.Tree(t, filepath.Dir(f.other))
			removed, err := f.runClean(t, strings.ReplaceAll(tc.script, "OTHER", f.other))
			if err != nil {
				t.Errorf("Cleanup: %v", err)
			}
			if !slices.Equal(removed, tc.want) {
				t.Errorf("Cleanup removed %q, want %q", removed, tc.want)
			}
			if after := sandboxtest.Tree(t, filepath.Dir(f.other)); !slices.Equal(after, before) {
				t.Errorf("a directory outside the workspace changed:\nbefore %q\nafter  %q", before, after)
			}
			// The next run starts, and changes nothing outside either.
			if _, err := f.runClean(t, "echo ok > ok.txt"); err != nil {
				t.Errorf("Cleanup after a plain run: %v", err)
			}
			if after := sandboxtest.Tree(t, filepath.Dir(f.other)); !slices.Equal(after, before) {
				t.Errorf("the next run changed a directory outside the workspace:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestProtectRefusesSymlinkedParent: a .git that is a symlink when a run
// starts makes the run refuse to start, and toolgate creates nothing where
// it points (it used to create .git/hooks there through the link).
func TestProtectRefusesSymlinkedParent(t *testing.T) {
	f := newHostFixture(t)
	if err := os.RemoveAll(filepath.Join(f.other, "hooks")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.other, filepath.Join(f.ws, ".git")); err != nil {
		t.Fatal(err)
	}
	before := sandboxtest.Tree(t, filepath.Dir(f.other))
	_, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"true"})
	if err == nil || !strings.Contains(err.Error(), ".git is a symlink") {
		t.Errorf("a run with a symlinked .git: err %v, want a refusal naming .git", err)
	}
	if after := sandboxtest.Tree(t, filepath.Dir(f.other)); !slices.Equal(after, before) {
		t.Errorf("a directory outside the workspace changed:\nbefore %q\nafter  %q", before, after)
	}
	// Read-only runs hold nothing, and still run.
	if _, err := f.sb.Command(t.Context(), ReadOnly, f.ws, []string{"true"}); err != nil {
		t.Errorf("read-only: %v", err)
	}
}

// TestCleanupRemovesGitCreatedByRun: where the workspace has no .git, a run
// cannot leave one: a .git file naming a git directory of the run's making
// ("gitdir: evil", whose config runs commands on the user's next git
// status), a .git directory (whose commondir does the same), or a link.
func TestCleanupRemovesGitCreatedByRun(t *testing.T) {
	evil := `mkdir -p evil/objects evil/refs && echo 'ref: refs/heads/main' > evil/HEAD && printf '[core]\n\tfsmonitor = "touch MARKER; false"\n' > evil/config && `
	for _, tc := range []struct{ name, script string }{
		{".git file", evil + "echo 'gitdir: evil' > .git"},
		{".git directory", evil + "mkdir -p .git/objects .git/refs && cp evil/HEAD .git/ && echo ../evil > .git/commondir"},
		{".git directory made by git init", "git init -q 2>/dev/null || mkdir -p .git/hooks; echo '[alias] x = !evil' >> .git/config"},
		{".git link inside the workspace", evil + "ln -s evil .git"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFixture(t)
			marker := filepath.Join(filepath.Dir(f.ws), "PWNED")
			removed, err := f.runClean(t, strings.ReplaceAll(tc.script, "MARKER", marker))
			if err != nil {
				t.Errorf("Cleanup: %v", err)
			}
			if !slices.Equal(removed, []string{".git"}) {
				t.Errorf("Cleanup removed %q, want [.git]", removed)
			}
			if _, err := os.Lstat(filepath.Join(f.ws, ".git")); err == nil {
				t.Fatal("the .git the run created is still there")
			}
			if git, err := exec.LookPath("git"); err == nil {
				cmd := exec.Command(git, "status")
				cmd.Dir = f.ws
				_ = cmd.Run()
				if _, err := os.Stat(marker); err == nil {
					t.Error("the user's git status ran a command the run planted")
				}
			}
		})
	}
}

// TestCleanupRestoresWriteBits: a run that takes the write bit off the
// directories holding what it created at protected paths does not keep it
// there: Cleanup gives the directories their owner's bits back and removes
// it. (As root the bits stop nothing, so this proves something only for a
// non-root toolgate, the documented setup.)
func TestCleanupRestoresWriteBits(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root, which permission bits do not stop: this passes on the old code too; run as a user to test the fix")
	}
	for _, tc := range []struct {
		name, script string
		want         []string
	}{
		{"workspace made read-only", `echo '{}' > .mcp.json && echo 'touch /tmp/pwn' > .envrc && chmod 555 .`, []string{".envrc", ".mcp.json"}},
		{"workspace made unreadable", `echo '{}' > .mcp.json && chmod 000 .`, []string{".mcp.json"}},
		{"a tree without write bits", `mkdir -p .git/hooks/sub && echo x > .git/hooks/pre-commit && chmod 000 .git/hooks/sub && chmod 500 .git/hooks .git`, []string{".git"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHostFixture(t)
			removed, err := f.runClean(t, tc.script)
			if err != nil {
				t.Errorf("Cleanup: %v", err)
			}
			if !slices.Equal(removed, tc.want) {
				t.Errorf("Cleanup removed %q, want %q", removed, tc.want)
			}
			for _, p := range tc.want {
				if _, err := os.Lstat(filepath.Join(f.ws, p)); err == nil {
					t.Errorf("%s is still there", p)
				}
			}
		})
	}
}

// TestCleanupQuarantines: what appears at a protected path during a run
// (made by the run, or by the user on the host: toolgate cannot tell) is
// moved into a directory of its own under QuarantineDir, not deleted, with
// its workspace path kept and a .git named dot-git; what is not a protected
// path (.github/CODEOWNERS beside the workflows) stays where it is; and
// later runs cannot change what was kept.
func TestCleanupQuarantines(t *testing.T) {
	f := newHostFixture(t)
	c := f.ran(t, `mkdir -p .github/workflows .git && echo PWN > .github/workflows/ci.yml && echo '* @me' > .github/CODEOWNERS && `+
		`echo 'export A=1' > .envrc && echo 'ref: refs/heads/main' > .git/HEAD`)
	removed, err := c.Cleanup()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(f.ws, ".envrc"), filepath.Join(f.ws, ".git"), filepath.Join(f.ws, ".github", "workflows")}
	slices.Sort(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("Cleanup took away %q, want %q", removed, want)
	}
	if !Within(filepath.Join(f.ws, QuarantineDir), c.Quarantine) || c.Quarantine == filepath.Join(f.ws, QuarantineDir) {
		t.Fatalf("Quarantine = %q, want a directory under %s", c.Quarantine, QuarantineDir)
	}
	for rel, content := range map[string]string{".github/workflows/ci.yml": "PWN\n", ".envrc": "export A=1\n", "dot-git/HEAD": "ref: refs/heads/main\n"} {
		if b, err := os.ReadFile(filepath.Join(c.Quarantine, rel)); err != nil || string(b) != content {
			t.Errorf("quarantined %s = %q, %v; want %q", rel, b, err, content)
		}
	}
	if b, err := os.ReadFile(filepath.Join(f.ws, ".github", "CODEOWNERS")); err != nil || string(b) != "* @me\n" {
		t.Errorf(".github/CODEOWNERS = %q, %v; want it left in place", b, err)
	}
	for _, rel := range []string{".envrc", ".git", ".github/workflows"} {
		if _, err := os.Lstat(filepath.Join(f.ws, rel)); err == nil {
			t.Errorf("%s is still in place", rel)
		}
	}
	// A later run can neither change what was kept nor put a link in its way.
	q, _ := filepath.Rel(f.ws, c.Quarantine)
	if _, err := f.runClean(t, `echo PWN2 > '`+q+`/.envrc'; rm -rf .toolgate; ln -s . .toolgate; true`); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(c.Quarantine, ".envrc")); err != nil || string(b) != "export A=1\n" {
		t.Errorf("a later run changed the quarantined .envrc: %q, %v", b, err)
	}
}

// TestQuarantineKeepsNoLinks: what a run created at a protected path and
// linked elsewhere (ln CLAUDE.md keep) is kept in the quarantine as a file
// of its own, so writing the other name changes nothing kept; moved back by
// the user, it is held like any file. A held file with another name (the
// user's, or one moved back before this) refuses the run, saying how to
// fix it, since that name would write it behind the hold.
func TestQuarantineKeepsNoLinks(t *testing.T) {
	f := newHostFixture(t)
	c := f.ran(t, `echo x > .envrc && ln .envrc keep`)
	if _, err := c.Cleanup(); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(c.Quarantine, ".envrc")
	if _, err := f.runClean(t, `echo EVIL >> keep`); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(kept); err != nil || string(b) != "x\n" {
		t.Fatalf("kept .envrc = %q, %v; want it unchanged by a write to the run's other name", b, err)
	}
	if err := os.Link(filepath.Join(f.ws, "keep"), filepath.Join(f.ws, ".envrc")); err != nil {
		t.Fatal(err)
	}
	_, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"true"})
	if err == nil || !strings.Contains(err.Error(), ".envrc has 2 hard links") || !strings.Contains(err.Error(), "find . -samefile .envrc") {
		t.Fatalf("a run with a held .envrc of two names: %v; want it refused, saying how to fix it", err)
	}
}
