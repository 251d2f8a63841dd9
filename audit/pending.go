package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/toolgate/toolgate"
)

// PendingFor finds the review a retry of call c (decided d, recorded
// pending by Begin) can wait on instead of starting its own: an earlier
// call with the binding of a grant (same kind, server, tool, session, rule,
// rules version and arguments, by the MAC Begin stored in c's own row)
// whose review is not over. That includes one answered but not yet acted
// on: an approval stored by another process becomes a grant only when the
// process holding the call next polls, and a retry in between would
// otherwise start a second review.
//
// Earlier is by the seq Begin gave each row, which follows commit order,
// and the earliest wins. So of two identical calls made at once, the
// later never misses the earlier (its row was committed first), the
// earlier never waits on the later, and no two calls wait on each other:
// the earliest asks the reviewers. A row that has such an earlier call is
// a retry that waits (follows): review lists do not show it and it takes
// no answer of its own (PendingReviews, SubmitVerdict).
func (s *Store) PendingFor(ctx context.Context, c toolgate.Call, d toolgate.Decision) (reviewID string, ok bool, err error) {
	if _, err := s.getOn(ctx, s.rdb, c.ID); err != nil {
		return "", false, err
	}
	reviewID, err = followed(ctx, s.rdb, c.ID)
	return reviewID, reviewID != "", err
}

// earlierSameCall is the SQL condition that row p is pending, earlier
// than row c and the same call (PendingFor).
const earlierSameCall = `p.status = 'pending' AND p.seq < c.seq AND p.args_mac != '' AND p.args_mac = c.args_mac
	AND p.kind_ref = c.kind_ref AND p.server_ref = c.server_ref AND p.tool_ref = c.tool_ref
	AND p.session_ref = c.session_ref AND p.rule_ref = c.rule_ref AND p.rules_version_ref = c.rules_version_ref`

// followedSQL selects the review call c (bound to ?) waits on: the earliest
// earlier pending row of the same call.
const followedSQL = `SELECT p.id FROM calls p JOIN calls c ON c.id = ? WHERE ` + earlierSameCall + ` ORDER BY p.seq LIMIT 1`

// followed returns the review call id waits on (PendingFor) as q reads
// the log, "" when none.
func followed(ctx context.Context, q querier, id string) (string, error) {
	var rid string
	err := q.QueryRowContext(ctx, followedSQL, id).Scan(&rid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("audit: find the review %s waits on: %w", id, err)
	}
	return rid, nil
}

// ReviewEnded reports whether call id's review is over: the call has left
// pending (it was granted, started or refused), so its verdict is stored
// and what an approval became is too. An approval alone does not end it:
// a held call's grant follows it.
func (s *Store) ReviewEnded(ctx context.Context, id string) (bool, error) {
	var status string
	err := s.rdb.QueryRowContext(ctx, `SELECT status FROM calls WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return false, fmt.Errorf("audit: read status of %s: %w", id, err)
	}
	return status != toolgate.StatusPending, nil
}
