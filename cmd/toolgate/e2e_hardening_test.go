package main

// Issue 11's attacks on toolgate's own state and secrets, through the real
// binary: the audit log deleted while serving, an agent told how to approve
// its own call, an upstream reading toolgate's environment, secrets that
// had to live in the environment.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeAuditLogGone: once the audit DB is deleted (or moved away) while
// toolgate serves, the next call is refused with a message naming the
// problem and never reaches the upstream; a DB moved back lets calls run
// again.
func TestServeAuditLogGone(t *testing.T) {
	cfg, db := opsConfig(t, allowRules, "", "")
	c, _, _ := startStdio(t, cfg)
	received := filepath.Join(t.TempDir(), "received.log")
	record := func(id string) (string, bool) {
		t.Helper()
		res, err := callTool(t.Context(), c, "up__record", map[string]any{"file": received, "id": id}, "")
		if err != nil {
			t.Fatalf("call %s: %v", id, err)
		}
		return resultText(res), res.IsError
	}
	ran := func(id string) bool {
		b, err := os.ReadFile(received)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Contains(string(b), id+"\n")
	}
	refused := func(id string) {
		t.Helper()
		msg, isErr := record(id)
		if !isErr || !strings.Contains(msg, "audit log could not record this call, so it was not run") ||
			!strings.Contains(msg, "audit log "+db+" was deleted or replaced while toolgate was running; calls are refused until it is back") {
			t.Errorf("call %s with the audit log gone: isError %v, %q; want a refusal naming the problem", id, isErr, msg)
		}
		if ran(id) {
			t.Errorf("call %s reached the upstream with the audit log gone", id)
		}
	}

	if msg, isErr := record("before"); isErr || !ran("before") {
		t.Fatalf("first call: isError %v, %q", isErr, msg)
	}

	if err := os.Rename(db, db+".aside"); err != nil {
		t.Fatal(err)
	}
	refused("while-moved")
	if err := os.Rename(db+".aside", db); err != nil {
		t.Fatal(err)
	}
	if msg, isErr := record("moved-back"); isErr || !ran("moved-back") {
		t.Fatalf("call with the audit log moved back: isError %v, %q", isErr, msg)
	}

	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil {
			t.Fatal(err)
		}
	}
	refused("deleted")
	refused("deleted-again")
}

// TestServeReviewTextHidesApproveCommand: nothing the agent receives while
// its call waits for a terminal review, nor the refusal when nobody
// answers, contains the command that would approve it (an agent that can
// run commands would run it); the log, for the humans, does.
func TestServeReviewTextHidesApproveCommand(t *testing.T) {
	cfg, _ := rvConfig(t, nil, "  timeout: 1s\n  channels: [cli]\n")
	c, n, stderr := startStdio(t, cfg)
	res := rvStart(c, t.Context(), "anyone?", "hide-progress").wait(t)
	refusal := resultText(res)
	m := rvDecisionID.FindStringSubmatch(refusal)
	if !res.IsError || m == nil || !strings.Contains(refusal, "no reviewer answered in time") {
		t.Fatalf("unanswered review: isError %v, %q; want a timeout refusal naming the decision", res.IsError, refusal)
	}
	agentSaw := []string{refusal}
	n.mu.Lock()
	for _, x := range n.all {
		if x.Method == "notifications/progress" {
			agentSaw = append(agentSaw, fmt.Sprint(x.Params.AdditionalFields["message"]))
		}
	}
	n.mu.Unlock()
	if len(agentSaw) < 2 {
		t.Fatal("no progress notification while the review waited")
	}
	for _, text := range agentSaw {
		if strings.Contains(text, "review approve") {
			t.Errorf("the agent was sent the approve command: %q", text)
		}
	}
	if log := stderr.String(); !strings.Contains(log, "toolgate review approve|deny "+m[1]) {
		t.Errorf("the log does not tell the humans how to answer:\n%s", log)
	}
}

// TestServeUpstreamEnvironment: a stdio upstream sees the variables its
// config's env: sets and the allowlisted ones (PATH...), never toolgate's
// secrets (server-everything's get-env tool handed the Slack tokens to the
// agent).
func TestServeUpstreamEnvironment(t *testing.T) {
	cfg, _ := opsConfig(t, allowRules, ", env: {FROM_CONFIG: set-by-config, EXPANDED: '${UP_VALUE}'}", "")
	c, _, _ := startStdio(t, cfg, "SLACK_BOT_TOKEN=xoxb-secret", "SLACK_SIGNING_SECRET=signing-secret",
		"TOOLGATE_AUTH_TOKEN=bearer-secret", "UP_VALUE=expanded-for-up", "PATH=/usr/bin:/bin")
	var got []string
	if err := json.Unmarshal([]byte(mustCall(t, c, "up__env", nil)), &got); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range got {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{"FROM_CONFIG": "set-by-config", "EXPANDED": "expanded-for-up", "PATH": "/usr/bin:/bin"} {
		if env[k] != want {
			t.Errorf("upstream's $%s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TOOLGATE_AUTH_TOKEN", "UP_VALUE"} {
		if v, ok := env[k]; ok {
			t.Errorf("upstream sees toolgate's $%s (%q)", k, v)
		}
	}
}

// TestServeSecretFiles: with *_file keys, the bearer token and the Slack
// tokens come from files (relative to the config), not from the variables
// in toolgate's environment; a token file others can read stops start-up
// with a message saying so.
func TestServeSecretFiles(t *testing.T) {
	t.Run("http token", func(t *testing.T) {
		cfg := writeConfig(t, upstreamConfig(t, "http: {auth_token_file: token}\n"))
		writeSecret(t, filepath.Dir(cfg), "token", "file-token\n", 0o600)
		t.Setenv("TOOLGATE_AUTH_TOKEN", "env-token")
		mcpURL := startHTTP(t, cfg) + "/mcp"
		if resp, body := post(t, mcpURL, initBody, map[string]string{"Authorization": "Bearer file-token"}); resp.StatusCode != http.StatusOK {
			t.Errorf("the file's token: status %d (%s), want 200", resp.StatusCode, body)
		}
		if resp, _ := post(t, mcpURL, initBody, map[string]string{"Authorization": "Bearer env-token"}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the environment's token: status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("open token file", func(t *testing.T) {
		cfg := writeConfig(t, upstreamConfig(t, "http: {auth_token_file: token}\n"))
		token := writeSecret(t, filepath.Dir(cfg), "token", "file-token", 0o644)
		out, err := exec.Command(toolgateBin, "serve", "--config", cfg, "--http", toolgatetest.FreeAddr(t)).CombinedOutput()
		var ee *exec.ExitError
		want := "permissions 0644 for secret file " + token + " are too open: it must be accessible by its owner only (chmod 600 " + token + ")"
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
			t.Errorf("serve with a world-readable token file: %v; want exit 1 saying %q; output:\n%s", err, want, out)
		}
	})

	t.Run("slack tokens", func(t *testing.T) {
		fs := slackfake.New(t)
		cfg, _ := rvConfig(t, fs, "  timeout: 60s\n  channels: [slack]\n")
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		withFiles := strings.Replace(string(b), "slack: {", "slack: {bot_token_file: bot, app_token_file: app, ", 1)
		if err := os.WriteFile(cfg, []byte(withFiles), 0o600); err != nil {
			t.Fatal(err)
		}
		writeSecret(t, filepath.Dir(cfg), "bot", slackfake.BotToken+"\n", 0o600)
		writeSecret(t, filepath.Dir(cfg), "app", slackfake.AppToken+"\n", 0o400)
		// The fake refuses these: were they read, nothing would connect or post.
		c, _, _ := startStdio(t, cfg, "SLACK_BOT_TOKEN=xoxb-wrong", "SLACK_APP_TOKEN=xapp-wrong")
		fs.WaitConnected()
		call := rvStart(c, t.Context(), "tokens from files", "")
		fs.Click(rvClick(rvApprover, review.ActionApprove, rvPostedID(t, fs.WaitPosts(1)), ""))
		if res := call.wait(t); res.IsError || resultText(res) != "tokens from files" {
			t.Errorf("call approved on Slack: isError %v, %q", res.IsError, resultText(res))
		}
	})
}
