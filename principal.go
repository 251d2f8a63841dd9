package toolgate

import (
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
