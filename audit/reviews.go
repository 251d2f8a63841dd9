package audit

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/toolgate/toolgate"
)

// PendingReviews lists calls waiting for a verdict (status pending, none
// stored yet), oldest first, but not a retry that waits on an earlier
// call's review (PendingFor): reviewers answer that one. Their Call.Args
// are the stored, redacted args.
func (s *Store) PendingReviews(ctx context.Context) ([]toolgate.Pending, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("audit: pending reviews: %w", err)
	}
	return s.pending(ctx, s.rdb, `WHERE calls.status = 'pending' AND calls.review_approved IS NULL
		AND calls.id NOT IN (SELECT c.id FROM calls c JOIN calls p ON `+earlierSameCall+` WHERE c.status = 'pending')`)
}

// PendingOf counts the reviews of user's calls waiting in the log, in
// every process that shares it (PostgreSQL replicas): those asked, held
// or answered but not yet resolved, but not a retry that waits on an
// earlier call's review. It implements review.PendingCounter.
func (s *Store) PendingOf(ctx context.Context, user string) (int, error) {
	if err := s.catchUp(ctx); err != nil {
		return 0, fmt.Errorf("audit: pending reviews of %s: %w", user, err)
	}
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM calls WHERE calls.status = 'pending'
		AND calls.user_ref = (SELECT id FROM names WHERE name = ?)
		AND calls.id NOT IN (SELECT c.id FROM calls c JOIN calls p ON `+earlierSameCall+` WHERE c.status = 'pending')`, user).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("audit: pending reviews of %s: %w", user, err)
	}
	return n, nil
}

func (s *Store) pending(ctx context.Context, q querier, where string, args ...any) ([]toolgate.Pending, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+recordCols+` FROM `+recordFrom+` `+where+` ORDER BY calls.received_at, calls.seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: pending reviews: %w", err)
	}
	defer rows.Close()
	// The rows are all read before their contexts: q may be the writer's
	// connection, which reads one result set at a time.
	var raws []*rawRecord
	for rows.Next() {
		w, err := scanRaw(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: pending reviews: %w", err)
		}
		raws = append(raws, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: pending reviews: %w", err)
	}
	rows.Close()
	look := newCtxReader(ctx, q).get
	var out []toolgate.Pending
	for _, w := range raws {
		r, err := w.record(look)
		if err != nil {
			return nil, fmt.Errorf("audit: pending reviews: %w", err)
		}
		p, err := r.pending()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (r *Record) pending() (toolgate.Pending, error) {
	c, err := r.Call()
	return toolgate.Pending{
		Call: c, Decision: r.Decision(), RequestedAt: r.DecidedAt,
		SlackChannel: r.SlackChannel, SlackTS: r.SlackTS, ArgsNotStored: !argsStored(r.Args),
	}, err
}

// SubmitVerdict stores v for call id if the call is still pending with no
// verdict (compare-and-set inside the write transaction, so it is safe
// across processes: the first answer wins). The call stays pending until
// the gate's Resolve finalizes it. ok is false when there was already a
// verdict or the call is no longer pending; ErrNotFound when there is no
// such call; ErrFollows when a person answers a retry that waits on an
// earlier call's review (PendingFor): its answer would count for nothing.
func (s *Store) SubmitVerdict(ctx context.Context, id string, v toolgate.Verdict) (bool, error) {
	at := utc(s.o.Now())
	if v.DecidedAt.IsZero() {
		v.DecidedAt = at
	}
	var ok bool
	err := s.write(ctx, func(w *wtx) error {
		ok = false
		cs, err := w.state(id)
		if err != nil {
			return err
		}
		if cs.status != toolgate.StatusPending || cs.verdict != nil {
			return nil
		}
		if toolgate.IsReviewChannel(v.Channel) {
			if rid, err := followed(w.ctx, w.s.conn, id); err != nil || rid != "" {
				return cmp.Or(err, fmt.Errorf("%w: call %s is a retry that waits on review %s; answer that review", ErrFollows, id, rid))
			}
		}
		// The terminal and the web page show the call as stored.
		if v.Approved && !cs.argsStored && (v.Channel == toolgate.ChannelCLI || v.Channel == toolgate.ChannelWeb) {
			return fmt.Errorf("%w: call %s's arguments are not stored (audit store_args: hash), so the %s could not show them to you; "+
				"deny it, or approve it where the call is shown whole (Slack, or the agent's client)", toolgate.ErrArgsNotShown, id, map[string]string{toolgate.ChannelCLI: "terminal", toolgate.ChannelWeb: "web page"}[v.Channel])
		}
		admitted, err := w.admit(id, cs, v, at)
		if admitted == nil || err != nil {
			return err
		}
		if err := w.verdict(id, at.UnixNano(), toolgate.StatusPending, newReview(*admitted, cs.decidedAt)); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ok, nil
}

// ReviewVerdict returns the stored verdict for call id; decided is false
// while none is stored. It reads the DB, so it sees verdicts written by
// other processes (the server polls it).
func (s *Store) ReviewVerdict(ctx context.Context, id string) (toolgate.Verdict, bool, error) {
	var v joined
	err := s.rdb.QueryRowContext(ctx, `SELECT v.at, v.body FROM calls LEFT JOIN events v ON v.seq = calls.verdict_seq
		WHERE calls.id = ?`, id).Scan(&v.at, &v.body)
	if errors.Is(err, sql.ErrNoRows) {
		return toolgate.Verdict{}, false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return toolgate.Verdict{}, false, fmt.Errorf("audit: read verdict of %s: %w", id, err)
	}
	if !v.body.Valid {
		return toolgate.Verdict{}, false, nil
	}
	e, err := v.decode(id, kindVerdict)
	if err != nil || e.Verdict == nil {
		return toolgate.Verdict{}, false, fmt.Errorf("audit: read verdict of %s: %w", id, cmp.Or(err, errors.New("no verdict in its event")))
	}
	return e.Verdict.Verdict(), true, nil
}

// SetReviewMessage remembers where call id's Slack review message is. This
// is operational metadata and is not part of the hash chain.
func (s *Store) SetReviewMessage(ctx context.Context, id, channel, ts string) error {
	return s.write(ctx, func(w *wtx) error {
		res, err := w.s.stmts.setSlack.ExecContext(w.ctx, channel, ts, id)
		if err != nil {
			return fmt.Errorf("audit: set review message of %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil
	})
}

// ExpireOrphanReviews ends the reviews no live process holds: those left
// pending by a process that is gone (its lease ran out, or it had none).
// Reviews of other live processes sharing the DB are left alone. Calls with
// no verdict get an "expired" denial, and calls whose verdict was stored but
// never resolved are refused (they never ran). All of them become refused,
// and they are returned so the caller can update their Slack messages.
// Call it at start-up and then now and then.
func (s *Store) ExpireOrphanReviews(ctx context.Context, now time.Time) ([]toolgate.Pending, error) {
	now = utc(now)
	var out []toolgate.Pending
	err := s.write(ctx, func(w *wtx) error {
		conn := w.s.conn
		ps, err := w.s.pending(w.ctx, conn, orphanWhere, s.o.Owner, now.Add(-s.o.LeaseTTL).UnixNano())
		if err != nil {
			return err
		}
		if _, err := conn.ExecContext(w.ctx, `DELETE FROM review_owners WHERE heartbeat_at < ?`, now.Add(-s.o.LeaseTTL).UnixNano()); err != nil {
			return fmt.Errorf("audit: drop dead review owners: %w", err)
		}
		out = ps
		for _, p := range ps {
			id := p.Call.ID
			cs, err := w.state(id)
			if err != nil {
				return err
			}
			if cs.verdict != nil {
				if err := w.setStatus(id, toolgate.StatusRefused); err != nil {
					return err
				}
				if err := w.appendEvent(&event{Kind: kindStatus, ID: id, At: now.UnixNano(), Status: toolgate.StatusRefused}); err != nil {
					return err
				}
				continue
			}
			r := newReview(toolgate.Verdict{Channel: toolgate.ChannelExpired, Reason: "the toolgate process holding the call ended before the review was answered", DecidedAt: now}, cs.decidedAt)
			if err := w.verdict(id, now.UnixNano(), toolgate.StatusRefused, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AdoptOrphanReviews makes this store's owner the owner of the unanswered
// reviews no live process holds (see ExpireOrphanReviews), and returns
// them, for review.Service to carry on (review.AdoptStore). Only on
// PostgreSQL, where replicas share the log and a reviewer's answer can
// still reach a live one; on SQLite, and without an Owner, it adopts
// nothing and ExpireOrphanReviews ends them as before. Ownership is
// operational state: the chain is not touched.
func (s *Store) AdoptOrphanReviews(ctx context.Context, now time.Time) ([]toolgate.Pending, error) {
	if s.pg == nil || s.o.Owner == "" {
		return nil, nil
	}
	now = utc(now)
	var out []toolgate.Pending
	err := s.write(ctx, func(w *wtx) error {
		ps, err := w.s.pending(w.ctx, w.s.conn, orphanWhere+` AND review_approved IS NULL`, s.o.Owner, now.Add(-s.o.LeaseTTL).UnixNano())
		if err != nil {
			return err
		}
		for _, p := range ps {
			if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE calls SET review_owner = ? WHERE id = ?`, s.o.Owner, p.Call.ID); err != nil {
				return fmt.Errorf("audit: take over review %s: %w", p.Call.ID, err)
			}
		}
		out = ps
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordRefusedClick chains a reviewer's click on call id's review that
// changed nothing: who clicked (user), on which channel, and why it was
// refused (not an approver, already decided, expired). The call's row is
// unchanged; the event says the click happened and was turned away. A
// click naming no call in the log is not recorded (ErrNotFound): there is
// no chain of that call to put it in.
func (s *Store) RecordRefusedClick(ctx context.Context, id, user, channel, why string) error {
	at := utc(s.o.Now())
	return s.write(ctx, func(w *wtx) error {
		cs, err := w.state(id)
		if err != nil {
			return err
		}
		r := &Review{Reviewer: user, Channel: channel, Reason: why, DecidedAt: at}
		return w.appendEvent(&event{Kind: kindClick, ID: id, At: at.UnixNano(), Status: cs.status, Verdict: r})
	})
}
