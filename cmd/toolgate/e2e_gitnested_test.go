package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeGitToolBelowRoot attacks, as an agent, a local git server (the
// shape of mcp-server-git: git run in repo_path) with a repository it made
// below the workspace's root, whose config runs a clean filter: the kind
// of repository a sandboxed command of the agent's can write. Under the
// embedded default rules git_status there is reviewed (and, unanswered,
// refused), so the filter never runs; at the root it is allowed.
func TestServeGitToolBelowRoot(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws, home := filepath.Join(dir, "ws"), filepath.Join(dir, "home")
	lib, marker := filepath.Join(ws, "lib"), filepath.Join(dir, "FILTER-RAN")
	for _, d := range []string{lib, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, ws, "init", "-q")
	gitIn(t, lib, "init", "-q")
	if err := os.WriteFile(filepath.Join(lib, "a.txt"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, lib, "add", "a.txt")
	gitIn(t, lib, "commit", "-q", "-m", "first")
	gitIn(t, lib, "config", "filter.pwn.clean", fmt.Sprintf("sh -c 'touch %s; cat'", marker))
	for p, body := range map[string]string{filepath.Join(lib, ".gitattributes"): "*.txt filter=pwn\n", filepath.Join(lib, "a.txt"): "two\n"} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := writeFile(t, dir, "toolgate.yaml", fmt.Sprintf("servers:\n  git:\n    command: %q\n    args: [--git]\n"+
		"workspace: {enabled: false, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n",
		upstreamBin, ws, filepath.Join(dir, "audit.db")))
	c, _, _ := startStdio(t, cfg, "HOME="+home)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, tool := range []string{"git__git_status", "git__git_diff_unstaged"} {
		res, err := callTool(ctx, c, tool, map[string]any{"repo_path": lib}, "")
		if err != nil {
			t.Fatal(err)
		}
		if text := resultText(res); !res.IsError || !strings.Contains(text, "review-git-tools-below-root") {
			t.Errorf("%s in the planted repository: isError %v, %.300q; want a refusal by review-git-tools-below-root", tool, res.IsError, text)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s ran the planted repository's filter", tool)
		}
	}
	res, err := callTool(ctx, c, "git__git_status", map[string]any{"repo_path": ws}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); res.IsError || !strings.Contains(text, "lib/") {
		t.Errorf("git_status at the root: isError %v, %.300q", res.IsError, text)
	}
}
