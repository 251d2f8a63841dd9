package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeTwoPersonReview: a rule that wants two approvers from Slack,
// escalating to a group after a second: the escalation mentions the group
// in the message's thread; the terminal cannot answer; one approval counts
// without running the call; the same approver twice is turned away; the
// second approver runs it, and the log names both.
func TestServeTwoPersonReview(t *testing.T) {
	const second = "U0SECOND"
	fs, c, db, stderr := startTwoPerson(t, "    review_channels: [slack]\n    escalate_after: 1s\n    escalate_to: [S0SRE]\n",
		fmt.Sprintf("approvers: [%s, %s]", rvApprover, second))

	call := rvStart(c, t.Context(), "two people agreed", "")
	post := fs.WaitPosts(1)
	id := rvPostedID(t, post)
	toolgatetest.EventuallyWithin(t, "the escalation in the thread", 20*time.Second, func() bool {
		for _, p := range fs.Posts() {
			if p.Get("thread_ts") != "" && strings.Contains(p.Get("text"), "<!subteam^S0SRE>") {
				return true
			}
		}
		return false
	})
	if out := rvCLIFail(t, "review", "approve", id, "--db", db); !strings.Contains(out, "slack only") {
		t.Errorf("a terminal answer to a Slack-only review: %s", out)
	}
	fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
	if eph := fs.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "1 of 2 approvals") {
		t.Errorf("first approver told: %v", eph)
	}
	fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
	if eph := fs.WaitEphemerals(2); !strings.Contains(eph.Get("text"), "another approver must") {
		t.Errorf("same approver again told: %v", eph)
	}
	secondApproverRuns(t, fs, call, db, id, rvApprover, second, stderr)
}

// TestServeTwoPersonOnePerson: `approvals: 2` wants two people, not two
// channels: rita approves in Slack (her Slack user mapped to her) and then
// on the terminal as the same account; the second approval is refused as
// hers already, the call waits, and another approver runs it.
func TestServeTwoPersonOnePerson(t *testing.T) {
	const rita, other = "U0RITA", "U0OTHER"
	account := reviewAccount(os.Getuid())
	fs, c, db, stderr := startTwoPerson(t, "",
		fmt.Sprintf("approvers: [%s, %s], users: {%s: %q, %s: someone-else}", rita, other, rita, account, other))

	call := rvStart(c, t.Context(), "two people agreed", "")
	id := rvPostedID(t, fs.WaitPosts(1))
	fs.Click(rvClick(rita, review.ActionApprove, id, ""))
	if eph := fs.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "1 of 2 approvals") {
		t.Errorf("rita told: %v", eph)
	}
	if out := rvCLIFail(t, "review", "approve", id, "--db", db); !strings.Contains(out, "already approved by "+account) {
		t.Errorf("rita again, on the terminal: %s", out)
	}
	secondApproverRuns(t, fs, call, db, id, rita, other, stderr)
}

// TestServeTwoPersonNotTheAgentsUser: over stdio, the agent's user
// (elicitation) and a terminal approval by the same OS account are not two
// approvers: a rule wanting two over [elicitation, cli] does not ask the
// agent's client (which here approves anything), the terminal's approval
// counts as one of two, the same account again is refused, and its
// denial ends the review without the call running.
func TestServeTwoPersonNotTheAgentsUser(t *testing.T) {
	dir := t.TempDir()
	rules := strings.Replace(rvRules, "    reason: echoing needs a human\n", "    reason: echoing needs a human\n    approvals: 2\n", 1)
	rf := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rf, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "audit.db")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n"+
		"review:\n  timeout: 60s\n  channels: [elicitation, cli]\n", upstreamBin, rf, db))
	stderr := &toolgatetest.SyncBuffer{}
	c, _ := connect(t, transport.NewStdioWithOptions(toolgateBin, nil, []string{"serve", "--config", cfg},
		transport.WithCommandStderrWriter(stderr)), client.WithElicitationHandler(approvingUser{}))
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()

	call := rvStart(c, t.Context(), "two people?", "")
	var id string
	toolgatetest.EventuallyWithin(t, "the review", 20*time.Second, func() bool {
		lines := strings.Split(rvCLI(t, nil, "review", "list", "--db", db), "\n")
		if len(lines) > 1 && len(strings.Fields(lines[1])) > 0 {
			id = strings.Fields(lines[1])[0]
		}
		return id != ""
	})
	if out := rvCLI(t, nil, "review", "approve", id, "--db", db); !strings.Contains(out, "1 of 2 approvals") {
		t.Errorf("the terminal's approval: %s", out)
	}
	account := reviewAccount(os.Getuid())
	if out := rvCLIFail(t, "review", "approve", id, "--db", db); !strings.Contains(out, "already approved by "+account) {
		t.Errorf("the same account again: %s", out)
	}
	rvCLI(t, nil, "review", "deny", id, "--db", db, "--reason", "one person")
	if res := call.wait(t); !res.IsError || resultText(res) == "two people?" {
		t.Fatalf("the call ran on one person's approval: %s", resultText(res))
	}
	if r := rvAuditRow(t, db, id); r.Review == nil || r.Review.Approved || r.Review.Reviewer != "cli:"+account {
		t.Errorf("audit review: %+v", r.Review)
	}
}

// approvingUser is an agent's client that approves every review question.
type approvingUser struct{}

func (approvingUser) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"approve": true}}}, nil
}

// startTwoPerson serves upstream's echo behind a rule wanting two
// approvers (ruleExtra: more YAML lines of the rule), with Slack (the
// fake; slackExtra: more keys of review.slack) and the terminal as
// channels.
func startTwoPerson(t *testing.T, ruleExtra, slackExtra string) (*slackfake.Server, *client.Client, string, *toolgatetest.SyncBuffer) {
	return startSlackRules(t, `  - name: two-person
    match: 'tool.name == "echo"'
    action: review
    reason: needs two people
    approvals: 2
`+ruleExtra, slackExtra)
}

// startSlackRules serves upstream's echo under rules (the YAML items of a
// rule file's rules: list; anything else is allowed), with Slack (the
// fake; slackExtra: more keys of review.slack) and the terminal as
// channels. It returns the fake, the agent's client, the audit DB and
// serve's stderr.
func startSlackRules(t *testing.T, rules, slackExtra string) (*slackfake.Server, *client.Client, string, *toolgatetest.SyncBuffer) {
	t.Helper()
	fs := slackfake.New(t)
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\ndefault: allow\nrules:\n"+rules), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "audit.db")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n"+
		"review:\n  timeout: 60s\n  channels: [slack, cli]\n  slack: {channel: '#approvals', %s, api_url: %q}\n",
		upstreamBin, rulesFile, db, slackExtra, fs.APIURL()))
	stderr := &toolgatetest.SyncBuffer{}
	c, _ := connect(t, transport.NewStdioWithOptions(toolgateBin, rvSlackEnv, []string{"serve", "--config", cfg},
		transport.WithCommandStderrWriter(stderr)))
	fs.WaitConnected()
	return fs, c, db, stderr
}

// secondApproverRuns checks that call id still waits after first's
// approval, then has second approve it: the call runs, and the log names
// both approvers.
func secondApproverRuns(t *testing.T, fs *slackfake.Server, call *rvCall, db, id, first, second string, stderr *toolgatetest.SyncBuffer) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()
	if !call.pending() {
		t.Fatalf("one approver ran a two-person call: %s", resultText(call.wait(t)))
	}
	fs.Click(rvClick(second, review.ActionApprove, id, ""))
	if res := call.wait(t); res.IsError || resultText(res) != "two people agreed" {
		t.Fatalf("approved call: %s", resultText(res))
	}
	if r := rvAuditRow(t, db, id); r.Review == nil || r.Review.Reviewer != first+" + "+second {
		t.Fatalf("audit review: %+v", r.Review)
	}
}
