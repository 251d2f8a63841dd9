package toolgate

import (
	"context"
	"slices"
	"strings"
)

// How a caller was authenticated (Principal.Auth).
const (
	// AuthNone: no credential was asked for (stdio, or HTTP without any
	// token configured).
	AuthNone = ""
	// AuthShared: the one shared bearer token of a one-person setup.
	AuthShared = "shared-token"
	// AuthToken: a per-user bearer token (toolgate tokens create).
	AuthToken = "token"
	// AuthOIDC: an OIDC access token validated against its issuer's keys.
	AuthOIDC = "oidc"
)

// Principal is who made a call: the person (or service) whose credential
// the agent presented. The edge sets it once, from the credential alone;
// nothing the agent sends in a request can change it.
type Principal struct {
	// User names the caller: the token's user, or the OIDC claim
	// configured as the user (sub or email). "" when no credential was asked for.
	User string `json:"user,omitempty"`
	// Groups are the caller's groups, sorted.
	Groups []string `json:"groups,omitempty"`
	// Auth is how the caller was authenticated, one of the Auth* constants.
	Auth string `json:"auth,omitempty"`
}

// Personal reports whether p names one person by their own credential
// (a per-user token or OIDC), as opposed to a shared token or none. Only
// then can a review tell the caller from the reviewer.
func (p Principal) Personal() bool {
	return p.User != "" && (p.Auth == AuthToken || p.Auth == AuthOIDC)
}

// Same reports whether p and q are one principal: the same user,
// authenticated the same way (groups aside). It is how sessions are bound
// to their principal, and how an upstream's log message is kept to the
// principal whose request it can be put down to.
func (p Principal) Same(q Principal) bool { return p.User == q.User && p.Auth == q.Auth }

type principalKey struct{}

// WithPrincipal returns ctx carrying p, set by the agent-facing edge on
// every request it authenticated.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, zero for none (stdio,
// HTTP without credentials, or a request toolgate makes on its own).
func PrincipalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// String describes p for people: "alice (token; groups dev, oncall)", ""
// for no principal.
func (p Principal) String() string {
	if p.User == "" && p.Auth == "" {
		return ""
	}
	user, auth := p.User, p.Auth
	if user == "" {
		user = "-"
	}
	if auth == "" {
		auth = "-"
	}
	s := user + " (" + auth
	if len(p.Groups) > 0 {
		s += "; groups " + strings.Join(p.Groups, ", ")
	}
	return s + ")"
}

// NormalGroups returns groups sorted, without duplicates or empty names.
func NormalGroups(groups []string) []string {
	var out []string
	for _, g := range groups {
		if g != "" {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
