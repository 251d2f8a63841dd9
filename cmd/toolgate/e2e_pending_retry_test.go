package main

import (
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// TestServeRetryWaitsOnPendingReview: an agent that retries a held call
// before anyone answered waits on the review already under way: it gets
// "pending" naming the same review, and no second review is started. Once
// approved, the retry (sent right after the approval, before the server
// has turned it into a grant) runs, once.
func TestServeRetryWaitsOnPendingReview(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  hold: 1s\n  channels: [cli]\n")
	c, _, _ := startStdio(t, cfg)
	args := map[string]any{"text": "needs approval"}
	call := func() (string, bool) {
		t.Helper()
		res, err := callTool(t.Context(), c, "up__echo", args, "")
		if err != nil {
			t.Fatal(err)
		}
		return resultText(res), res.IsError
	}

	text, isErr := call()
	m := heldReviewID.FindStringSubmatch(text)
	if !isErr || m == nil {
		t.Fatalf("first call: isError %v: %s", isErr, text)
	}
	reviewID := m[1]

	start := time.Now()
	text, isErr = call()
	if m := heldReviewID.FindStringSubmatch(text); !isErr || m == nil || m[1] != reviewID || !strings.Contains(text, "same arguments runs once") {
		t.Fatalf("retry before anyone answered: isError %v: %s", isErr, text)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("the retry was answered pending after %v, before the 1s hold", d)
	}
	if ids := rvWaitPending(t, db, 1); ids[0] != reviewID {
		t.Fatalf("pending reviews after the retry: %v, want only %s", ids, reviewID)
	}
	retryID := rvDecisionID.FindStringSubmatch(text)[1]
	if r := rvAuditRow(t, db, retryID); r.Status != toolgate.StatusRefused || r.Review == nil ||
		r.Review.Channel != toolgate.ChannelPending || !strings.Contains(r.Review.Reason, reviewID) {
		t.Fatalf("the retry's row: %s %+v", r.Status, r.Review)
	}

	rvCLI(t, nil, "review", "approve", reviewID, "--db", db)
	text, isErr = call()
	if isErr || text != "needs approval" {
		t.Fatalf("retry after the approval: isError %v: %s", isErr, text)
	}
	text, isErr = call()
	if m := heldReviewID.FindStringSubmatch(text); !isErr || m == nil || m[1] == reviewID {
		t.Fatalf("a second retry after the grant's one use: isError %v: %s", isErr, text)
	}

	var ran, held int
	for _, r := range records(t, db) {
		switch {
		case r.Outcome != nil:
			ran++
			if r.Review == nil || r.Review.Channel != toolgate.ChannelGrant || !strings.Contains(r.Review.Reason, "of review "+reviewID) {
				t.Errorf("the call that ran: %+v", r.Review)
			}
		case r.ID == reviewID:
			if r.Status != toolgate.StatusGranted {
				t.Errorf("the held call is %s, want granted", r.Status)
			}
		case r.Status == toolgate.StatusPending:
			held++
		}
	}
	if ran != 1 || held != 1 {
		t.Errorf("%d calls ran, %d reviews pending; want 1 and 1 (the last call's)", ran, held)
	}
	rvCLI(t, nil, "audit", "verify", "--db", db)
}
