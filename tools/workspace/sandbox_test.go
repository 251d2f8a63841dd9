package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/tools/sandbox"
)

// testSandbox returns a sandbox over root with the built-in profiles, the
// explicit "none" profile and env (a minimal one when empty). It needs
// bubblewrap, as toolgate does; the README's test command installs it.
func testSandbox(t testing.TB, root string, env ...string) *sandbox.Sandbox {
	t.Helper()
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		t.Fatalf("bubblewrap is needed to test the workspace tools: %v (apt-get install bubblewrap)", err)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) == 0 {
		env = []string{"PATH=" + DefaultPath, "HOME=/tmp", "LANG=C.UTF-8"}
	}
	sb, err := sandbox.New(sandbox.Options{
		Bwrap:     bwrap,
		Workspace: real,
		Protect:   sandbox.DefaultProtect,
		Env:       env,
		Profiles:  []sandbox.Profile{{Name: sandbox.None, Unsandboxed: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// TestWriteInSandboxHoldsProtectedPaths: the file tools' checks run in
// toolgate's process and a command running at the same time could race
// them (swap a directory for a symlink into .git/hooks); the write itself
// happens in the sandbox, which holds protected paths read-only whatever
// path reaches them. Here the checks are skipped outright, as a won race
// would skip them.
func TestWriteInSandboxHoldsProtectedPaths(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{".git/hooks", "src"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "config"), []byte("[core]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../.git/hooks", filepath.Join(root, "src", "swapped")); err != nil {
		t.Fatal(err)
	}
	w, err := newWS(Options{Root: root, Sandbox: testSandbox(t, root)})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := w.sb.Profile(sandbox.WorkspaceWrite)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{".git/hooks/pre-commit", "src/swapped/post-checkout", ".git/config"} {
		err := w.writeInSandbox(prof, rel, []byte("#!/bin/sh\nevil\n"), 0o755, false)
		var r refusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), "protected") {
			t.Errorf("%s: %v, want a protected-path refusal", rel, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, ".git", "hooks")); len(ents) != 0 {
		t.Errorf("files in .git/hooks: %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(root, ".git", "config")); string(b) != "[core]\n" {
		t.Errorf(".git/config = %q", b)
	}
	if err := w.writeInSandbox(prof, "src/ok.txt", []byte("fine"), 0o644, false); err != nil {
		t.Fatalf("a plain write: %v", err)
	}
}

// TestWriteFileCannotMakeRepository: where the workspace has no .git,
// write_file cannot leave one: a .git file naming a git directory of the
// agent's making, or a .git directory made through create_dirs (whose
// commondir or config would run the agent's commands in the user's next
// git status). What it created is removed, and the call says so.
func TestWriteFileCannotMakeRepository(t *testing.T) {
	root := t.TempDir()
	c := connect(t, Options{Root: root})
	for _, args := range []map[string]any{
		{"path": ".git", "content": "gitdir: evil\n"},
		{"path": ".git/commondir", "content": "../evil\n", "create_dirs": true},
		{"path": ".git/objects/info/alternates", "content": "/tmp\n", "create_dirs": true},
	} {
		text, isErr := call(t, c, ToolWriteFile, args)
		if !isErr || !strings.Contains(text, "toolgate removed") {
			t.Errorf("write_file %v: isError %v, %s", args, isErr, text)
		}
		if _, err := os.Lstat(filepath.Join(root, ".git")); err == nil {
			t.Fatalf("write_file %v left a .git", args)
		}
	}
	if text, isErr := call(t, c, ToolWriteFile, map[string]any{"path": "sub/dir/ok.txt", "content": "fine", "create_dirs": true}); isErr {
		t.Fatalf("a plain write with create_dirs: %s", text)
	}
}

// TestCommandReportsWhatCleanupLeft: a command whose creation at a
// protected path toolgate could not remove fails, and says what is left.
func TestCommandReportsWhatCleanupLeft(t *testing.T) {
	r := runResult{profile: sandbox.Builtin()[1], stdout: newCapped(64), stderr: newCapped(64),
		cleanupErr: errors.New("sandbox: removing /ws/.mcp.json, which the run created: permission denied")}
	res := r.toolResult(time.Second)
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if !res.IsError || !strings.Contains(text.String(), "could not remove") || !strings.Contains(text.String(), "/ws/.mcp.json") {
		t.Errorf("isError %v:\n%s", res.IsError, text.String())
	}
}
