package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/toolgate/toolgate"
)

// PendingFor finds the review a retry of call c (decided d, recorded
// pending by Begin) can wait on instead of starting its own: a call with
// the binding of a grant (same kind, server, tool, session, rules version
// and arguments, by the MAC Begin stored in c's own row)
// whose review is not over. That includes one answered but not yet acted
// on: an approval stored by another process becomes a grant only when the
// process holding the call next polls, and a retry in between would
// otherwise start a second review. The oldest wins: a retry waiting on it
// is pending too, and newer.
func (s *Store) PendingFor(ctx context.Context, c toolgate.Call, d toolgate.Decision) (reviewID string, ok bool, err error) {
	if _, err := s.getOn(ctx, s.rdb, c.ID); err != nil {
		return "", false, err
	}
	err = s.rdb.QueryRowContext(ctx, `SELECT p.id FROM calls p JOIN calls c ON c.id = ?
		WHERE p.status = 'pending' AND p.id != c.id AND p.args_mac != '' AND p.args_mac = c.args_mac
		AND p.kind_ref = c.kind_ref AND p.server_ref = c.server_ref AND p.tool_ref = c.tool_ref AND p.session_ref = c.session_ref
		AND p.rule_ref = c.rule_ref AND p.rules_version_ref = `+nameRef+`
		ORDER BY p.received_at, p.seq LIMIT 1`, c.ID, d.Version).Scan(&reviewID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("audit: find a pending review of the same call as %s: %w", c.ID, err)
	}
	return reviewID, true, nil
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
