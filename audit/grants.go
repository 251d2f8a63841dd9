package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/toolgate/toolgate"
)

// Grant scopes.
const (
	// ScopeOnce: the same call (kind, server, tool, arguments, rules
	// version, session), once.
	ScopeOnce = "once"
	// ScopeSession: the same tool (or prompt, resource, ...: the same
	// kind and name) in the same session, any arguments, any number of
	// times until the grant expires.
	ScopeSession = "session"
)

// Grant is an approval bound to a call, issued when a reviewer approves a
// call whose agent stopped waiting, and used by the agent's retry.
type Grant struct {
	ID       string `json:"id"`
	ReviewID string `json:"review_id"`
	Server   string `json:"server"`
	Tool     string `json:"tool"`
	// Kind is the kind of call it covers (toolgate.Call.KindName: "tool",
	// "prompt", ...): a prompt may share a tool's server and name. ""
	// for a grant issued before grants had one; it covers no call.
	Kind string `json:"kind"`
	// ArgsHash binds a once grant to the approved arguments as the agent
	// sent them (an HMAC, see Store.argsMAC; not Entry.ArgsHash); "" for
	// a session grant (any arguments).
	ArgsHash     string    `json:"args_hash,omitempty"`
	RulesVersion string    `json:"rules_version"`
	Session      string    `json:"session"`
	Scope        string    `json:"scope"`
	Approver     string    `json:"approver"`
	Channel      string    `json:"channel"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	// MaxUses is 1 for a ScopeOnce grant, 0 (until it expires) otherwise.
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// Active reports whether g can still be used at now.
func (g *Grant) Active(now time.Time) bool {
	return g.RevokedAt == nil && now.Before(g.ExpiresAt) && (g.MaxUses == 0 || g.Uses < g.MaxUses)
}

// grantEvent is the chained body of a grant's creation, use or revocation.
// It is keyed by a call (the review's, or the one that used the grant) and
// carries that call's status unchanged, so Verify folds it as a no-op on
// the row; the grant itself is the event's own record.
type grantEvent struct {
	body2
	Grant *Grant `json:"grant"`
}

const (
	kindGrant       = "grant"
	kindGrantUse    = "grant_use"
	kindGrantRevoke = "grant_revoke"
)

func (w *wtx) appendGrantEvent(kind, callID, status string, at time.Time, g *Grant) error {
	body, err := json.Marshal(grantEvent{body2: body2{V: 2, Status: status}, Grant: g})
	if err != nil {
		return fmt.Errorf("audit: encode %s event: %w", kind, err)
	}
	return w.appendBody(callID, kind, at.UnixNano(), body)
}

// grantActive selects the grants still usable at the time bound to it (see
// Grant.Active).
const grantActive = `revoked_at IS NULL AND expires_at > ? AND (max_uses = 0 OR uses < max_uses)`

const grantCols = `id, review_id, server, tool, kind, args_hash, rules_version, session, scope, approver, channel,
created_at, expires_at, max_uses, uses, revoked_at, revoked_by`

func scanGrant(sc scanner) (*Grant, error) {
	var (
		g                Grant
		created, expires int64
		revoked          sql.NullInt64
	)
	if err := sc.Scan(&g.ID, &g.ReviewID, &g.Server, &g.Tool, &g.Kind, &g.ArgsHash, &g.RulesVersion, &g.Session, &g.Scope,
		&g.Approver, &g.Channel, &created, &expires, &g.MaxUses, &g.Uses, &revoked, &g.RevokedBy); err != nil {
		return nil, err
	}
	g.CreatedAt, g.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	if revoked.Valid {
		t := time.Unix(0, revoked.Int64).UTC()
		g.RevokedAt = &t
	}
	return &g, nil
}

// GrantReview is IssueGrant for review.Store: it returns the grant's id.
func (s *Store) GrantReview(ctx context.Context, id, scope string, ttl time.Duration) (string, error) {
	g, err := s.IssueGrant(ctx, id, scope, ttl)
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

// GrantSession issues, for review.Store, a session grant from call id's
// approval: later calls of the same tool in the same session run without a
// review until ttl has passed. The call itself runs (or ran) on its own
// approval, so its status is left as it is.
func (s *Store) GrantSession(ctx context.Context, id string, ttl time.Duration) (string, error) {
	g, err := s.issueGrant(ctx, id, ScopeSession, ttl, false)
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

// IssueGrant turns the stored approval of call id, whose agent stopped
// waiting, into a grant of scope valid for ttl, and marks the call
// granted. It is how a late approval is kept: the call did not run, its
// retry will. The approval must already be stored (SubmitVerdict).
func (s *Store) IssueGrant(ctx context.Context, id, scope string, ttl time.Duration) (*Grant, error) {
	return s.issueGrant(ctx, id, scope, ttl, true)
}

// issueGrant issues a grant of scope from call id's stored approval; held
// means the call did not run and becomes granted (it must be pending).
func (s *Store) issueGrant(ctx context.Context, id, scope string, ttl time.Duration, held bool) (*Grant, error) {
	at := utc(s.o.Now())
	var g *Grant
	err := s.write(ctx, func(w *wtx) error {
		r, err := w.s.getOn(w.ctx, w.s.conn, id)
		if err != nil {
			return err
		}
		if r.Review == nil || !r.Review.Approved || held && r.Status != toolgate.StatusPending {
			return fmt.Errorf("%w: grant for %s: status %s, approved %v", ErrState, id, r.Status, r.Review != nil && r.Review.Approved)
		}
		g = &Grant{
			ID: ulid.MustNew(ulid.Timestamp(at), rand.Reader).String(), ReviewID: id, Server: r.Server, Tool: r.Tool,
			Kind: r.KindName(), RulesVersion: r.RulesVersion, Session: r.Session, Scope: scope, Approver: r.Review.Reviewer,
			Channel: r.Review.Channel, CreatedAt: at, ExpiresAt: at.Add(ttl), MaxUses: 1,
		}
		if scope == ScopeOnce {
			if g.ArgsHash, err = w.argsMACOf(id); err != nil {
				return err
			}
			if g.ArgsHash == "" {
				return fmt.Errorf("%w: grant for %s: no argument binding recorded", ErrState, id)
			}
		} else {
			g.MaxUses = 0
		}
		if _, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO grants (`+grantCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,'')`,
			g.ID, g.ReviewID, g.Server, g.Tool, g.Kind, g.ArgsHash, g.RulesVersion, g.Session, g.Scope, g.Approver, g.Channel,
			g.CreatedAt.UnixNano(), g.ExpiresAt.UnixNano(), g.MaxUses, 0); err != nil {
			return fmt.Errorf("audit: insert grant: %w", err)
		}
		status := r.Status
		if held {
			status = toolgate.StatusGranted
			if err := w.setStatus(id, status); err != nil {
				return err
			}
			// A retry waiting on this review (on any replica) may go on.
			if err := w.notify(id); err != nil {
				return err
			}
		}
		return w.appendGrantEvent(kindGrant, id, status, at, g)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// UseGrant looks for an active grant covering call c (decided d, recorded
// pending by Begin): same kind, server, tool, rules version and session, the
// same arguments for a once grant, and issued by the review of a call the
// same rule decided, to run in the same sandbox. The reviewer approved
// the call under that rule's review policy (its approvals, its channels)
// and profile: a retry another rule decides (the agent stated another
// confidence, another model) is reviewed afresh. Found, it counts the
// use, chains it, and returns the verdict that runs the call ("approved
// by X via grant G of review R"); ok is false when no grant covers the
// call.
func (s *Store) UseGrant(ctx context.Context, c toolgate.Call, d toolgate.Decision) (v toolgate.Verdict, ok bool, err error) {
	at := utc(s.o.Now())
	err = s.write(ctx, func(w *wtx) error {
		ok = false
		r, err := w.s.getOn(w.ctx, w.s.conn, c.ID)
		if err != nil {
			return err
		}
		mac, err := w.argsMACOf(c.ID)
		if err != nil {
			return err
		}
		g, err := w.grantFor(r, d, mac, at)
		if err != nil || g == nil {
			return err
		}
		if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE grants SET uses = uses + 1 WHERE id = ?`, g.ID); err != nil {
			return fmt.Errorf("audit: use grant: %w", err)
		}
		g.Uses++
		ok = true
		v = toolgate.Verdict{Approved: true, Reviewer: g.Approver, Channel: toolgate.ChannelGrant, DecidedAt: at,
			Reason: fmt.Sprintf("approved by %s via grant %s of review %s", g.Approver, g.ID, g.ReviewID)}
		return w.appendGrantEvent(kindGrantUse, c.ID, r.Status, at, g)
	})
	return v, ok, err
}

// grantFor is the oldest active grant covering call r decided d (see
// UseGrant), nil when none does.
func (w *wtx) grantFor(r *Record, d toolgate.Decision, mac string, at time.Time) (*Grant, error) {
	gs, err := queryGrants(w.ctx, w.s.conn, `WHERE server = ? AND tool = ? AND kind = ? AND session = ? AND rules_version = ?
		AND (args_hash = '' OR args_hash = ?) AND `+grantActive+` ORDER BY created_at`,
		r.Server, r.Tool, r.KindName(), r.Session, d.Version, mac, at.UnixNano())
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		rv, err := w.s.getOn(w.ctx, w.s.conn, g.ReviewID)
		if err != nil {
			return nil, err
		}
		if rv.Rule == d.Rule && rv.Sandbox == d.Sandbox {
			return g, nil
		}
	}
	return nil, nil
}

// Grants lists grants, newest first; all includes expired, used up and
// revoked ones.
func (s *Store) Grants(ctx context.Context, all bool) ([]*Grant, error) {
	if all {
		return queryGrants(ctx, s.rdb, `ORDER BY created_at DESC`)
	}
	return queryGrants(ctx, s.rdb, `WHERE `+grantActive+` ORDER BY created_at DESC`, s.o.Now().UnixNano())
}

// GrantsOf returns the grants issued by call id's review, oldest first.
func (s *Store) GrantsOf(ctx context.Context, id string) ([]*Grant, error) {
	return queryGrants(ctx, s.rdb, `WHERE review_id = ? ORDER BY created_at`, id)
}

// queryGrants reads, through q (the readers, or the writer's transaction),
// the grants the clause (WHERE ... ORDER BY ...) selects.
func queryGrants(ctx context.Context, q querier, clause string, args ...any) ([]*Grant, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+grantCols+` FROM grants `+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: grants: %w", err)
	}
	defer rows.Close()
	var out []*Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: grants: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// RevokeGrant revokes grant id (by is who, e.g. "cli:alice") and chains it
// under the review that issued it. Revoking a revoked grant is a no-op.
func (s *Store) RevokeGrant(ctx context.Context, id, by string) error {
	at := utc(s.o.Now())
	return s.write(ctx, func(w *wtx) error {
		g, err := scanGrant(w.s.conn.QueryRowContext(w.ctx, `SELECT `+grantCols+` FROM grants WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: grant %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("audit: revoke grant: %w", err)
		}
		if g.RevokedAt != nil {
			return nil
		}
		if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ?`, at.UnixNano(), by, id); err != nil {
			return fmt.Errorf("audit: revoke grant: %w", err)
		}
		g.RevokedAt, g.RevokedBy = &at, by
		cs, err := w.state(g.ReviewID)
		if err != nil {
			return err
		}
		return w.appendGrantEvent(kindGrantRevoke, g.ReviewID, cs.status, at, g)
	})
}

// argsMAC binds grants to the arguments as the agent sent them, secrets
// included, and to the _meta passed upstream with them (an upstream may act
// on its own _meta keys, and an approval covers what the upstream gets):
// an HMAC-SHA256, keyed by a key this Store drew at Open, of their JSON
// (map keys sorted, so equal arguments give equal bytes). The stored
// args_hash will not do: it is of the redacted arguments, under which an
// approval of one token would cover another. A keyed MAC, unlike a plain
// hash, gives no way to test guesses of a secret against the log. The key
// lives only in this process, as does the session a grant is bound to.
func (s *Store) argsMAC(args, meta map[string]any) (string, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return "", fmt.Errorf("audit: encode arguments: %w", err)
	}
	m := hmac.New(sha256.New, s.macKey[:])
	m.Write(b)
	if len(meta) > 0 {
		mb, err := json.Marshal(meta)
		if err != nil {
			return "", fmt.Errorf("audit: encode _meta: %w", err)
		}
		m.Write([]byte{0})
		m.Write(mb)
	}
	return hex.EncodeToString(m.Sum(nil)), nil
}

// argsMACOf reads call id's args_mac.
func (w *wtx) argsMACOf(id string) (string, error) {
	var mac string
	if err := w.s.conn.QueryRowContext(w.ctx, `SELECT args_mac FROM calls WHERE id = ?`, id).Scan(&mac); err != nil {
		return "", fmt.Errorf("audit: argument binding of %s: %w", id, err)
	}
	return mac, nil
}
