package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/toolgate/toolgate"
)

// Claim defaults for OIDCOptions.
const (
	DefaultUserClaim   = "sub"
	DefaultGroupsClaim = "groups"
)

// discoveryTimeout bounds each request to the issuer (discovery, keys).
const discoveryTimeout = 10 * time.Second

// OIDCOptions configures OIDC access-token validation.
type OIDCOptions struct {
	// Issuer is the issuer URL; its discovery document
	// (/.well-known/openid-configuration) names the key set. Tokens must
	// carry exactly this "iss".
	Issuer string
	// Audience must be among the token's "aud" values. Required: a token
	// minted for another service is not a credential for toolgate.
	Audience string
	// NotAudience, when set, must not be among them: a token minted for
	// both (an identity provider may list every client a user holds roles
	// in) opens neither side of a split such as toolgate's /mcp and its
	// web UI.
	NotAudience string
	// UserClaim names the claim that is the principal's user; "" means
	// DefaultUserClaim. It must be a non-empty string in every token.
	UserClaim string
	// GroupsClaim names the claim listing the principal's groups (a list
	// of strings, or one string); "" means DefaultGroupsClaim. Absent
	// means no groups.
	GroupsClaim string
	// Client makes the requests to the issuer; nil means one with a
	// 10-second timeout.
	Client *http.Client
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
}

// OIDC validates OIDC access tokens (JWTs) against an issuer's keys:
// signature (the issuer's published keys, cached; see keySet for when
// they are fetched again, which is how rotation is picked up), issuer,
// audience and expiry, by go-oidc and go-jose.
type OIDC struct {
	o OIDCOptions
	v *oidc.IDTokenVerifier
}

// NewOIDC fetches the issuer's discovery document and returns the
// validator. It fails when the issuer cannot be reached or names itself
// differently: toolgate does not start with an identity source it cannot check.
func NewOIDC(ctx context.Context, o OIDCOptions) (*OIDC, error) {
	if o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("auth: oidc needs an issuer and an audience")
	}
	if o.UserClaim == "" {
		o.UserClaim = DefaultUserClaim
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultGroupsClaim
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: discoveryTimeout}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.Client), discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc issuer %s: %w", o.Issuer, err)
	}
	var meta struct {
		JWKSURL string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
		return nil, fmt.Errorf("auth: oidc issuer %s: discovery names no jwks_uri", o.Issuer)
	}
	cfg := &oidc.Config{ClientID: o.Audience, Now: o.Now, SupportedSigningAlgs: meta.Algs}
	if len(cfg.SupportedSigningAlgs) == 0 {
		cfg.SupportedSigningAlgs = []string{oidc.RS256}
	}
	keys := &keySet{url: meta.JWKSURL, client: o.Client, now: o.Now}
	for _, a := range cfg.SupportedSigningAlgs {
		keys.algs = append(keys.algs, jose.SignatureAlgorithm(a))
	}
	return &OIDC{o: o, v: oidc.NewVerifier(o.Issuer, keys, cfg)}, nil
}

// Authenticate implements Authenticator.
func (a *OIDC) Authenticate(ctx context.Context, raw string) (toolgate.Principal, error) {
	tok, err := a.v.Verify(ctx, raw)
	if err != nil {
		return toolgate.Principal{}, fmt.Errorf("auth: oidc: %w", err)
	}
	if a.o.NotAudience != "" && slices.Contains(tok.Audience, a.o.NotAudience) {
		return toolgate.Principal{}, fmt.Errorf("auth: oidc: the token is also for %q, which this credential must not open", a.o.NotAudience)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return toolgate.Principal{}, fmt.Errorf("auth: oidc claims: %w", err)
	}
	user, _ := claims[a.o.UserClaim].(string)
	if user = strings.TrimSpace(user); user == "" {
		return toolgate.Principal{}, fmt.Errorf("auth: oidc: token has no %q claim naming the user", a.o.UserClaim)
	}
	var groups []string
	switch g := claims[a.o.GroupsClaim].(type) {
	case nil:
	case string:
		groups = []string{g}
	case []any:
		for _, e := range g {
			s, ok := e.(string)
			if !ok {
				return toolgate.Principal{}, fmt.Errorf("auth: oidc: %q claim holds a non-string", a.o.GroupsClaim)
			}
			groups = append(groups, s)
		}
	default:
		return toolgate.Principal{}, fmt.Errorf("auth: oidc: %q claim is neither a string nor a list", a.o.GroupsClaim)
	}
	return toolgate.Principal{User: user, Groups: toolgate.NormalGroups(groups), Auth: toolgate.AuthOIDC}, nil
}
