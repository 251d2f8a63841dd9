package main

import (
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
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

// TestServeTwinCallsOneReview: two identical calls sent at once get one
// review between them, never two that wait on each other: once both are
// recorded, `toolgate review list` shows one review, an answer to the
// other call by ID is refused, and approving the one review runs one call
// while the other is told it needs a review of its own. No approval is
// recorded on a call that did not run.
func TestServeTwinCallsOneReview(t *testing.T) {
	cfg, db := rvConfig(t, nil, "  timeout: 60s\n  hold: 30s\n  channels: [cli]\n")
	c, _, _ := startStdio(t, cfg)
	args := map[string]any{"text": "needs approval"}
	type answer struct {
		text  string
		isErr bool
	}
	out := make(chan answer, 2)
	for range 2 {
		go func() {
			res, err := callTool(t.Context(), c, "up__echo", args, "")
			if err != nil {
				out <- answer{err.Error(), true}
				return
			}
			out <- answer{resultText(res), res.IsError}
		}()
	}
	toolgatetest.EventuallyWithin(t, "both calls recorded", 20*time.Second, func() bool { return len(records(t, db)) == 2 })
	ids := rvWaitPending(t, db, 1)
	reviewID := ids[0]
	var other string
	for _, r := range records(t, db) {
		if r.ID != reviewID {
			other = r.ID
		}
	}
	if msg := rvCLIFail(t, "review", "approve", other, "--db", db); !strings.Contains(msg, "waits on review "+reviewID) {
		t.Fatalf("approving the call that waits: %s", msg)
	}
	rvCLI(t, nil, "review", "approve", reviewID, "--db", db)
	var ran, refused int
	for range 2 {
		select {
		case a := <-out:
			switch {
			case !a.isErr && a.text == "needs approval":
				ran++
			case a.isErr && strings.Contains(a.text, "review "+reviewID+" of the same call was approved for one run"):
				refused++
			default:
				t.Errorf("a call answered: isError %v: %s", a.isErr, a.text)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a call did not return")
		}
	}
	if ran != 1 || refused != 1 {
		t.Fatalf("%d calls ran, %d refused; want 1 and 1", ran, refused)
	}
	if r := rvAuditRow(t, db, other); r.Status != toolgate.StatusRefused || r.Review == nil || r.Review.Approved || r.Review.Reviewer != "" {
		t.Fatalf("the call that waited: %s %+v", r.Status, r.Review)
	}
	rvCLI(t, nil, "audit", "verify", "--db", db)
}
