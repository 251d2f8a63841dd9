// Package oidctest is a local OIDC issuer for tests: an httptest server
// serving a discovery document and a JSON Web Key Set, with RSA keys made
// in the test, that signs access tokens with go-jose.
//
//	iss := oidctest.New(t)
//	tok := iss.Sign(t, oidctest.Claims(iss.URL, "toolgate", "alice", time.Hour))
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a running test issuer. Its key set holds the keys added with
// Rotate (and New's first one); Sign uses the newest.
type Issuer struct {
	URL string

	mu   sync.Mutex
	keys []jose.JSONWebKey // private keys, newest last
	// JWKSFetches counts requests for the key set.
	jwksFetches int
}

// New starts an issuer with one key; it stops when t ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/keys",
			"authorization_endpoint":                iss.URL + "/auth",
			"token_endpoint":                        iss.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		iss.jwksFetches++
		set := jose.JSONWebKeySet{}
		for _, k := range iss.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		iss.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	iss.Rotate(t, false)
	return iss
}

// NewKey returns a fresh RSA signing key with kid.
func NewKey(t testing.TB, kid string) jose.JSONWebKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// Rotate adds a new key, which Sign uses from now on; with drop, the
// older keys leave the key set.
func (iss *Issuer) Rotate(t testing.TB, drop bool) {
	t.Helper()
	iss.mu.Lock()
	k := NewKey(t, "key-"+string(rune('a'+len(iss.keys))))
	if drop {
		iss.keys = nil
	}
	iss.keys = append(iss.keys, k)
	iss.mu.Unlock()
}

// Key returns the key Sign uses.
func (iss *Issuer) Key() jose.JSONWebKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.keys[len(iss.keys)-1]
}

// JWKSFetches returns how often the key set was fetched.
func (iss *Issuer) JWKSFetches() int {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.jwksFetches
}

// Sign signs claims with the issuer's current key.
func (iss *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return SignWith(t, iss.Key(), claims)
}

// SignWith signs claims with key (which need not be in any key set).
func SignWith(t testing.TB, key jose.JSONWebKey, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Claims returns the claims of a token from issuer for audience naming
// user (as sub), valid for ttl from now (negative: expired).
func Claims(issuer, audience, user string, ttl time.Duration, groups ...string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": issuer, "aud": audience, "sub": user,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix(),
	}
	if groups != nil {
		c["groups"] = groups
	}
	return c
}
