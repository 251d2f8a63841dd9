package main

import (
	"fmt"
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

// TestServeTwoPersonReview: a rule that wants two approvers from Slack,
// escalating to a group after a second: the escalation mentions the group
// in the message's thread; the terminal cannot answer; one approval counts
// without running the call; the same approver twice is turned away; the
// second approver runs it, and the log names both.
func TestServeTwoPersonReview(t *testing.T) {
	const second = "U0SECOND"
	fs := slackfake.New(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(`version: 1
default: allow
rules:
  - name: two-person
    match: 'tool.name == "echo"'
    action: review
    reason: needs two people
    approvals: 2
    review_channels: [slack]
    escalate_after: 1s
    escalate_to: [S0SRE]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "audit.db")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n"+
		"review:\n  timeout: 60s\n  channels: [slack, cli]\n  slack: {channel: '#approvals', approvers: [%s, %s], api_url: %q}\n",
		upstreamBin, rules, db, rvApprover, second, fs.APIURL()))
	stderr := &toolgatetest.SyncBuffer{}
	c, _ := connect(t, transport.NewStdioWithOptions(toolgateBin, rvSlackEnv, []string{"serve", "--config", cfg},
		transport.WithCommandStderrWriter(stderr)))
	fs.WaitConnected()

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
	if !call.pending() {
		t.Fatalf("one approver ran a two-person call: %s", resultText(call.wait(t)))
	}
	fs.Click(rvClick(second, review.ActionApprove, id, ""))
	if res := call.wait(t); res.IsError || resultText(res) != "two people agreed" {
		t.Fatalf("approved call: %s", resultText(res))
	}
	if r := rvAuditRow(t, db, id); r.Review == nil || r.Review.Reviewer != rvApprover+" + "+second {
		t.Fatalf("audit review: %+v", r.Review)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
}
