package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/auth/oidctest"
)

// clock is a settable Now for the key set's refresh bounds.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// newTestOIDC starts an issuer and validates its tokens for audience
// "toolgate", on a clock the test moves.
func newTestOIDC(t *testing.T) (*oidctest.Issuer, *clock, *OIDC) {
	t.Helper()
	iss := oidctest.New(t)
	clk := newClock()
	a, err := NewOIDC(context.Background(), OIDCOptions{Issuer: iss.URL, Audience: "toolgate", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return iss, clk, a
}

func TestOIDC(t *testing.T) {
	ctx := context.Background()
	iss, clk, a := newTestOIDC(t)
	claims := func(mod func(map[string]any)) map[string]any {
		c := oidctest.Claims(iss.URL, "toolgate", "alice", time.Hour, "oncall", "dev")
		if mod != nil {
			mod(c)
		}
		return c
	}
	p, err := a.Authenticate(ctx, iss.Sign(t, claims(nil)))
	if err != nil || p.User != "alice" || p.Auth != toolgate.AuthOIDC || !slices.Equal(p.Groups, []string{"dev", "oncall"}) {
		t.Fatalf("valid token: %+v, %v", p, err)
	}
	good := iss.Sign(t, claims(nil))
	stranger := oidctest.NewKey(t, iss.Key().KeyID) // same kid, another key
	otherKid := oidctest.NewKey(t, "key-unknown")
	refused := []struct {
		name, tok string
	}{
		{"wrong audience", iss.Sign(t, claims(func(c map[string]any) { c["aud"] = "another-service" }))},
		{"expired", iss.Sign(t, oidctest.Claims(iss.URL, "toolgate", "alice", -time.Minute))},
		{"wrong issuer", iss.Sign(t, claims(func(c map[string]any) { c["iss"] = "https://evil.example" }))},
		{"bad signature", oidctest.SignWith(t, stranger, claims(nil))},
		{"unknown kid", oidctest.SignWith(t, otherKid, claims(nil))},
		{"tampered payload", tamper(good)},
		{"no user claim", iss.Sign(t, claims(func(c map[string]any) { delete(c, "sub") }))},
		{"groups not strings", iss.Sign(t, claims(func(c map[string]any) { c["groups"] = []any{1, 2} }))},
		{"not a JWT", "a.b.c"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := a.Authenticate(ctx, tc.tok); err == nil {
				t.Fatalf("accepted as %+v", p)
			}
		})
	}

	// Rotation: a token signed by a key published after start-up is
	// accepted (the key set is fetched again for its kid), and once the
	// old key leaves the set, tokens it signed are refused.
	old := iss.Sign(t, claims(nil))
	iss.Rotate(t, true)
	clk.Advance(keyMissInterval) // the unknown kid above fetched the keys just now
	fetches := iss.JWKSFetches()
	if _, err := a.Authenticate(ctx, iss.Sign(t, claims(nil))); err != nil {
		t.Fatalf("token signed by the rotated-in key: %v", err)
	}
	if iss.JWKSFetches() == fetches {
		t.Fatal("the key set was not fetched again for the new kid")
	}
	if _, err := a.Authenticate(ctx, old); err == nil {
		t.Fatal("token signed by a key no longer published was accepted")
	}
}

// tamper changes the payload of a JWT, keeping its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[1])
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return parts[0] + "." + string(b) + "." + parts[2]
}

// Tokens naming unknown keys, or carrying bad signatures under a known
// key, cannot make toolgate fetch the issuer's keys more than once per
// keyMissInterval; stale keys are fetched again.
func TestOIDCKeyFetchesBounded(t *testing.T) {
	ctx := context.Background()
	iss, clk, a := newTestOIDC(t)
	claims := oidctest.Claims(iss.URL, "toolgate", "alice", time.Hour)
	if _, err := a.Authenticate(ctx, iss.Sign(t, claims)); err != nil {
		t.Fatal(err)
	}
	base := iss.JWKSFetches()
	unknown, stranger := oidctest.NewKey(t, "nope"), oidctest.NewKey(t, iss.Key().KeyID)
	for i := range 50 {
		claims["jti"] = fmt.Sprint(i)
		for _, key := range []jose.JSONWebKey{unknown, stranger} {
			if _, err := a.Authenticate(ctx, oidctest.SignWith(t, key, claims)); err == nil {
				t.Fatal("a forged token was accepted")
			}
		}
	}
	n := iss.JWKSFetches() - base
	if n > 1 {
		t.Fatalf("100 forged tokens caused %d key set fetches, want at most 1", n)
	}
	clk.Advance(keyMaxAge)
	if _, err := a.Authenticate(ctx, iss.Sign(t, claims)); err != nil {
		t.Fatal(err)
	}
	if iss.JWKSFetches()-base != n+1 {
		t.Fatal("a stale key set was not fetched again")
	}
}

func TestOIDCNeedsIssuerAndAudience(t *testing.T) {
	iss := oidctest.New(t)
	for _, o := range []OIDCOptions{{Issuer: iss.URL}, {Audience: "x"}} {
		if _, err := NewOIDC(context.Background(), o); err == nil {
			t.Errorf("NewOIDC(%+v) succeeded", o)
		}
	}
	if _, err := NewOIDC(context.Background(), OIDCOptions{Issuer: iss.URL + "/elsewhere", Audience: "x"}); err == nil {
		t.Error("NewOIDC with an unreachable issuer succeeded")
	}
}

type fixed struct {
	p   toolgate.Principal
	ok  bool
	hit *string
}

func (f fixed) Authenticate(_ context.Context, cred string) (toolgate.Principal, error) {
	*f.hit = cred
	if !f.ok {
		return toolgate.Principal{}, ErrUnknownCredential
	}
	return f.p, nil
}

func TestChain(t *testing.T) {
	var shared, tokens, oidc string
	c := Chain{
		Shared:      fixed{p: toolgate.Principal{User: "shared"}, ok: false, hit: &shared},
		Tokens:      fixed{p: toolgate.Principal{User: "tok"}, ok: true, hit: &tokens},
		TokenPrefix: "tg_",
		OIDC:        fixed{p: toolgate.Principal{User: "jwt"}, ok: true, hit: &oidc},
	}
	ctx := context.Background()
	for cred, want := range map[string]string{"tg_abc": "tok", "h.p.s": "jwt"} {
		if p, err := c.Authenticate(ctx, cred); err != nil || p.User != want {
			t.Errorf("%s: %+v %v", cred, p, err)
		}
	}
	if _, err := c.Authenticate(ctx, "plain"); err == nil {
		t.Error("a credential of no known shape was accepted")
	}
	if !(Chain{}).Empty() {
		t.Error("empty chain not Empty")
	}
	if _, err := (Chain{}).Authenticate(ctx, "tg_x"); err == nil {
		t.Error("empty chain accepted a credential")
	}
}

// BenchmarkOIDCAuthenticate is the per-request cost of an OIDC access
// token: an RS256 signature check against the cached key set, and claims.
func BenchmarkOIDCAuthenticate(b *testing.B) {
	ctx := context.Background()
	iss := oidctest.New(b)
	a, err := NewOIDC(ctx, OIDCOptions{Issuer: iss.URL, Audience: "toolgate"})
	if err != nil {
		b.Fatal(err)
	}
	tok := iss.Sign(b, oidctest.Claims(iss.URL, "toolgate", "alice", time.Hour, "oncall"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	if n := iss.JWKSFetches(); n > 1 {
		b.Fatalf("the key set was fetched %d times", n)
	}
}
