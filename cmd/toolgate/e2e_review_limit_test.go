package main

import (
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestServeReviewFloodLimited: an agent that sends call after call needing
// review (a prompt-injected agent hoping one is approved in haste) gets at
// most review.max_pending of them in front of reviewers; the next is
// refused at once, without a review, and recorded so; once a review ends
// the session may ask again.
func TestServeReviewFloodLimited(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  hold: 50s\n  channels: [cli]\n  max_pending: 2\n")
	c, _, _ := startStdio(t, cfg)
	a := rvStart(c, t.Context(), "a", "")
	b := rvStart(c, t.Context(), "b", "")
	open := rvWaitPending(t, db, 2)

	res, err := callTool(t.Context(), c, "up__echo", map[string]any{"text": "c"}, "")
	if err != nil {
		t.Fatal(err)
	}
	text := resultText(res)
	if !res.IsError || !strings.Contains(text, "2 reviews of your calls are already waiting") || !strings.Contains(text, "review.max_pending") {
		t.Fatalf("the third call: isError %v: %s", res.IsError, text)
	}
	if r := rvAuditRow(t, db, rvDecisionID.FindStringSubmatch(text)[1]); r.Status != toolgate.StatusRefused || r.Review == nil || r.Review.Channel != toolgate.ChannelLimit {
		t.Fatalf("the third call's row: %s %+v", r.Status, r.Review)
	}
	if ids := rvWaitPending(t, db, 2); len(ids) != 2 {
		t.Fatalf("pending reviews: %v", ids)
	}

	for _, id := range open {
		rvCLI(t, nil, "review", "approve", id, "--db", db)
	}
	for _, rc := range []*rvCall{a, b} {
		if r := rc.wait(t); r.IsError {
			t.Fatalf("approved call: %s", resultText(r))
		}
	}
	d := rvStart(c, t.Context(), "d", "")
	ids := rvWaitPending(t, db, 1)
	rvCLI(t, nil, "review", "approve", ids[0], "--db", db)
	if r := d.wait(t); r.IsError || resultText(r) != "d" {
		t.Fatalf("a call after the reviews ended: %s", resultText(r))
	}
}

// TestServeReviewFloodAcrossSessions: over HTTP the limit is the
// requester's, not the session's: an agent that ends its session, with
// its reviews held, and opens another gets no more reviews in front of
// reviewers.
func TestServeReviewFloodAcrossSessions(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  hold: 1s\n  channels: [cli]\n  max_pending: 2\n")
	g := startHTTPProc(t, cfg)
	first := httpClient(t, g.base+"/mcp")
	for _, text := range []string{"a", "b"} {
		res, err := callTool(t.Context(), first, "up__echo", map[string]any{"text": text}, "")
		if err != nil || !res.IsError || !heldReviewID.MatchString(resultText(res)) {
			t.Fatalf("call %s: %v: %s", text, err, resultText(res))
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := httpClient(t, g.base+"/mcp")
	res, err := callTool(t.Context(), second, "up__echo", map[string]any{"text": "c"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := resultText(res); !res.IsError || !strings.Contains(text, "review.max_pending") {
		t.Fatalf("a call in a new session: isError %v: %s", res.IsError, text)
	}
	if ids := rvWaitPending(t, db, 2); len(ids) != 2 {
		t.Fatalf("pending reviews: %v", ids)
	}
}
