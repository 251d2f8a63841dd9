package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/config"
)

// writeSecret writes a secret file with the given mode (chmod, so the umask
// cannot narrow it).
func writeSecret(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	if got, err := readSecretFile(writeSecret(t, dir, "ok", "  xoxb-from-file \n", 0o600)); err != nil || got != "xoxb-from-file" {
		t.Errorf("owner-only file: %q, %v", got, err)
	}
	if got, err := readSecretFile(writeSecret(t, dir, "ro", "tok", 0o400)); err != nil || got != "tok" {
		t.Errorf("owner read-only file: %q, %v", got, err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"group readable", writeSecret(t, dir, "g", "tok", 0o640), "permissions 0640 for secret file " + filepath.Join(dir, "g") + " are too open"},
		{"world readable", writeSecret(t, dir, "o", "tok", 0o644), "chmod 600 " + filepath.Join(dir, "o")},
		{"world writable", writeSecret(t, dir, "w", "tok", 0o602), "are too open"},
		{"empty", writeSecret(t, dir, "e", " \n", 0o600), "is empty"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"too large", writeSecret(t, dir, "big", strings.Repeat("x", maxSecretBytes+1), 0o600), "larger than"},
	} {
		if got, err := readSecretFile(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) || got != "" {
			t.Errorf("%s: %q, %v; want an error containing %q", tc.name, got, err, tc.want)
		}
	}
}

// TestSlackOptionsFromFiles: a *_file key takes the place of its variable;
// a file others can read stops start-up.
func TestSlackOptionsFromFiles(t *testing.T) {
	dir := t.TempDir()
	env := mapEnv{"SLACK_BOT_TOKEN": "xoxb-env", "SLACK_APP_TOKEN": "xapp-env", "SLACK_SIGNING_SECRET": "env-signing"}
	rc := config.Default().Review
	rc.Slack.Channel = "#approvals"
	rc.Slack.BotTokenFile = writeSecret(t, dir, "bot", "xoxb-file\n", 0o600)
	rc.Slack.SigningSecretFile = writeSecret(t, dir, "signing", "file-signing", 0o600)
	o, err := slackOptions(rc, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.BotToken != "xoxb-file" || o.SigningSecret != "file-signing" || o.AppToken != "xapp-env" {
		t.Errorf("tokens: bot %q, signing %q, app %q; want the files' where given, else the environment's", o.BotToken, o.SigningSecret, o.AppToken)
	}

	rc.Slack.AppTokenFile = writeSecret(t, dir, "app", "xapp-file", 0o644)
	if _, err := slackOptions(rc, env); err == nil || !strings.Contains(err.Error(), "review.slack: the app-level token for Socket Mode, xapp-...: permissions 0644 for secret file") {
		t.Errorf("world-readable app token file: %v", err)
	}
	rc.Slack.AppTokenFile = ""
	if _, err := slackOptions(rc, mapEnv{}); err == nil || !strings.Contains(err.Error(), "review.slack: $SLACK_APP_TOKEN (the app-level token for Socket Mode, xapp-...) is not set") {
		t.Errorf("unset app token: %v", err)
	}
}
