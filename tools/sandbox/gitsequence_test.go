package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// plantBreakThenExec is a run that stops an interactive rebase at a
// break, with an exec the user's git rebase --continue would run on the
// host at the top of what is left of the todo.
const plantBreakThenExec = `printf '#!/bin/sh\nprintf "break\\nexec touch PWNED\\n" | cat - "$1" > "$1.new" && mv "$1.new" "$1"\n' > /tmp/ed.sh && ` +
	`chmod +x /tmp/ed.sh && GIT_SEQUENCE_EDITOR=/tmp/ed.sh git rebase -i HEAD~1 && test -f .git/rebase-merge/git-rebase-todo`

// TestGitSequenceTakenAway: the state of an interactive rebase a run
// leaves behind (a todo with an exec after a break) is moved into the
// quarantine after the run, so the user's git rebase --continue on the
// host runs nothing of it. A rebase
// that finishes within the run works, and leaves nothing to take away; a
// rebase the user stopped before the run is held read-only.
func TestGitSequenceTakenAway(t *testing.T) {
	f := gitFixture(t)
	for i, name := range []string{"a.txt", "b.txt"} {
		f.put(t, map[string]string{name: strings.Repeat("x", i+1)})
		f.git(t, "add", name)
		f.git(t, "commit", "-qm", name)
	}
	main := strings.TrimSpace(f.git(t, "rev-parse", "--abbrev-ref", "HEAD"))
	c := ranIn(t, f.sb, f.ws, plantBreakThenExec)
	removed, err := c.Cleanup()
	if err != nil || !slices.Contains(removed, filepath.Join(f.ws, ".git", "rebase-merge")) {
		t.Fatalf("Cleanup after a rebase left stopped: %q, %v; want .git/rebase-merge taken away", removed, err)
	}
	if _, err := os.Lstat(filepath.Join(c.Quarantine, "dot-git", "rebase-merge", "git-rebase-todo")); err != nil {
		t.Errorf("the todo is not in the quarantine: %v", err)
	}
	// The user's continue: nothing in progress, nothing run.
	if out, err := f.gitTry("rebase", "--continue"); err == nil {
		t.Errorf("git rebase --continue on the host succeeded after the cleanup:\n%s", out)
	}
	if _, err := os.Lstat(filepath.Join(f.ws, "PWNED")); err == nil {
		t.Fatal("the planted exec ran on the host")
	}
	f.git(t, "checkout", "-q", "-f", main)

	// A rebase that completes in the run.
	f.git(t, "checkout", "-q", "-b", "topic", "HEAD~1")
	f.put(t, map[string]string{"c.txt": "c"})
	f.git(t, "add", "c.txt")
	f.git(t, "commit", "-qm", "c")
	c = ranIn(t, f.sb, f.ws, "git rebase -q "+main+" && test -f b.txt")
	if removed, err := c.Cleanup(); len(removed) != 0 || err != nil {
		t.Errorf("Cleanup after a rebase that finished: %q, %v; want nothing", removed, err)
	}
	if out := f.git(t, "log", "--format=%s", "-3"); out != "c\nb.txt\na.txt\n" {
		t.Errorf("the rebase in the run did not land:\n%s", out)
	}

	// The user's own stopped rebase: held, so a run can neither write
	// its todo nor remove it.
	f.git(t, "checkout", "-q", main)
	if out, err := f.gitTry("-c", "sequence.editor=sed -i 1ibreak", "rebase", "-i", "HEAD~1"); err != nil {
		t.Fatalf("the user's rebase: %v\n%s", err, out)
	}
	todo := filepath.Join(f.ws, ".git", "rebase-merge", "git-rebase-todo")
	before, err := os.ReadFile(todo)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := f.run(t, WorkspaceWrite, "echo 'exec touch PWNED' >> .git/rebase-merge/git-rebase-todo; rm -rf .git/rebase-merge; echo done")
	if after, err := os.ReadFile(todo); err != nil || string(after) != string(before) {
		t.Errorf("a run changed the user's stopped rebase (%v):\n%s\n%s", err, after, out)
	}
}
