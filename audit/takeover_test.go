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

// A process stalled past its lease (SIGSTOP, a frozen VM) comes back to
// find its reviews ended by another one sharing the log: taken over and
// approved there (a grant for the agent's retry), or refused. Its Resolve
// of the approval it then reads must not start the call: the gate runs a
// call on Resolve's nil, so the one approval would run it twice (once
// here, once on the grant), or run a call the log says never ran.
func TestStalledHolderAfterTakeoverPostgres(t *testing.T) {
	testStalledHolder(t, pgtest.DSN(t), true)
}

func TestStalledHolderAfterExpiry(t *testing.T) {
	testStalledHolder(t, filepath.Join(t.TempDir(), "audit.db"), false)
}

// testStalledHolder: a holds the calls and stalls; b takes its reviews
// over (adopt: only on PostgreSQL) or expires them.
func testStalledHolder(t *testing.T, loc string, adopt bool) {
	ctx := context.Background()
	const ttl = 30 * time.Second
	a := openTest(t, loc, Options{Owner: "owner-a", LeaseTTL: ttl})
	b := openTest(t, loc, Options{Owner: "owner-b", LeaseTTL: ttl})
	approve := toolgate.Verdict{Approved: true, Reviewer: "rita", Channel: "web"}
	d := testDecision(toolgate.Review)
	for i, id := range []string{"01T1", "01T2", "01T3"} {
		if err := a.Begin(ctx, testCall(id, i), d); err != nil {
			t.Fatal(err)
		}
	}
	// 01T3 is answered before a stalls, and not yet acted on.
	if ok, err := b.SubmitVerdict(ctx, "01T3", approve); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// a stalls: b's heartbeat goes on, a's does not.
	later := b.o.Now().Add(ttl + time.Second)
	if _, err := rawDB(t, loc).ExecContext(ctx, `UPDATE review_owners SET heartbeat_at = ? WHERE owner = 'owner-b'`, later.UnixNano()); err != nil {
		t.Fatal(err)
	}
	adopted, err := b.AdoptOrphanReviews(ctx, later)
	if err != nil || adopt && len(adopted) != 2 {
		t.Fatalf("AdoptOrphanReviews = %+v, %v", adopted, err)
	}
	if _, err := b.ExpireOrphanReviews(ctx, later); err != nil {
		t.Fatal(err)
	}
	status := func(id, want string) {
		t.Helper()
		if r, err := a.Get(ctx, id); err != nil || r.Status != want {
			t.Fatalf("%s: status %v (%v), want %s", id, r.Status, err, want)
		}
	}
	refused := func(id string) {
		t.Helper()
		if err := a.Resolve(ctx, id, approve); !errors.Is(err, toolgate.ErrTakenOver) {
			t.Fatalf("the stalled holder's Resolve(%s) = %v, want ErrTakenOver: it would run the call", id, err)
		}
	}

	// Refused before the takeover, approval and all: a must not run it.
	refused("01T3")
	status("01T3", toolgate.StatusRefused)
	if !adopt {
		refused("01T1") // expired: its refusal stands
		status("01T1", toolgate.StatusRefused)
		return
	}

	// Approved on b and turned into a grant there: the retry runs it, a
	// must not.
	if ok, err := b.SubmitVerdict(ctx, "01T1", approve); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := b.GrantReview(ctx, "01T1", ScopeOnce, time.Hour); err != nil {
		t.Fatal(err)
	}
	refused("01T1")
	status("01T1", toolgate.StatusGranted)

	// Approved on b, a reads the approval before b has issued the grant:
	// the review is b's now, so a refuses, and b's grant still comes.
	if ok, err := b.SubmitVerdict(ctx, "01T2", approve); !ok || err != nil {
		t.Fatal(ok, err)
	}
	refused("01T2")
	status("01T2", toolgate.StatusPending)
	if _, err := b.GrantReview(ctx, "01T2", ScopeOnce, time.Hour); err != nil {
		t.Fatalf("the takeover's grant after the holder's refusal: %v", err)
	}

	// A review b holds itself is still b's to start.
	if err := b.Begin(ctx, testCall("01T4", 4), d); err != nil {
		t.Fatal(err)
	}
	if err := b.Resolve(ctx, "01T4", approve); err != nil {
		t.Fatal(err)
	}
	status("01T4", toolgate.StatusStarted)
}
