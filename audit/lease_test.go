package audit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// TestLeaseKeepsLiveOwnersReviews: processes sharing one DB expire only the
// reviews of an owner whose lease ran out, never a live one's.
func TestLeaseKeepsLiveOwnersReviews(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	a := openTest(t, path, Options{Owner: "owner-a", LeaseTTL: 30 * time.Second})
	b := openTest(t, path, Options{Owner: "owner-b", LeaseTTL: 30 * time.Second})
	for _, c := range []struct {
		s  *Store
		id string
	}{{a, "01A1"}, {b, "01B1"}} {
		if err := c.s.Begin(ctx, testCall(c.id, 0), testDecision(toolgate.Review)); err != nil {
			t.Fatal(err)
		}
	}
	// A second session starting up: both owners are alive.
	for _, s := range []*Store{a, b} {
		if exp, err := s.ExpireOrphanReviews(ctx, s.o.Now()); err != nil || len(exp) != 0 {
			t.Fatalf("ExpireOrphanReviews with both owners alive = %+v, %v", exp, err)
		}
	}
	if p, _ := b.PendingReviews(ctx); len(p) != 2 {
		t.Fatalf("pending = %d, want 2", len(p))
	}
	// a stops renewing (it died): once its lease has run out, b expires its
	// review, and only that one.
	later := b.o.Now().Add(31 * time.Second)
	if _, err := rawDB(t, path).ExecContext(ctx, `UPDATE review_owners SET heartbeat_at = ? WHERE owner = 'owner-b'`, later.UnixNano()); err != nil {
		t.Fatal(err)
	}
	exp, err := b.ExpireOrphanReviews(ctx, later)
	if err != nil || len(exp) != 1 || exp[0].Call.ID != "01A1" {
		t.Fatalf("ExpireOrphanReviews after a's lease ran out = %+v, %v", exp, err)
	}
	if v, decided, _ := b.ReviewVerdict(ctx, "01A1"); !decided || v.Approved || v.Channel != toolgate.ChannelExpired {
		t.Fatalf("a's review: %+v decided=%v", v, decided)
	}
	if _, decided, _ := b.ReviewVerdict(ctx, "01B1"); decided {
		t.Fatal("b's own review was expired")
	}
}

// TestLeaseReleasedAtClose: a store that closes gives up its lease, so its
// leftover reviews are expired by the next process at once.
func TestLeaseReleasedAtClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	a, err := Open(ctx, path, Options{Owner: "owner-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(ctx, testCall("01A1", 0), testDecision(toolgate.Review)); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openTest(t, path, Options{Owner: "owner-b"})
	if exp, err := b.ExpireOrphanReviews(ctx, b.o.Now()); err != nil || len(exp) != 1 {
		t.Fatalf("ExpireOrphanReviews = %+v, %v", exp, err)
	}
}

// TestReasonRedacted: a rule's reason that quotes a secret from the
// arguments, and an upstream's error that quotes one (a URL it failed to
// reach), are masked before they are stored or chained.
func TestReasonRedacted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, Options{RedactText: func(s string) string { return strings.ReplaceAll(s, "ghp_secret123", "[REDACTED]") }})
	d := testDecision(toolgate.Allow)
	d.Reason = "shell command may change state: curl -H 'Authorization: ghp_secret123' x"
	d.Error = "no such key: ghp_secret123"
	if err := s.Begin(ctx, testCall("01S1", 0), d); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, "01S1", toolgate.Outcome{Status: toolgate.StatusFailed, Error: `Post "https://mcp.example/ghp_secret123/sse": connection refused`}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, "01S1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Reason, "ghp_secret123") || !strings.Contains(r.Reason, "[REDACTED]") || strings.Contains(r.EvalError, "ghp_secret123") ||
		r.Outcome == nil || !strings.Contains(r.Outcome.Error, "mcp.example/[REDACTED]/sse") {
		t.Fatalf("stored reason %q, error %q, outcome %+v", r.Reason, r.EvalError, r.Outcome)
	}
	var bodies string
	if err := rawDB(t, path).QueryRowContext(ctx, `SELECT group_concat(body) FROM events`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(bodies, "ghp_secret123") {
		t.Fatal("the secret is in the hash-chained events")
	}
}

// TestRefusedClickChained: a refused click is in the chain, leaves the row
// as it was, and the log still verifies.
func TestRefusedClickChained(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, Options{})
	if err := s.Begin(ctx, testCall("01C1", 0), testDecision(toolgate.Review)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRefusedClick(ctx, "01C1", "U0STRANGER", "slack", "not an approver"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRefusedClick(ctx, "01NONE", "U0STRANGER", "slack", "forged"); err == nil {
		t.Fatal("a click on no call was recorded")
	}
	var n int
	if err := rawDB(t, path).QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = 'click' AND body LIKE '%U0STRANGER%not an approver%'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("click events = %d, %v", n, err)
	}
	if r, _ := s.Get(ctx, "01C1"); r.Status != toolgate.StatusPending || r.Review != nil {
		t.Fatalf("the click changed the row: %s %+v", r.Status, r.Review)
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
