package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSandboxHookLinkedFromWorkspace: with the embedded default
// rules, the user keeps the pre-commit hook as a hard link of the tracked
// scripts/pre-commit. The hooks directory is held read-only during a run,
// but the agent's command appends to the hook through its other name (the
// name computed, so the rules see nothing to stop); the user's next git
// commit would run it. The run is refused before it starts, saying which
// file has other names and how to make it one of its own; the commit runs
// nothing of the agent's; and once the user breaks the link as the
// message says, runs start again and the same write no longer reaches
// the hook. The agent cannot make such a link itself: ln of a hook fails
// inside the run.
func TestServeSandboxHookLinkedFromWorkspace(t *testing.T) {
	f := sbSetup(t, "")
	if err := os.RemoveAll(filepath.Join(f.ws, ".git")); err != nil {
		t.Fatal(err)
	}
	gitIn(t, f.ws, "init", "-q")
	script := filepath.Join(f.ws, "scripts", "pre-commit")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho checked\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(f.ws, ".git", "hooks", "pre-commit")
	if err := os.Link(script, hook); err != nil {
		t.Fatal(err)
	}
	gitIn(t, f.ws, "add", "-A")
	gitIn(t, f.ws, "commit", "-q", "-m", "first")
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)

	marker := filepath.Join(f.dir, "hook-ran")
	attack := `python3 -c "open(` + hexName("scripts/pre-commit") + `, 'a').write(` + hexName("touch "+marker+"\n") + `); print('appended')"`
	out, isErr := f.run(t, attack)
	for _, want := range []string{".git/hooks/pre-commit has 2 hard links", "cp .git/hooks/pre-commit x && mv x .git/hooks/pre-commit",
		"find . -samefile .git/hooks/pre-commit"} {
		if !isErr || !strings.Contains(out, want) {
			t.Errorf("a run with the hook linked from scripts/: isError %v, want %q in:\n%s", isErr, want, out)
		}
	}
	if strings.Contains(out, "appended") {
		t.Errorf("the command ran:\n%s", out)
	}
	userCommit := func(note string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(f.ws, "notes.txt"), []byte(note), 0o644); err != nil {
			t.Fatal(err)
		}
		gitIn(t, f.ws, "add", "notes.txt")
		gitIn(t, f.ws, "commit", "-q", "-m", "more")
		if _, err := os.Lstat(marker); err == nil {
			t.Fatal("the user's git commit ran what the agent wrote into the hook")
		}
	}
	userCommit("refused")

	// The fix the message gives, run by the user.
	fix := exec.Command("/bin/sh", "-c", "cp .git/hooks/pre-commit x && mv x .git/hooks/pre-commit")
	fix.Dir = f.ws
	if b, err := fix.CombinedOutput(); err != nil {
		t.Fatalf("the fix: %v\n%s", err, b)
	}
	out, isErr = f.run(t, attack+` && python3 -c "import os; os.link(`+hexName(".git/hooks/pre-commit")+`, 'keep')"`)
	if !strings.Contains(out, "appended") || !strings.Contains(out, "Invalid cross-device link") {
		t.Errorf("a run after the fix: isError %v, want it to run, and its ln of the hook to fail:\n%s", isErr, out)
	}
	if _, err := os.Lstat(filepath.Join(f.ws, "keep")); err == nil {
		t.Error("the run gave the hook another name")
	}
	userCommit("fixed")
}
