package config

import (
	"strings"
	"testing"
)

func TestIdentityConfig(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(`
http:
  tokens: true
  shared_user: me
  oidc: {issuer: "https://id.example.com", audience: toolgate, user_claim: email}
metrics: {listen: "127.0.0.1:9100", auth_token_env: METRICS_TOKEN}
review:
  slack:
    users: {U123: alice, U456: bob}
`))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if !h.Tokens || h.SharedUser != "me" || h.OIDC == nil || h.OIDC.Issuer != "https://id.example.com" ||
		h.OIDC.Audience != "toolgate" || h.OIDC.UserClaim != "email" || !h.PerUser() {
		t.Fatalf("http: %+v %+v", h, h.OIDC)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9100" || cfg.Metrics.AuthTokenEnv != "METRICS_TOKEN" {
		t.Fatalf("metrics: %+v", cfg.Metrics)
	}
	if cfg.Review.Slack.Users["U123"] != "alice" || len(cfg.Review.Slack.Users) != 2 {
		t.Fatalf("slack users: %v", cfg.Review.Slack.Users)
	}
	if d := Default(); d.HTTP.PerUser() {
		t.Fatal("per-user auth on by default")
	}
	for src, want := range map[string]string{
		"http: {oidc: {audience: x}}\n":                          "http.oidc.issuer must be",
		"http: {oidc: {issuer: 'https://i'}}\n":                  "http.oidc.audience must be set",
		"metrics: {auth_token_env: A, auth_token_file: f}\n":     "give auth_token_env or auth_token_file, not both",
		"http: {oidc: {issuer: 'https://i', audience: a, x: 1}}": `unknown key "x" in http.oidc`,
	} {
		if _, err := Parse("c.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", src, err, want)
		}
	}
}
