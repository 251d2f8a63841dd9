package rules

import (
	"context"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

func TestPrincipalVariables(t *testing.T) {
	s := mustParse(t, `version: 1
default: deny
rules:
  - name: oncall
    match: '"oncall" in principal.groups && principal.auth in ["token", "oidc"]'
    action: allow
  - name: alice
    match: 'principal.user == "alice"'
    action: review
`)
	cases := []struct {
		name string
		p    toolgate.Principal
		want toolgate.Action
		rule string
	}{
		{"group member by token", toolgate.Principal{User: "bob", Groups: []string{"dev", "oncall"}, Auth: toolgate.AuthToken}, toolgate.Allow, "oncall"},
		{"group member by oidc", toolgate.Principal{User: "bob", Groups: []string{"oncall"}, Auth: toolgate.AuthOIDC}, toolgate.Allow, "oncall"},
		{"group named by a shared token is not enough", toolgate.Principal{User: "shared", Groups: []string{"oncall"}, Auth: toolgate.AuthShared}, toolgate.Deny, ""},
		{"user", toolgate.Principal{User: "alice", Groups: []string{"dev"}, Auth: toolgate.AuthToken}, toolgate.Review, "alice"},
		{"nobody", toolgate.Principal{}, toolgate.Deny, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x", Principal: tc.p, Time: time.Now()})
			if d.Action != tc.want || d.Rule != tc.rule || d.Error != "" {
				t.Fatalf("got %s by %q (err %q), want %s by %q", d.Action, d.Rule, d.Error, tc.want, tc.rule)
			}
		})
	}
}

func TestParseCallPrincipal(t *testing.T) {
	c, err := ParseCall([]byte(`{tool: echo, principal: {user: alice, groups: [oncall, dev], auth: token}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Principal.User != "alice" || c.Principal.Auth != toolgate.AuthToken || len(c.Principal.Groups) != 2 || c.Principal.Groups[0] != "dev" {
		t.Fatalf("principal %+v", c.Principal)
	}
}
