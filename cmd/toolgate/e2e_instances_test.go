package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeTwoInstancesOneSlackApp: two toolgate processes (two stdio
// sessions) on one audit log and one Slack app, both connected over Socket
// Mode. Agent A's call is under review; B's start leaves the review alone;
// Slack delivers the approval to B's connection; B records it in the
// store, and A, which holds the call, sees it there and runs the call.
func TestServeTwoInstancesOneSlackApp(t *testing.T) {
	fs := slackfake.New(t)
	cfg, db := rvConfig(t, fs, "  timeout: 60s\n  channels: [slack, cli]\n")
	a, _, stderrA := startStdio(t, cfg, rvSlackEnv...)
	fs.WaitConnected()
	connA := fs.ConnectionIDs()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	call := rvStart(a, ctx, "from instance A", "")
	id := rvPostedID(t, fs.WaitPosts(1))

	b, _, stderrB := startStdio(t, cfg, rvSlackEnv...)
	toolgatetest.EventuallyWithin(t, "instance B's Socket Mode connection", 20*time.Second, func() bool { return fs.Connections() == 2 })
	if out := mustCall(t, b, "up__stats", nil); !strings.Contains(out, "pid") {
		t.Fatalf("instance B: %s", out)
	}
	// B answered a call, so its start-up sweep of orphan reviews has run.
	if got := rvWaitPending(t, db, 1); got[0] != id {
		t.Fatalf("pending after B started: %v, want [%s]", got, id)
	}
	if !call.pending() {
		t.Fatalf("A's call ended when B started: %s", resultText(call.wait(t)))
	}
	if n := len(fs.Updates()); n != 0 {
		t.Fatalf("B's start edited %d review messages", n)
	}

	connB := slices.DeleteFunc(fs.ConnectionIDs(), func(c int) bool { return slices.Contains(connA, c) })
	if len(connA) != 1 || len(connB) != 1 {
		t.Fatalf("connections: A %v, B %v", connA, connB)
	}
	fs.ClickVia(connB[0], rvClick(rvApprover, review.ActionApprove, id, ""))
	if res := call.wait(t); res.IsError || resultText(res) != "from instance A" {
		t.Fatalf("A's call after B took the approval: isError %v: %s", res.IsError, resultText(res))
	}
	if !strings.Contains(stderrB.String(), "slack verdict stored") || strings.Contains(stderrA.String(), "slack verdict stored") {
		t.Errorf("the click did not reach B alone\nA:\n%s\nB:\n%s", stderrA.String(), stderrB.String())
	}
	r := rvAuditRow(t, db, id)
	if rv := r.Review; r.Status != toolgate.StatusOK || rv == nil || !rv.Approved || rv.Reviewer != rvApprover || rv.Channel != toolgate.ChannelSlack {
		t.Fatalf("audit row: status %s, review %+v", r.Status, r.Review)
	}
	// A, which posted the message, closes it.
	if up := fs.WaitUpdates(1); up.Get("ts") != slackfake.FirstTS || !slackfake.ContainsText(up, "Approved") {
		t.Errorf("message update = %v", up)
	}
	rvCLI(t, nil, "audit", "verify", "--db", db)
}
