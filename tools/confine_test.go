package tools

import (
	"errors"
	"testing"

	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
)

// TestConfine: a stdio upstream runs every kind of call in its own
// profile or refuses it; the in-process server confines its tool calls in
// any profile but cannot confine anything else.
func TestConfine(t *testing.T) {
	builtin := server.NewMCPServer("builtin", "1")
	cases := []struct {
		name    string
		spec    Upstream
		kind    string
		profile string
		want    string
		refused bool
	}{
		{name: "unconfined, none named", spec: Upstream{Name: "a"}, kind: toolgate.KindResource},
		{name: "unconfined, resource in read-only", spec: Upstream{Name: "a"}, kind: toolgate.KindResource, profile: "read-only", refused: true},
		{name: "unconfined, prompt in read-only", spec: Upstream{Name: "a"}, kind: toolgate.KindPrompt, profile: "read-only", refused: true},
		{name: "unconfined, tool in read-only", spec: Upstream{Name: "a"}, profile: "read-only", refused: true},
		{name: "confined, none named", spec: Upstream{Name: "a", Sandbox: "docs"}, kind: toolgate.KindCompletion, want: "docs"},
		{name: "confined, same named", spec: Upstream{Name: "a", Sandbox: "docs"}, kind: toolgate.KindResource, profile: "docs", want: "docs"},
		{name: "confined, other named", spec: Upstream{Name: "a", Sandbox: "docs"}, kind: toolgate.KindResource, profile: "read-only", refused: true},
		{name: "built-in tool", spec: Upstream{Name: "b", Server: builtin}, profile: "read-only", want: "read-only"},
		{name: "built-in resource, none named", spec: Upstream{Name: "b", Server: builtin}, kind: toolgate.KindResource},
		{name: "built-in resource in read-only", spec: Upstream{Name: "b", Server: builtin}, kind: toolgate.KindResource, profile: "read-only", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &upstream{spec: tc.spec}
			got, err := u.confine(toolgate.Call{Kind: tc.kind, Server: tc.spec.Name, Tool: "x", Sandbox: tc.profile})
			switch {
			case tc.refused && !errors.Is(err, ErrSandboxMismatch):
				t.Errorf("confine = %q, %v; want ErrSandboxMismatch", got, err)
			case !tc.refused && (err != nil || got != tc.want):
				t.Errorf("confine = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
