package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSandboxRebaseTodoTakenAway: with rules that allow everything in
// workspace-write, the agent stops an interactive rebase at a break with
// an exec after it in the todo. toolgate moves .git/rebase-merge into the
// quarantine after the run and says so, so the user's git rebase
// --continue on the host runs nothing; a rebase the run finishes works.
func TestServeSandboxRebaseTodoTakenAway(t *testing.T) {
	f := sbSetup(t, allowAllIn("workspace-write"))
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", f.ws, "-c", "user.name=u", "-c", "user.email=u@u"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + f.home, "GIT_CONFIG_NOSYSTEM=1"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var main string
	for _, args := range [][]string{{"init", "-q"}, {"add", "main.txt"}, {"commit", "-qm", "one"},
		{"commit", "-q", "--allow-empty", "-m", "two"}, {"rev-parse", "--abbrev-ref", "HEAD"},
		{"checkout", "-q", "-b", "topic", "HEAD~1"}, {"commit", "-q", "--allow-empty", "-m", "three"}} {
		out, err := git(args...)
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		if args[0] == "rev-parse" {
			main = strings.TrimSpace(out)
		}
	}
	f.c, _, f.stderr = startStdio(t, f.config(""), f.env()...)
	marker := filepath.Join(f.dir, "PWNED")
	out, _ := f.run(t, `printf '#!/bin/sh\nprintf "break\\nexec touch `+marker+`\\n" | cat - "$1" > "$1.new" && mv "$1.new" "$1"\n' > /tmp/ed.sh && `+
		`chmod +x /tmp/ed.sh && GIT_SEQUENCE_EDITOR=/tmp/ed.sh git -c user.name=a -c user.email=a@a rebase -i HEAD~1; cat .git/rebase-merge/git-rebase-todo`)
	if !strings.Contains(out, "exec touch") {
		t.Fatalf("the run did not leave a todo with an exec (so this test shows nothing):\n%s", out)
	}
	if !strings.Contains(out, ".git/rebase-merge") || !strings.Contains(out, "quarantine") {
		t.Errorf("the result does not say the rebase's state was taken away:\n%s", out)
	}
	if _, err := os.Lstat(filepath.Join(f.ws, ".git", "rebase-merge")); err == nil {
		t.Errorf(".git/rebase-merge is still on the host")
	}
	if out, err := git("rebase", "--continue"); err == nil {
		t.Errorf("git rebase --continue on the host found a rebase to continue:\n%s", out)
	}
	if _, err := os.Lstat(marker); err == nil {
		t.Fatal("the planted exec ran on the host")
	}
	if out, err := git("checkout", "-q", "-f", "topic"); err != nil {
		t.Fatalf("git checkout topic: %v\n%s", err, out)
	}
	out, isErr := f.run(t, "git -c user.name=a -c user.email=a@a rebase -q "+main+" && git log --format=%s")
	if isErr || strings.Contains(out, "quarantine") || !strings.Contains(out, "three\ntwo\none") {
		t.Errorf("a rebase that finishes in the run:\n%s", out)
	}
}
