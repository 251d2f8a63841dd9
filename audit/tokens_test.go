package audit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// TestTokenScopes: an agent token opens only what authenticates agents,
// a review token only what signs reviewers in; an unknown scope is
// refused, and the scope is listed and chained with the creation.
func TestTokenScopes(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	_, agent, err := s.CreateToken(ctx, "alice", nil, ScopeAgent, time.Time{}, "root")
	if err != nil {
		t.Fatal(err)
	}
	rt, review, err := s.CreateToken(ctx, "alice", nil, ScopeReview, time.Time{}, "root")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		scope, secret string
		ok            bool
	}{{ScopeAgent, agent, true}, {ScopeAgent, review, false}, {ScopeReview, review, true}, {ScopeReview, agent, false}} {
		p, err := s.TokenAuth(c.scope).Authenticate(ctx, c.secret)
		if c.ok != (err == nil) || c.ok && p.User != "alice" {
			t.Errorf("%s authenticator, %s token: %+v, %v", c.scope, map[bool]string{true: "its own", false: "the other"}[c.ok], p, err)
		}
		if !c.ok && !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("%s authenticator: a token of the other scope gives %v, want ErrTokenUnknown", c.scope, err)
		}
	}
	if _, _, err := s.CreateToken(ctx, "alice", nil, "admin", time.Time{}, "root"); err == nil {
		t.Error("a token of an unknown scope was created")
	}
	ts, err := s.Tokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].Scope != ScopeAgent || ts[1].Scope != ScopeReview {
		t.Fatalf("Tokens = %+v, %v", ts, err)
	}
	var body string
	if err := rawDB(t, s.Path()).QueryRow(`SELECT body FROM events WHERE call_id = ?`, rt.ID).Scan(&body); err != nil || !strings.Contains(body, `"scope":"review"`) {
		t.Fatalf("the review token's creation event: %q, %v", body, err)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, "", Options{Now: clk.Now})

	tok, secret, err := s.CreateToken(ctx, "alice", []string{"oncall", "dev", "dev", ""}, ScopeAgent, time.Time{}, "root")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) < 40 {
		t.Fatalf("secret %q: want %s and at least 256 bits", secret, TokenPrefix)
	}
	if !slices.Equal(tok.Groups, []string{"dev", "oncall"}) {
		t.Fatalf("groups %v", tok.Groups)
	}
	_, other, err := s.CreateToken(ctx, "bob", nil, ScopeAgent, clk.Now().Add(time.Hour), "root")
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Fatal("two tokens alike")
	}

	auth := s.TokenAuth(ScopeAgent)
	p, err := auth.Authenticate(ctx, secret)
	if err != nil || p.User != "alice" || p.Auth != toolgate.AuthToken || !slices.Equal(p.Groups, []string{"dev", "oncall"}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "tg_", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret), "Bearer " + secret} {
		if _, err := auth.Authenticate(ctx, bad); !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("Authenticate(%q) = %v, want ErrTokenUnknown", bad, err)
		}
	}

	// Only the hash is stored.
	db := rawDB(t, s.Path())
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM tokens WHERE hash LIKE '%' || ? || '%' OR id = ?`, secret[3:], secret).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the token itself is stored (%d, %v)", n, err)
	}

	if err := s.RevokeToken(ctx, tok.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, secret); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := s.RevokeToken(ctx, tok.ID, "carol"); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	if err := s.RevokeToken(ctx, "tok_nope", "carol"); !errors.Is(err, ErrTokenUnknown) {
		t.Fatalf("unknown revoke: %v", err)
	}
	if p, err := auth.Authenticate(ctx, other); err != nil || p.User != "bob" {
		t.Fatalf("bob: %+v %v", p, err)
	}

	list, err := s.Tokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Tokens = %v, %v", list, err)
	}
	if list[0].RevokedBy != "carol" || list[0].CreatedBy != "root" || list[0].RevokedAt.IsZero() || list[1].ExpiresAt.IsZero() {
		t.Fatalf("list %+v", list)
	}

	// Token events are chained, and the chain still verifies with calls in it.
	c := testCall("01AAA", 1)
	c.Principal = toolgate.Principal{User: "bob", Groups: []string{"dev"}, Auth: toolgate.AuthToken}
	if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() || rep.Events != 5 { // 3 token events, a context, a decision
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestTokenExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := openTest(t, "", Options{Now: func() time.Time { return now }})
	_, secret, err := s.CreateToken(ctx, "alice", nil, ScopeAgent, now.Add(time.Minute), "root")
	if err != nil {
		t.Fatal(err)
	}
	auth := s.TokenAuth(ScopeAgent)
	if _, err := auth.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := auth.Authenticate(ctx, secret); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("at expiry: %v", err)
	}
}

func TestPrincipalRecordedAndFiltered(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	for i, u := range []string{"alice", "bob", "alice", ""} {
		c := testCall(string(rune('A'+i))+"01", i)
		if u != "" {
			c.Principal = toolgate.Principal{User: u, Groups: []string{"g-" + u}, Auth: toolgate.AuthOIDC}
		}
		if err := s.Begin(ctx, c, testDecision(toolgate.Allow)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.List(ctx, Filter{User: "alice"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("List(alice) = %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Principal.User != "alice" || r.Principal.Auth != toolgate.AuthOIDC || !slices.Equal(r.Principal.Groups, []string{"g-alice"}) {
			t.Fatalf("record %+v", r.Principal)
		}
	}
	if c, _ := recs[0].Call(); c.Principal.User != "alice" {
		t.Fatalf("Call() lost the principal: %+v", c.Principal)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// A row whose principal was changed after the fact no longer verifies.
	db := rawDB(t, s.Path())
	if _, err := db.Exec(`INSERT INTO names (name) VALUES ('mallory');
		UPDATE calls SET user_ref = (SELECT id FROM names WHERE name = 'mallory') WHERE user_ref = (SELECT id FROM names WHERE name = 'bob')`); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || rep.OK() {
		t.Fatalf("Verify after tampering = %+v, %v", rep, err)
	}
}

// BenchmarkTokenAuthenticate is the per-request cost of a per-user token:
// a read of the tokens table by hash (no cache, so revocation is immediate).
func BenchmarkTokenAuthenticate(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, "", Options{Now: time.Now})
	for i := range 100 {
		if _, _, err := s.CreateToken(ctx, "user"+string(rune('a'+i%26)), []string{"dev"}, ScopeAgent, time.Time{}, "root"); err != nil {
			b.Fatal(err)
		}
	}
	_, secret, err := s.CreateToken(ctx, "alice", []string{"oncall"}, ScopeAgent, time.Time{}, "root")
	if err != nil {
		b.Fatal(err)
	}
	auth := s.TokenAuth(ScopeAgent)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := auth.Authenticate(ctx, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}
