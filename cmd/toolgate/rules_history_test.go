package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/toolgatetest"
)

// rhFixture is toolgate serving its built-in tools over stdio with a rules
// file, config and audit log kept outside the workspace.
type rhFixture struct {
	dir, ws, rules, cfg, db string
}

func rhSetup(t *testing.T, rulesYAML, extra string) *rhFixture {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &rhFixture{dir: dir, ws: filepath.Join(dir, "ws"), rules: filepath.Join(dir, "etc", "rules.yaml"),
		cfg: filepath.Join(dir, "etc", "toolgate.yaml"), db: filepath.Join(dir, "state", "audit.db")}
	for p, content := range map[string]string{
		filepath.Join(f.ws, "main.txt"): "hello from the workspace",
		f.cfg: fmt.Sprintf("workspace: {enabled: true, root: %q, command_timeout: 20s}\n%saudit: {path: %q}\nreview: {timeout: 1s, channels: [cli]}\n%s",
			f.ws, rulesLine(f.rules, rulesYAML), f.db, extra),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if rulesYAML != "" {
		if err := os.WriteFile(f.rules, []byte(rulesYAML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// rulesLine is the config's rules section: none (the embedded pack) when
// there is no rules YAML.
func rulesLine(path, rulesYAML string) string {
	if rulesYAML == "" {
		return ""
	}
	return fmt.Sprintf("rules: {file: %q}\n", path)
}

func (f *rhFixture) env() []string {
	return []string{"HOME=" + f.dir, "XDG_STATE_HOME=", "XDG_CACHE_HOME="}
}

// TestServeConfidenceCannotWaiveReview: under the default settings (the
// embedded pack, no thresholds), an agent that claims 0.99 on a call the
// pack reviews still gets a review, and the audit row records the claim
// and that it changed nothing.
func TestServeConfidenceCannotWaiveReview(t *testing.T) {
	f := rhSetup(t, "", "")
	c, _, _ := startStdio(t, f.cfg, f.env()...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const push = "git push origin HEAD:feature-x"
	if d := rules.Default().Evaluate(ctx, workspaceCall(push, nil)); d.Action != toolgate.Review {
		t.Fatalf("the default pack decides %q %s (rule %s), not review: pick another reviewed call", push, d.Action, d.Rule)
	}
	res, err := callTool(ctx, c, "workspace__run_command", map[string]any{"command": push, "_confidence": 0.99}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Fatalf("a reviewed call claiming 0.99 ran without a human: %s", resultText(res))
	}
	recs := records(t, f.db)
	if len(recs) != 1 {
		t.Fatalf("%d audit rows, want 1", len(recs))
	}
	r := recs[0]
	if r.Action != toolgate.Review || r.AutoApproved || r.Confidence == nil || *r.Confidence != 0.99 || r.ConfidenceEffect != toolgate.ConfidenceNone {
		t.Fatalf("audit row: action %s, auto %v, confidence %v, effect %q", r.Action, r.AutoApproved, r.Confidence, r.ConfidenceEffect)
	}
	out := rvCLI(t, nil, "audit", "show", r.ID, "--db", f.db)
	if !strings.Contains(out, "0.99") || !strings.Contains(out, "confidence effect") {
		t.Errorf("audit show does not show the claim and its effect:\n%s", out)
	}
	csv := rvCLI(t, nil, "audit", "export", "--db", f.db, "--format", "csv")
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], ",confidence_effect,meta") || !strings.HasSuffix(lines[1], ",none,") {
		t.Errorf("CSV export:\n%s", csv)
	}
}

// workspaceCall is a run_command call as the built-in workspace server
// gets it.
func workspaceCall(command string, conf *float64) toolgate.Call {
	return toolgate.Call{Server: workspaceSrv, Tool: "run_command", Name: "workspace__run_command",
		Args: map[string]any{"command": command}, Confidence: conf}
}

// TestServeRefusesAutoApproveThatLeavesSandbox: serve does not start on
// rules that would auto-approve calls in a profile with the network.
func TestServeRefusesAutoApproveThatLeavesSandbox(t *testing.T) {
	rulesYAML := "version: 1\nrules:\n  - name: fetch\n    match: 'tool.name == \"run_command\"'\n    action: review\n    auto_approve_at: 0.9\n    sandbox: online\n"
	f := rhSetup(t, rulesYAML, "sandbox: {profiles: {online: {workspace: write, network: true}}}\n")
	cmd := exec.Command(toolgateBin, "serve", "--config", f.cfg)
	cmd.Env = append(os.Environ(), f.env()...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("serve started")
	}
	for _, want := range []string{"(rule fetch)", "auto_approve_at", "sandbox profile online", "it has the network"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serve's refusal does not say %q:\n%s", want, out)
		}
	}
}

// TestServeRulesHistoryRollback: serve with rules v1, edit them to v2 (hot
// reload), see both in `rules history` with their decisions, roll back to
// v1: the file is v1 again, the server decides by it, and the rollback is
// in the (verified) audit log.
func TestServeRulesHistoryRollback(t *testing.T) {
	v1 := "version: 1\nlabel: v1\ndefault: deny\nrules:\n  - {name: reads, match: 'tool.name == \"read_file\"', action: allow}\n"
	v2 := "version: 1\nlabel: v2\ndefault: deny\nrules:\n  - {name: no-reads, match: 'tool.name == \"read_file\"', action: deny}\n"
	f := rhSetup(t, v1, "")
	c, _, _ := startStdio(t, f.cfg, f.env()...)
	read := func() bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := callTool(ctx, c, "workspace__read_file", map[string]any{"path": "main.txt"}, "")
		if err != nil {
			t.Fatal(err)
		}
		return !res.IsError
	}
	if !read() {
		t.Fatal("v1 does not allow read_file")
	}
	if err := os.WriteFile(f.rules, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	toolgatetest.EventuallyWithin(t, "hot reload to v2", 20*time.Second, func() bool { return !read() })

	history := func() []audit.RulesetPeriod {
		t.Helper()
		var h []audit.RulesetPeriod
		out := rvCLI(t, nil, "rules", "history", "--db", f.db, "--output", "json")
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			t.Fatalf("rules history --output json: %v\n%s", err, out)
		}
		return h
	}
	h := history()
	if len(h) != 2 || h[0].Label != "v1" || h[1].Label != "v2" || h[0].To == nil || !h[1].InForce {
		t.Fatalf("history after the edit: %+v", h)
	}
	if h[0].Allow < 1 || h[0].Deny != 0 || h[1].Deny < 1 || h[1].Allow != 0 {
		t.Errorf("decision counts: v1 %d/%d/%d, v2 %d/%d/%d", h[0].Allow, h[0].Deny, h[0].Review, h[1].Allow, h[1].Deny, h[1].Review)
	}
	text := rvCLI(t, nil, "rules", "history", "--db", f.db)
	if !strings.Contains(text, h[0].Version) || !strings.Contains(text, "in force") {
		t.Errorf("rules history:\n%s", text)
	}

	out := rvCLI(t, nil, "rules", "rollback", strings.TrimPrefix(h[0].Version, "sha256:")[:8], "--config", f.cfg)
	if !strings.Contains(out, "rolled "+f.rules+" back to "+h[0].Version) {
		t.Errorf("rollback said: %s", out)
	}
	if b, err := os.ReadFile(f.rules); err != nil || string(b) != v1 {
		t.Fatalf("the rules file after rollback: %q, %v", b, err)
	}
	toolgatetest.EventuallyWithin(t, "hot reload back to v1", 20*time.Second, read)

	h = history()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4 || h[2].Kind != "rollback" || h[2].Version != h[0].Version || h[2].By != "cli:"+me.Username || h[2].Previous != h[1].Version {
		t.Fatalf("history after the rollback: %+v", h)
	}
	if h[3].Kind != "load" || h[3].Version != h[0].Version || !h[3].InForce || h[3].Allow < 1 || h[1].To == nil {
		t.Errorf("the reload after the rollback: %+v (v2 until %v)", h[3], h[1].To)
	}
	if v := rvCLI(t, nil, "audit", "verify", "--db", f.db); !strings.HasPrefix(v, "OK:") {
		t.Errorf("audit verify: %s", v)
	}

	// Rolling back to what the file holds writes nothing; an unknown
	// version is refused.
	if out := rvCLI(t, nil, "rules", "rollback", h[0].Version, "--config", f.cfg); !strings.Contains(out, "nothing written") {
		t.Errorf("rollback to the current version: %s", out)
	}
	if out := rvCLIFail(t, "rules", "rollback", "sha256:ffffffffffff", "--config", f.cfg); !strings.Contains(out, "no such rule set") {
		t.Errorf("rollback to an unknown version: %s", out)
	}
}
