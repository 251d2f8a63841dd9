package audit

import (
	"context"
	"fmt"
	"github.com/toolgate/toolgate"
	"os"
	"time"
)

// owner returns the review owner recorded with a new row of status: this
// store's Owner for a pending review, "" otherwise.
func (w *wtx) owner(status string) string {
	if status != toolgate.StatusPending {
		return ""
	}
	return w.s.o.Owner
}

// RenewLease records that this store's owner is alive now. The store calls
// it every LeaseTTL/3 while it is open; it is exported for tests and for a
// caller that wants to renew at once.
func (s *Store) RenewLease(ctx context.Context) error {
	if s.o.Owner == "" {
		return nil
	}
	host := hostIdentity() // see liveLeaseStart
	now := s.o.Now().UnixNano()
	return s.write(ctx, func(w *wtx) error {
		_, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO review_owners (owner, pid, host, started_at, heartbeat_at) VALUES (?,?,?,?,?)
			ON CONFLICT(owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, s.o.Owner, os.Getpid(), host, now, now)
		if err != nil {
			return fmt.Errorf("audit: renew review lease: %w", err)
		}
		return nil
	})
}

// releaseLease drops this store's lease at Close: its reviews (none should
// be left) become anyone's to expire at once.
func (s *Store) releaseLease(ctx context.Context) error {
	if s.o.Owner == "" {
		return nil
	}
	return s.write(ctx, func(w *wtx) error {
		_, err := w.s.conn.ExecContext(w.ctx, `DELETE FROM review_owners WHERE owner = ?`, s.o.Owner)
		return err
	})
}

// renewLoop renews the lease until stop is closed. A failed renewal is
// logged; the next one may succeed before the lease runs out.
func (s *Store) renewLoop(stop <-chan struct{}) {
	t := time.NewTicker(s.o.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := s.RenewLease(context.Background()); err != nil {
			s.o.Logger.Warn("audit: renewing the review lease failed", "err", err)
		}
	}
}

// orphanWhere selects the pending reviews no live process holds: those of
// no owner, of an owner without a lease, or of one whose lease ran out
// before the given time. This store's own (an owner named) are never
// orphans.
const orphanWhere = `WHERE status = 'pending' AND (review_owner = '' OR review_owner != ? AND NOT EXISTS (
	SELECT 1 FROM review_owners o WHERE o.owner = calls.review_owner AND o.heartbeat_at >= ?))`
