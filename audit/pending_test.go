package audit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestPendingFor: a retry finds the review of the same call not yet over
// (same server, tool, session, rules version and arguments), the oldest
// first, never itself nor a later call's; not another call's, nor one that
// is over. The retry is not listed for review and takes no answer.
// ReviewEnded says when that is: an approval alone is not the end, its
// grant is.
func TestPendingFor(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	d := testDecision(toolgate.Review)
	begin := func(id string, n int, mut func(*toolgate.Decision)) {
		t.Helper()
		c, d := testCall(id, n), d
		if mut != nil {
			mut(&d)
		}
		if err := s.Begin(ctx, c, d); err != nil {
			t.Fatal(err)
		}
	}
	find := func(id string, n int) string {
		t.Helper()
		got, ok, err := s.PendingFor(ctx, testCall(id, n), d)
		if err != nil || ok != (got != "") {
			t.Fatalf("PendingFor(%s) = %q, %v, %v", id, got, ok, err)
		}
		return got
	}

	begin("01P0", 0, nil)
	if got := find("01P0", 0); got != "" {
		t.Fatalf("the review itself was found: %s", got)
	}
	begin("01P1", 1, nil)                                                     // other arguments
	begin("01P2", 0, func(d *toolgate.Decision) { d.Version = "v2" })         // other rules
	begin("01P3", 0, func(d *toolgate.Decision) { d.Action = toolgate.Deny }) // not a review
	begin("01P4", 0, nil)                                                     // the retry
	if got := find("01P4", 0); got != "01P0" {
		t.Fatalf("the retry found %q, want 01P0", got)
	}
	// Neither waits on the other: the earlier asks the reviewers, and is
	// the one review listed and answered.
	if got := find("01P0", 0); got != "" {
		t.Fatalf("the earlier call found the later one: %s", got)
	}
	if got := strings.Join(toolgatetest.PendingIDs(t, s), " "); got != "01P0 01P2 01P1" {
		t.Fatalf("pending reviews %s, want 01P0 01P2 01P1 (not the retry 01P4)", got)
	}
	if ok, err := s.SubmitVerdict(ctx, "01P4", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "web"}); ok || !errors.Is(err, ErrFollows) || !strings.Contains(err.Error(), "review 01P0") {
		t.Fatalf("an answer to the retry = %v, %v; want ErrFollows naming 01P0", ok, err)
	}
	if got := find("01P1", 1); got != "" {
		t.Fatalf("a call with other arguments found %q", got)
	}
	other := testCall("01P5", 0)
	other.SessionID = "another-session"
	if err := s.Begin(ctx, other, d); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.PendingFor(ctx, other, d); ok {
		t.Fatalf("a call of another session found %q", got)
	}
	if _, _, err := s.PendingFor(ctx, testCall("01NONE", 0), d); err == nil {
		t.Fatal("PendingFor of a call never recorded succeeded")
	}

	if ended, err := s.ReviewEnded(ctx, "01P0"); ended || err != nil {
		t.Fatalf("ReviewEnded of a waiting review = %v, %v", ended, err)
	}
	if ok, err := s.SubmitVerdict(ctx, "01P0", toolgate.Verdict{Approved: true, Reviewer: "alice", Channel: "cli"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := find("01P4", 0); got != "01P0" {
		t.Fatalf("a review approved but not yet granted was not found: %q", got)
	}
	if ended, err := s.ReviewEnded(ctx, "01P0"); ended || err != nil {
		t.Fatalf("ReviewEnded of an approval with no grant yet = %v, %v", ended, err)
	}
	if _, err := s.IssueGrant(ctx, "01P0", ScopeOnce, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := find("01P4", 0); got != "" {
		t.Fatalf("a review that is over was found: %s", got)
	}
	if ended, err := s.ReviewEnded(ctx, "01P0"); !ended || err != nil {
		t.Fatalf("ReviewEnded of a granted review = %v, %v", ended, err)
	}
	if ended, err := s.ReviewEnded(ctx, "01P3"); !ended || err != nil {
		t.Fatalf("ReviewEnded of a refused call = %v, %v", ended, err)
	}
	if _, err := s.ReviewEnded(ctx, "01NONE"); err == nil {
		t.Fatal("ReviewEnded of a call never recorded succeeded")
	}
}
