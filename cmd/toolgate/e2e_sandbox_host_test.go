package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/tools/sandbox/sandboxtest"
)

// defaultPackConfig writes the config with no rules file: the embedded
// default pack decides.
func (f *sbFixture) defaultPackConfig(t *testing.T) string {
	t.Helper()
	cfg := f.config("")
	body, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(body), "rules: {file: \""+f.rules+"\"}", "rules: {file: \"\"}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServeSandboxCleanupStaysInWorkspace: with the embedded default rules,
// in a workspace that is not a git repository, the agent writes a script
// that links .git to another project's git directory and runs it, both
// calls allowed without a human. toolgate removes the link, not what it
// points to: the other project's config and hooks are intact, then and
// after the next run (toolgate used to delete them when cleaning up the
// watched .git/config and .git/hooks, and then create hooks/ through the
// link). A .git file write_file makes is removed too.
func TestServeSandboxCleanupStaysInWorkspace(t *testing.T) {
	f := sbSetup(t, "")
	if err := os.RemoveAll(filepath.Join(f.ws, ".git")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(f.home, "other", ".git")
	for p, content := range map[string]string{"config": "[core]\n", "hooks/pre-commit": "#!/bin/sh\n", "info/attributes": "* text\n"} {
		p = filepath.Join(other, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	before := sandboxtest.Tree(t, filepath.Dir(other))

	mustCall(t, f.c, "workspace__write_file", map[string]any{"path": "z.sh", "content": "ln -s ../../other/.git .git\necho linked\n"})
	out, _ := f.run(t, "sh z.sh")
	if !strings.Contains(out, "sandbox: workspace-write") || !strings.Contains(out, "linked") {
		t.Fatalf("the script did not run in workspace-write: %s", out)
	}
	if !strings.Contains(out, "toolgate removed "+filepath.Join(f.ws, ".git")+":") {
		t.Errorf("the result does not say the link was removed: %s", out)
	}
	if _, err := os.Lstat(filepath.Join(f.ws, ".git")); err == nil {
		t.Error("the .git link is still there")
	}
	if after := sandboxtest.Tree(t, filepath.Dir(other)); !slices.Equal(after, before) {
		t.Errorf("another project's git directory changed:\nbefore %q\nafter  %q", before, after)
	}

	if out, isErr := f.run(t, "cat main.txt > copy.txt"); isErr {
		t.Errorf("the next routine write failed: %s", out)
	}
	if after := sandboxtest.Tree(t, filepath.Dir(other)); !slices.Equal(after, before) {
		t.Errorf("the next run changed another project's git directory:\nbefore %q\nafter  %q", before, after)
	}

	res, err := callTool(t.Context(), f.c, "workspace__write_file", map[string]any{"path": ".git", "content": "gitdir: evil\n"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// The default pack denies a written .git as persistence before the
	// sandbox sees it; without that rule, the sandbox removes it
	// (TestWriteFileCannotMakeRepository in tools/workspace).
	if text := resultText(res); !res.IsError || !strings.Contains(text, "toolgate removed") && !strings.Contains(text, "deny-persistence-writes") {
		t.Errorf("write_file .git: isError %v, %s", res.IsError, text)
	}
	if _, err := os.Lstat(filepath.Join(f.ws, ".git")); err == nil {
		t.Error("the .git file write_file made is still there")
	}
}
