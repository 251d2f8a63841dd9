package main

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/toolgate/toolgate"
)

// TestServeHTTPAgentCannotAnswerItsReview: over HTTP, an agent that opens
// its own session (it holds the bearer token, or none is needed) and says
// its client can ask its user is not asked to approve its own call unless
// review.channels lists elicitation: the review waits for a reviewer, and
// the call comes back pending. Listed, serve warns that whoever holds the
// credential can answer.
func TestServeHTTPAgentCannotAnswerItsReview(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  hold: 1s\n")
	g := startHTTPProc(t, cfg)
	c := httpClient(t, g.base+"/mcp", client.WithElicitationHandler(approvingUser{}))
	res, err := callTool(t.Context(), c, "up__echo", map[string]any{"text": "self-approved?"}, "")
	if err != nil {
		t.Fatal(err)
	}
	text := resultText(res)
	if !res.IsError || !heldReviewID.MatchString(text) || !strings.Contains(text, "via a terminal") {
		t.Fatalf("the call: isError %v: %s", res.IsError, text)
	}
	if r := rvAuditRow(t, db, rvDecisionID.FindStringSubmatch(text)[1]); r.Status != toolgate.StatusPending || r.Review != nil && r.Review.Channel == toolgate.ChannelElicitation {
		t.Fatalf("the call's row: %s %+v", r.Status, r.Review)
	}
	if strings.Contains(g.stderr.String(), "lists elicitation while serving HTTP") {
		t.Error("warned of a channel not listed")
	}

	listed, _ := rvConfig(t, nil, "  timeout: 60s\n  channels: [elicitation, cli]\n")
	g = startHTTPProc(t, listed)
	if !strings.Contains(g.stderr.String(), "lists elicitation while serving HTTP") {
		t.Errorf("no warning at start with elicitation listed:\n%s", g.stderr)
	}
}
