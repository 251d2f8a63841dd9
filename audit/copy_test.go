package audit

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit/pgtest"
)

// TestCopyToPostgres copies a SQLite log holding every kind of row into
// PostgreSQL: the copy verifies to the same head, keeps answering queries,
// and new calls chain after the copied ones.
func TestCopyToPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	src := openTest(t, filepath.Join(t.TempDir(), "audit.db"), Options{})
	if err := src.RecordRulesetLoad(ctx, RulesetLoad{Version: "sha256:e0dfa70eb69d", Label: "l", File: "r.yaml", Source: []byte("rules: []\n")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.CreateToken(ctx, "alice", []string{"dev"}, ScopeAgent, time.Time{}, "admin"); err != nil {
		t.Fatal(err)
	}
	for i, a := range []toolgate.Action{toolgate.Allow, toolgate.Deny, toolgate.Review, toolgate.Review} {
		id := "01CP" + string(rune('A'+i))
		if err := src.Begin(ctx, testCall(id, i), testDecision(a)); err != nil {
			t.Fatal(err)
		}
		if a == toolgate.Allow {
			if err := src.Finish(ctx, id, toolgate.Outcome{Status: toolgate.StatusOK, Duration: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := src.Resolve(ctx, "01CPC", toolgate.Verdict{Approved: true, Reviewer: "bob", Channel: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	dst := openTest(t, dsn, Options{})
	rep, err := dst.CopyFrom(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Copy.Events < 8 || rep.Rows["calls"] != 4 || rep.Rows["tokens"] != 1 || rep.Rows["rulesets"] != 1 {
		t.Fatalf("copy report = %+v", rep)
	}
	r, err := dst.Get(ctx, "01CPC")
	if err != nil || r.Review == nil || !r.Review.Approved || r.Review.Reviewer != "bob" {
		t.Fatalf("copied call = %+v, %v", r, err)
	}
	if ps, err := dst.PendingReviews(ctx); err != nil || len(ps) != 1 || ps[0].Call.ID != "01CPD" {
		t.Fatalf("pending after copy = %+v, %v", ps, err)
	}
	if err := dst.Begin(ctx, testCall("01CPE", 9), testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	after, err := dst.Verify(ctx)
	if err != nil || !after.OK() || after.Events != rep.Copy.Events+2 { // its decision and its context
		t.Fatalf("verify after a new call = %+v, %v", after, err)
	}
	// A row's seq is its decision event's: the new call's is the copied
	// events' numbers gone on.
	if last, err := dst.LastSeq(ctx); err != nil || last != after.Events {
		t.Fatalf("LastSeq = %d, %v; want %d (the copied events' numbers go on)", last, err, after.Events)
	}
	if _, err := dst.CopyFrom(ctx, src); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("second copy: err = %v, want ErrNotEmpty", err)
	}
}
