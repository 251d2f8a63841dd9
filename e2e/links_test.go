package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultPackFollowsLinks: server-filesystem runs unsandboxed and
// follows links inside its directory, here the workspace. Under the
// embedded default rules an agent's sandboxed command may make a link
// (ln -s .git/hooks hk, one to .env by a computed name), but writing a hook through the
// first with server-filesystem is refused as the write of .git/hooks it
// is, and reading .env through the second as the read of .env: nothing is
// written, nothing secret comes back, and each refusal names its link.
func TestDefaultPackFollowsLinks(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, allowAll)
	mustMkdir(t, filepath.Join(fx.wsDir, ".git", "hooks"))
	cfg := fmt.Sprintf("start_wait: 120s\nservers:\n  fs:\n    command: %q\n    args: [%q]\nworkspace: {enabled: true, root: %q}\naudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n",
		filepath.Join(harness.dir, "node_modules", ".bin", "mcp-server-filesystem"), fx.wsDir, fx.wsDir, filepath.Join(fx.dir, "audit.db"))
	mustWrite(t, fx.config, cfg, 0o644)
	c := goStdio(t, fx)
	// Naming .env is denied; computing the name is allowed in the sandbox.
	mustMkdir(t, filepath.Join(fx.wsDir, "sub"))
	for _, cmd := range []string{"ln -s .git/hooks hk", `ln -s "$(printf .e)nv" notes`, "ln -s .git/hooks caf\u00e9",
		"ln -s sub d", `cd sub && ln -s "$(printf ../.e)nv" n`} {
		if text, isErr := goCall(t, c, toolWSRun, map[string]any{"command": cmd}); isErr {
			t.Fatalf("%s: %q", cmd, text)
		}
	}
	// The link by name, and by its name in another normalization, which
	// server-filesystem also finds.
	for _, dir := range []string{"hk", "cafe\u0301"} {
		text, isErr := goCall(t, c, "fs__write_file", map[string]any{"path": filepath.Join(fx.wsDir, dir, "pre-commit"), "content": "#!/bin/sh\necho pwned\n"})
		if !isErr || !strings.Contains(text, "is a link to") || !strings.Contains(text, "deny-persistence-writes") {
			t.Errorf("write %s/pre-commit: %q (isError %v), want the pack's refusal naming the link", dir, text, isErr)
		}
		if _, err := os.Stat(filepath.Join(fx.wsDir, ".git", "hooks", "pre-commit")); err == nil {
			t.Fatalf("a git hook was written through %s", dir)
		}
	}
	// A link, and a link reached through another.
	for _, p := range []string{"notes", "d/n"} {
		text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": filepath.Join(fx.wsDir, p)})
		if !isErr || strings.Contains(text, "not-for-agents") || !strings.Contains(text, "deny-secret-paths") {
			t.Errorf("read %s: %q (isError %v), want the pack's refusal", p, text, isErr)
		}
	}
	if text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": filepath.Join(fx.wsDir, "note.txt")}); isErr || text != wsText {
		t.Errorf("a plain read: %q (isError %v)", text, isErr)
	}
}
