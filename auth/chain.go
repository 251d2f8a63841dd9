package auth

import (
	"context"
	"errors"
	"strings"

	"github.com/toolgate/toolgate"
)

// Authenticator returns the principal a credential belongs to, or an
// error that refuses it.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (toolgate.Principal, error)
}

// ErrUnknownCredential: no configured authenticator accepts the credential.
var ErrUnknownCredential = errors.New("auth: credential not accepted")

// Chain picks the authenticator a credential is meant for by its shape:
// the shared token (compared first, in constant time), a per-user token
// (TokenPrefix), a JWT (OIDC). A nil member accepts nothing. A credential
// is tried against one per-user authenticator only, so a revoked token is
// refused even if it were also somehow valid elsewhere.
type Chain struct {
	// Shared is the one shared token's authenticator; nil when none.
	Shared Authenticator
	// Tokens authenticates credentials starting with TokenPrefix.
	Tokens      Authenticator
	TokenPrefix string
	// OIDC authenticates JWTs (three dot-separated parts).
	OIDC Authenticator
}

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, cred string) (toolgate.Principal, error) {
	if c.Shared != nil {
		if p, err := c.Shared.Authenticate(ctx, cred); err == nil {
			return p, nil
		}
	}
	switch {
	case c.Tokens != nil && c.TokenPrefix != "" && strings.HasPrefix(cred, c.TokenPrefix):
		return c.Tokens.Authenticate(ctx, cred)
	case c.OIDC != nil && strings.Count(cred, ".") == 2:
		return c.OIDC.Authenticate(ctx, cred)
	}
	return toolgate.Principal{}, ErrUnknownCredential
}

// Empty reports whether c accepts nothing at all.
func (c Chain) Empty() bool {
	return c.Shared == nil && (c.Tokens == nil || c.TokenPrefix == "") && c.OIDC == nil
}
