package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeLinkToSecretRefused: a server outside the sandbox follows
// links (the test upstream's read opens its path as given, as
// server-filesystem does inside its directories), and a command may make
// a link in the workspace. With the embedded rules, a read through a link
// to .env is refused as the read of .env it is, naming the link, while a
// read of a plain file, and one through a link to another plain file,
// are allowed and run.
func TestServeLinkToSecretRefused(t *testing.T) {
	dir := t.TempDir()
	const secret = "API_KEY=FAKE_SECRET_123\n"
	for name, content := range map[string]string{".env": secret, "README.md": "hello\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"notes": ".env", "readme": "README.md"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	c, _, _ := startStdio(t, shellServerConfig(t, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		path, want string
		refused    bool
	}{
		{"README.md", "hello", false},
		{"readme", "hello", false},
		{"notes", "deny-secret-paths", true},
	} {
		res, err := callTool(ctx, c, "sh__read", map[string]any{"path": filepath.Join(dir, tc.path)}, "")
		if err != nil {
			t.Fatal(err)
		}
		text := resultText(res)
		if res.IsError != tc.refused || !strings.Contains(text, tc.want) || strings.Contains(text, "FAKE_SECRET") {
			t.Errorf("read %s: %s; want refused %v with %q", tc.path, text, tc.refused, tc.want)
		}
		if tc.refused && !strings.Contains(text, "is a link to") {
			t.Errorf("read %s: %s; want the refusal to name the link", tc.path, text)
		}
	}
}
