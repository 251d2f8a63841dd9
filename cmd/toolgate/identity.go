package main

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/mcp"
)

// buildAuth returns what opens scope (audit.ScopeAgent: /mcp;
// audit.ScopeReview: the web UI). /mcp accepts the shared token (when one
// is set), agent tokens from st (http.tokens) and OIDC access tokens for
// http.oidc.audience; an empty chain means it asks for no credential. The
// web UI accepts the reviewers' shared token, review tokens from st and
// OIDC access tokens for http.oidc.review_audience. No credential opens
// both (an OIDC token for both audiences opens neither): agents hold
// theirs, and must not answer reviews with them.
func buildAuth(ctx context.Context, h config.HTTP, shared, scope string, st *audit.Store) (auth.Chain, error) {
	var c auth.Chain
	user, audience, other := h.SharedUser, "", ""
	if h.OIDC != nil {
		audience, other = h.OIDC.Audience, h.OIDC.ReviewAudience
	}
	if scope == audit.ScopeReview {
		user, audience, other = cmp.Or(h.ReviewerUser, "reviewer"), other, audience
	}
	if shared != "" {
		c.Shared = mcp.SharedToken{Token: shared, User: user}
	}
	if h.Tokens || scope == audit.ScopeReview {
		c.Tokens, c.TokenPrefix = st.TokenAuth(scope), audit.TokenPrefix
	}
	if o := h.OIDC; o != nil && audience != "" {
		v, err := auth.NewOIDC(ctx, auth.OIDCOptions{Issuer: o.Issuer, Audience: audience, NotAudience: other, UserClaim: o.UserClaim, GroupsClaim: o.GroupsClaim})
		if err != nil {
			return c, fmt.Errorf("http.oidc: %w", err)
		}
		c.OIDC = v
	}
	return c, nil
}

// reviewerToken reads the reviewers' shared token (http.reviewer_token_*),
// "" when none is configured. It must differ from the agents' token.
func reviewerToken(h config.HTTP, env environ, agents string) (string, error) {
	t, err := configuredSecret(env, "http", "reviewer_token", h.ReviewerTokenEnv, h.ReviewerTokenFile)
	switch {
	case err != nil:
		return "", err
	case t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(agents)) == 1:
		return "", errors.New("http: the reviewer token is the agents' token (http.auth_token_*): agents hold that one, so it must not answer reviews; give reviewers a token of their own")
	}
	return t, nil
}

// metricsPlan says where /metrics is served and what it asks for.
type metricsPlan struct {
	// handler is /metrics, behind its own token when one is configured;
	// nil: not served.
	handler http.Handler
	// listen is its own listener's address; "" means the MCP listener.
	listen string
}

// planMetrics decides how /metrics is served. Agents' credentials never
// open it: it takes its own token (metrics.auth_token_*), or its own
// listener (metrics.listen). A team deployment (per-user credentials)
// with neither gets no /metrics on the MCP listener, since every agent can
// reach that listener; a one-person setup keeps it there, open, as before.
func planMetrics(mc config.Metrics, perUser bool, env environ, m http.Handler, logger *slog.Logger) (metricsPlan, error) {
	token, err := configuredSecret(env, "metrics", "auth_token", mc.AuthTokenEnv, mc.AuthTokenFile)
	if err != nil {
		return metricsPlan{}, err
	}
	if mc.Listen == "" && token == "" && perUser {
		logger.Warn("/metrics is not served: with per-user credentials it needs metrics.auth_token_env/_file or metrics.listen")
		return metricsPlan{}, nil
	}
	h := m
	if token != "" {
		h = metricsGuard(token, m)
	}
	return metricsPlan{handler: h, listen: mc.Listen}, nil
}

// metricsGuard requires the metrics token (constant-time compare); any
// other credential, an agent's included, gets 401.
func metricsGuard(token string, next http.Handler) http.Handler {
	want := []byte("bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if len(got) > 7 {
			got = strings.ToLower(got[:7]) + got[7:]
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="toolgate-metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
