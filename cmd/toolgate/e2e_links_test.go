package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
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

// TestServeLinkChangedDuringReview: the rules send a read of notes (a
// plain file when decided) to a person; while it waits, notes becomes a
// link to .env (a command can do that, as the fence is let go during a
// review). The person approves the read they were shown, but the call is
// not run: its links changed, and the refusal says how. Nothing secret
// comes back, the audit log keeps the approval and records the call
// refused with why, and the same read sent again is decided on the link
// and denied.
func TestServeLinkChangedDuringReview(t *testing.T) {
	dir := t.TempDir()
	const secret = "API_KEY=FAKE_SECRET_123\n"
	for name, content := range map[string]string{".env": secret, "notes": "plain notes\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgDir := t.TempDir()
	rules := filepath.Join(cfgDir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(`version: 1
default: allow
rules:
  - name: deny-env
    match: 'args.path.endsWith(".env")'
    action: deny
  - name: review-notes
    match: 'tool.name == "read"'
    action: review
    reason: reading notes needs a human
`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(cfgDir, "audit.db")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  sh: {command: %q, args: [--shell], cwd: %q}\nworkspace: {enabled: false, root: %q}\nrules: {file: %q}\naudit: {path: %q}\nreview: {timeout: 60s, channels: [cli]}\n",
		upstreamBin, dir, dir, rules, db))
	c, _, _ := startStdio(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type answer struct {
		text  string
		isErr bool
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := callTool(ctx, c, "sh__read", map[string]any{"path": filepath.Join(dir, "notes")}, "")
		if err != nil {
			done <- answer{err: err}
			return
		}
		done <- answer{text: resultText(res), isErr: res.IsError}
	}()
	ids := rvWaitPending(t, db, 1)
	if err := os.Remove(filepath.Join(dir, "notes")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".env", filepath.Join(dir, "notes")); err != nil {
		t.Fatal(err)
	}
	rvCLI(t, nil, "review", "approve", ids[0], "--db", db)
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	if !a.isErr || strings.Contains(a.text, "FAKE_SECRET") || !strings.Contains(a.text, "changed while it waited for review") ||
		!strings.Contains(a.text, "is now a link to") {
		t.Fatalf("the approved read after notes became a link: isError %v, %s; want it refused, saying the link changed", a.isErr, a.text)
	}
	r := rvAuditRow(t, db, ids[0])
	if r.Status != toolgate.StatusRefused || r.Review == nil || !r.Review.Approved || r.Outcome == nil ||
		!strings.Contains(r.Outcome.Error, "is now a link to") {
		t.Errorf("audit row: status %q, review %+v, outcome %+v; want refused after the approval, saying why", r.Status, r.Review, r.Outcome)
	}
	res, err := callTool(ctx, c, "sh__read", map[string]any{"path": filepath.Join(dir, "notes")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); !res.IsError || strings.Contains(text, "FAKE_SECRET") || !strings.Contains(text, "deny-env") {
		t.Errorf("the read sent again: %s; want it denied on the link", text)
	}
}
