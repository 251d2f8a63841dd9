package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// secretCorpus reads redact's corpus of common secret formats (cloud keys,
// tokens, private keys, passwords in URLs): each entry is a secret and a
// text that contains it.
func secretCorpus(t *testing.T) (secrets, texts []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "redact", "testdata", "secrets.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		secret, text, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("corpus line without a tab: %q", line)
		}
		secrets = append(secrets, strings.ReplaceAll(secret, `\n`, "\n"))
		texts = append(texts, strings.ReplaceAll(text, `\n`, "\n"))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(secrets) < 40 {
		t.Fatalf("corpus has only %d entries", len(secrets))
	}
	return secrets, texts
}

// TestServeSecretsNeverLeave sends every secret of the corpus as a tool
// call's arguments through the real binary, with debug logging, a Slack
// review and the audit log on, and checks that none of them appears in what
// leaves toolgate other than the upstream call itself: the Slack message and
// its update, the logs, and the audit DB files.
func TestServeSecretsNeverLeave(t *testing.T) {
	secrets, texts := secretCorpus(t)
	fs := slackfake.New(t)
	cfg, db := rvConfig(t, fs, "  timeout: 60s\n  channels: [slack]\n")
	stderr := &toolgatetest.SyncBuffer{}
	tr := transport.NewStdioWithOptions(toolgateBin, rvSlackEnv,
		[]string{"serve", "--config", cfg, "--log-level", "debug", "--log-format", "json"},
		transport.WithCommandStderrWriter(stderr))
	c, _ := connect(t, tr)
	fs.WaitConnected()

	// One call per secret, so the message's truncation of long arguments
	// cannot hide a leak.
	for i, text := range texts {
		call := rvStart(c, t.Context(), text, "")
		id := rvPostedID(t, fs.WaitPosts(i+1))
		fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
		if res := call.wait(t); res.IsError {
			t.Fatalf("corpus call %d refused: %s", i, resultText(res))
		}
		fs.WaitUpdates(i + 1)
	}
	if err := c.Close(); err != nil {
		t.Logf("close: %v", err)
	}

	var slack strings.Builder
	for _, vs := range [][]url.Values{fs.Posts(), fs.Updates(), fs.Ephemerals()} {
		for _, v := range vs {
			fmt.Fprintln(&slack, v.Encode(), v)
		}
	}
	where := map[string]string{"slack": slack.String(), "logs": stderr.String()}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(db + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		where["audit db"+suffix] += string(b)
	}
	if !strings.Contains(where["logs"], "review posted to slack") {
		t.Fatalf("logs do not look like toolgate's debug logs:\n%s", where["logs"])
	}
	for i, s := range secrets {
		for name, text := range where {
			if strings.Contains(text, s) || strings.Contains(text, url.QueryEscape(s)) {
				t.Errorf("corpus entry %d (%.12q...) leaked into the %s", i, s, name)
			}
		}
	}
}

// TestServeServerSecretsStayOut: a stdio server given a token through its
// env (${MY_GH_TOKEN}) that fails printing it to stderr: the agent's error,
// the audit log and toolgate's log (debug) hold neither the token nor a
// credential-shaped value it printed; the rest of its words are there.
func TestServeServerSecretsStayOut(t *testing.T) {
	const token, ghp = "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "ghp_SECRETSECRETSECRETSECRETSECRET1234"
	dir := t.TempDir()
	rules := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(rules, []byte("version: 1\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "audit.db")
	script := `echo "could not connect as app using $GITHUB_TOKEN and ` + ghp + `" >&2; exit 1`
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: sh\n    args: [-c, %q]\n    env: {GITHUB_TOKEN: \"${MY_GH_TOKEN}\"}\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n",
		script, rules, db))
	stderr := &toolgatetest.SyncBuffer{}
	tr := transport.NewStdioWithOptions(toolgateBin, []string{"MY_GH_TOKEN=" + token},
		[]string{"serve", "--config", cfg, "--log-level", "debug"}, transport.WithCommandStderrWriter(stderr))
	c, _ := connect(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, "up__anything", map[string]any{}, "")
	text := ""
	if err != nil {
		text = err.Error()
	} else {
		text = resultText(res)
	}
	export := rvCLI(t, nil, "audit", "export", "--db", db, "--format", "jsonl")
	for what, s := range map[string]string{"the agent's error": text, "the audit log": export, "toolgate's log": stderr.String()} {
		if strings.Contains(s, token) || strings.Contains(s, "SECRETSECRET") {
			t.Errorf("%s holds the server's secret:\n%s", what, s)
		}
	}
	if !strings.Contains(stderr.String(), "could not connect as app using") {
		t.Errorf("the log lost the server's words:\n%s", stderr.String())
	}
}
