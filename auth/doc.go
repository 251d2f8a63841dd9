// Package auth tells who presented a bearer credential at toolgate's HTTP
// edge: the one shared token of a one-person setup, a per-user token
// (stored hashed in the audit DB, see audit.TokenAuth), or an OIDC access
// token checked against its issuer's published keys. Each returns the
// caller as a tools.Principal; the edge refuses the request on any error.
//
//	a := auth.Chain{Shared: shared, Tokens: st.TokenAuth(audit.ScopeAgent), TokenPrefix: audit.TokenPrefix, OIDC: o}
//	p, err := a.Authenticate(ctx, bearer)
package auth
