package workspace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestLinks: a workspace path argument through a link below the root is
// reported with the path it resolves to, written under the root as
// configured even when that is itself a link; other strings, paths with
// no link, paths outside the workspace and the skipped server's calls are
// not.
func TestLinks(t *testing.T) {
	real := t.TempDir()
	for _, d := range []string{".git/hooks", "src"} {
		if err := os.MkdirAll(filepath.Join(real, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(real, ".env"), []byte("K=v"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"hk": ".git/hooks", "src/notes": "../.env", "out": "/etc", "gone": "nowhere/x"} {
		if err := os.Symlink(target, filepath.Join(real, link)); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(t.TempDir(), "ws") // the workspace as configured: a link to real
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	l := Links{Root: root, Skip: []string{"workspace"}}
	args := map[string]any{
		"path":  filepath.Join(root, "hk/pre-commit"),
		"edits": []any{map[string]any{"file": "src/notes"}},
		"plain": filepath.Join(root, "src/main.go"),
		"text":  "hello hk/x",
		"other": "/etc/hosts",
		"out":   "./out/passwd",
		"gone":  "gone",
	}
	got := l.Links(toolgate.Call{Server: "fs", Args: args})
	want := map[string]string{
		filepath.Join(root, "hk/pre-commit"): filepath.Join(root, ".git/hooks/pre-commit"),
		"src/notes":                          filepath.Join(root, ".env"),
		"./out/passwd":                       "/etc/passwd",
	}
	if len(got) != len(want) {
		t.Errorf("Links = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Links[%q] = %q, want %q", k, got[k], v)
		}
	}
	if got := l.Links(toolgate.Call{Server: "workspace", Args: args}); got != nil {
		t.Errorf("the skipped server's call: Links = %v", got)
	}
}
