package review

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate/audit"
)

// TestRecoverJudgesLeasesAtOneInstant: a review whose process's lease
// runs out while Recover works (its clock moves past the lease between
// adopting and expiring) is adopted, not expired.
func TestRecoverJudgesLeasesAtOneInstant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	ctx := context.Background()
	t0 := time.Now()
	a, err := audit.Open(ctx, path, audit.Options{Owner: "dead", LeaseTTL: 3 * time.Second, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := audit.Open(ctx, path, audit.Options{Owner: "live", LeaseTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, d := testCall("01RACE")
	if err := a.Begin(ctx, c, d); err != nil {
		t.Fatal(err)
	}
	// The service's clock: the first reading falls just inside the dead
	// replica's lease, every later one just past it (time passing while
	// AdoptOrphanReviews's write waits and commits).
	var n atomic.Int32
	now := func() time.Time {
		if n.Add(1) == 1 {
			return t0.Add(2900 * time.Millisecond)
		}
		return t0.Add(3100 * time.Millisecond)
	}
	s, err := New(Options{Store: b, Timeout: time.Hour, Now: now, Channels: []string{"cli"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := b.PendingReviews(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("after Recover, pending reviews = %d: the dead replica's review (timeout 1h) was expired instead of adopted", len(ps))
	}
}
