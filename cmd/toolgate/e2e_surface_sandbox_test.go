package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/gate"
)

// TestServeSandboxRuleHoldsForEveryKind: a rule that auto-approves
// confident calls only in sandbox profile read-only, over an upstream
// that runs unconfined. Its tool call, resource read, prompt and
// completion are each refused before any review, however confident the
// agent says it is, none of the resource's content reaches the agent, and
// each is recorded denied by toolgate:sandbox with no profile claimed.
// (Before, only the tool call was refused: the read was auto-approved and
// ran unconfined.)
func TestServeSandboxRuleHoldsForEveryKind(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "passwd")
	if err := os.WriteFile(secret, []byte("root:x:0:0"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: review\nrules:\n"+
		"  - {name: a-confident-read-only, match: 'tool.server == \"a\"', action: review, auto_approve_at: 0.9, sandbox: read-only}\n")
	db := filepath.Join(dir, "audit.db")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  a: {command: %q, args: [--name, a, --files, --prompts, greet]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nreview: {timeout: 2s, channels: [cli]}\n",
		upstreamBin, rules, db))
	c, _, _ := startStdio(t, cfg)
	confident := &mcp.Meta{AdditionalFields: map[string]any{"toolgate/confidence": 1.0}}
	refusedBySandbox := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), gate.RuleSandbox) || !strings.Contains(err.Error(), `cannot run`) || !strings.Contains(err.Error(), `"read-only"`) {
			t.Errorf("%s: %v; want a refusal by %s naming the profile", what, err, gate.RuleSandbox)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments, req.Params.Meta = "a__read", map[string]any{"path": secret}, confident
	res, err := c.CallTool(ctx, req)
	if err != nil || !res.IsError || !strings.Contains(resultText(res), gate.RuleSandbox) {
		t.Errorf("tool call: %v %v; want a refusal by %s", res, err, gate.RuleSandbox)
	}

	read, err := c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "file://" + secret, Meta: confident}})
	refusedBySandbox("resources/read", err)
	if read != nil && fmt.Sprint(read.Contents) != "[]" {
		t.Errorf("resources/read served %v", read.Contents)
	}
	_, err = c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "a__greet", Meta: confident}})
	refusedBySandbox("prompts/get", err)
	_, err = c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{
		Ref: mcp.PromptReference{Type: "ref/prompt", Name: "a__greet"}, Argument: mcp.CompleteArgument{Name: "x", Value: "y"}}})
	refusedBySandbox("completion/complete", err)

	recs := idAuditList(t, db)
	kinds := map[string]bool{}
	for _, r := range recs {
		kinds[r.KindName()] = true
		if r.Rule != gate.RuleSandbox || r.Action != toolgate.Deny || r.Sandbox != "" || r.AutoApproved {
			t.Errorf("recorded %s %s: rule %q action %s sandbox %q auto-approved %v; want denied by %s", r.KindName(), r.Name, r.Rule, r.Action, r.Sandbox, r.AutoApproved, gate.RuleSandbox)
		}
	}
	for _, k := range []string{toolgate.KindTool, toolgate.KindResource, toolgate.KindPrompt, toolgate.KindCompletion} {
		if !kinds[k] {
			t.Errorf("no %s call recorded; got %d records", k, len(recs))
		}
	}
}
