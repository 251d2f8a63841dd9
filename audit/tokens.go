package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
)

// TokenPrefix starts every per-user token, so a leaked one is recognisable
// (secret scanners, logs) and the edge knows which check applies.
const TokenPrefix = "tg_"

// tokenBytes is a token's entropy: 256 random bits, so its plain sha256 is
// a safe verifier (no dictionary to try, nothing for a slow hash to slow).
const tokenBytes = 32

// lastUsedEvery is how often, at most, a token's last use is written: the
// lookup is on every request, a write on every request is not needed to
// tell a token in use from a stale one.
const lastUsedEvery = time.Minute

// Token errors. Callers branch on them with errors.Is; the edge answers
// every one of them the same way (401), so a caller cannot tell a revoked
// token from one that never existed.
var (
	ErrTokenUnknown = errors.New("audit: unknown token")
	ErrTokenRevoked = errors.New("audit: token revoked")
	ErrTokenExpired = errors.New("audit: token expired")
)

// What a token opens. An agent token authenticates at the MCP edge; a
// review token signs a reviewer in to the web UI, where agent tokens are
// refused: an agent holds its token, and must not answer reviews with it.
const (
	ScopeAgent  = "agent"
	ScopeReview = "review"
)

// kindToken chains a token's creation or revocation, under the token's id
// (Verify leaves these events out of its per-call checks).
const kindToken = "token"

// Token is a per-user bearer token as stored: never the token itself.
type Token struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Groups    []string  `json:"groups,omitempty"`
	Scope     string    `json:"scope"` // ScopeAgent or ScopeReview
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
	// LastUsed is updated at most once a minute per token.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// tokenEvent is the chained body of a token event.
type tokenEvent struct {
	Action    string    `json:"action"` // "create" or "revoke"
	Actor     string    `json:"actor"`
	User      string    `json:"user"`
	Groups    []string  `json:"groups,omitempty"`
	Scope     string    `json:"scope,omitempty"` // "" for an agent token
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// tokenHash is the stored verifier of secret.
func tokenHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken stores a new token for user (with groups, for scope,
// expiring at expires unless that is zero) and returns it with the secret,
// which is shown once and stored only as its sha256. actor (the OS user
// running the command) is chained with the creation.
func (s *Store) CreateToken(ctx context.Context, user string, groups []string, scope string, expires time.Time, actor string) (Token, string, error) {
	user = strings.TrimSpace(user)
	if user == "" {
		return Token{}, "", errors.New("audit: a token needs a user")
	}
	if scope != ScopeAgent && scope != ScopeReview {
		return Token{}, "", fmt.Errorf("audit: token scope %q is not %q or %q", scope, ScopeAgent, ScopeReview)
	}
	raw := make([]byte, tokenBytes+6)
	if _, err := rand.Read(raw); err != nil {
		return Token{}, "", fmt.Errorf("audit: token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:tokenBytes])
	now := utc(s.o.Now())
	t := Token{
		ID: "tok_" + hex.EncodeToString(raw[tokenBytes:]), User: user, Groups: toolgate.NormalGroups(groups), Scope: scope,
		CreatedAt: now, CreatedBy: actor, ExpiresAt: utc(expires),
	}
	te := tokenEvent{Action: "create", Actor: actor, User: t.User, Groups: t.Groups, ExpiresAt: t.ExpiresAt}
	if scope != ScopeAgent {
		te.Scope = scope
	}
	err := s.write(ctx, func(w *wtx) error {
		_, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO tokens (id, hash, "user", groups, scope, created_at, created_by, expires_at)
			VALUES (?,?,?,?,?,?,?,?)`, t.ID, tokenHash(secret), t.User, encodeGroups(t.Groups), scope, now.UnixNano(), actor, nanos(t.ExpiresAt))
		if err != nil {
			return fmt.Errorf("audit: store token: %w", err)
		}
		return w.appendToken(t.ID, now, te)
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// appendToken chains a token event. Token events are rare, so their body
// is json.Marshal's, not the hand encoder's.
func (w *wtx) appendToken(id string, at time.Time, te tokenEvent) error {
	tb, err := json.Marshal(te)
	if err != nil {
		return fmt.Errorf("audit: encode token event: %w", err)
	}
	body, err := json.Marshal(struct {
		Kind  string          `json:"kind"`
		ID    string          `json:"id"`
		At    int64           `json:"at"`
		Token json.RawMessage `json:"token"`
	}{kindToken, id, at.UnixNano(), tb})
	if err != nil {
		return fmt.Errorf("audit: encode token event: %w", err)
	}
	return w.appendBody(id, kindToken, at.UnixNano(), body)
}

// RevokeToken revokes token id at once: the next request presenting it is
// refused. actor is chained with the revocation. Revoking a revoked token
// is an error (ErrTokenRevoked), so the first revocation's record stands.
func (s *Store) RevokeToken(ctx context.Context, id, actor string) error {
	now := utc(s.o.Now())
	return s.write(ctx, func(w *wtx) error {
		var (
			user    string
			revoked sql.NullInt64
		)
		err := w.s.conn.QueryRowContext(w.ctx, `SELECT "user", revoked_at FROM tokens WHERE id = ?`, id).Scan(&user, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrTokenUnknown, id)
		}
		if err != nil {
			return fmt.Errorf("audit: read token %s: %w", id, err)
		}
		if revoked.Valid {
			return fmt.Errorf("%w: %s was revoked at %s", ErrTokenRevoked, id, fromNanos(revoked).Format(time.RFC3339))
		}
		if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?`, now.UnixNano(), actor, id); err != nil {
			return fmt.Errorf("audit: revoke token %s: %w", id, err)
		}
		return w.appendToken(id, now, tokenEvent{Action: "revoke", Actor: actor, User: user})
	})
}

// Tokens lists every token, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, "user", groups, scope, created_at, created_by, expires_at, revoked_at, revoked_by, last_used_at
		FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("audit: tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var (
			t                          Token
			groups                     string
			created                    int64
			expires, revoked, lastUsed sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.User, &groups, &t.Scope, &created, &t.CreatedBy, &expires, &revoked, &t.RevokedBy, &lastUsed); err != nil {
			return nil, fmt.Errorf("audit: tokens: %w", err)
		}
		if t.Groups, err = decodeGroups(groups); err != nil {
			return nil, fmt.Errorf("audit: token %s: groups: %w", t.ID, err)
		}
		t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsed = time.Unix(0, created).UTC(), fromNanos(expires), fromNanos(revoked), fromNanos(lastUsed)
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenAuth authenticates per-user tokens of one scope against a Store.
// It reads the store on every lookup, so a revocation or expiry (written
// by any process) takes effect on the next request.
type TokenAuth struct {
	s     *Store
	scope string
	// used remembers when each token's last use was written.
	mu   sync.Mutex
	used map[string]time.Time
}

// TokenAuth returns the authenticator of s's tokens of scope (ScopeAgent
// or ScopeReview): a token of the other scope is unknown to it.
func (s *Store) TokenAuth(scope string) *TokenAuth {
	return &TokenAuth{s: s, scope: scope, used: map[string]time.Time{}}
}

// Authenticate returns the principal secret belongs to, or an error:
// ErrTokenUnknown, ErrTokenRevoked, ErrTokenExpired, or a read failure
// (the caller refuses the request in every case).
func (a *TokenAuth) Authenticate(ctx context.Context, secret string) (toolgate.Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return toolgate.Principal{}, ErrTokenUnknown
	}
	want := tokenHash(secret)
	var (
		id, hash, user, groups, scope string
		expires, revoked              sql.NullInt64
	)
	err := a.s.rdb.QueryRowContext(ctx, `SELECT id, hash, "user", groups, scope, expires_at, revoked_at FROM tokens WHERE hash = ?`, want).
		Scan(&id, &hash, &user, &groups, &scope, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return toolgate.Principal{}, ErrTokenUnknown
	}
	if err != nil {
		return toolgate.Principal{}, fmt.Errorf("audit: token lookup: %w", err)
	}
	// The index found the row by equality; comparing again in constant
	// time keeps the decision itself independent of how the bytes differ.
	if subtle.ConstantTimeCompare([]byte(hash), []byte(want)) != 1 || scope != a.scope {
		return toolgate.Principal{}, ErrTokenUnknown
	}
	now := a.s.o.Now()
	switch {
	case revoked.Valid:
		return toolgate.Principal{}, ErrTokenRevoked
	case expires.Valid && !now.Before(fromNanos(expires)):
		return toolgate.Principal{}, ErrTokenExpired
	}
	g, err := decodeGroups(groups)
	if err != nil {
		return toolgate.Principal{}, fmt.Errorf("audit: token %s: groups: %w", id, err)
	}
	a.touch(id, now)
	return toolgate.Principal{User: user, Groups: g, Auth: toolgate.AuthToken}, nil
}

// touch writes token id's last use behind, at most once per lastUsedEvery.
func (a *TokenAuth) touch(id string, now time.Time) {
	a.mu.Lock()
	last, seen := a.used[id]
	due := !seen || now.Sub(last) >= lastUsedEvery
	if due {
		a.used[id] = now
	}
	a.mu.Unlock()
	if !due || a.s.kick == nil {
		return
	}
	at := utc(now).UnixNano()
	err := a.s.writeBehind("token last use", true, func(w *wtx) error {
		_, err := w.s.conn.ExecContext(w.ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, at, id)
		return err
	})
	if err != nil {
		a.s.o.Logger.Debug("audit: token last use not recorded", "token", id, "err", err)
	}
}
