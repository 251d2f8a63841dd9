package rules

import (
	"context"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestHiddenPathsAreSecret: a path the sandbox hides (sandbox.hide) is a
// secret to the rules, at or under it, whether a server outside the
// sandbox reads it by a tool or as a file: resource; its neighbours are
// not.
func TestHiddenPathsAreSecret(t *testing.T) {
	s := Default().WithWorkspace(Workspace{Root: "/w", Home: "/h", Hidden: []string{"/w/config/prod.txt", "/srv/shared"}})
	cases := []struct {
		call toolgate.Call
		deny bool
	}{
		{toolgate.Call{Server: "a", Tool: "read", Name: "a__read", Args: map[string]any{"path": "/w/config/prod.txt"}}, true},
		{toolgate.Call{Server: "a", Tool: "read", Name: "a__read", Args: map[string]any{"path": "config/prod.txt"}}, true},
		{toolgate.Call{Server: "a", Tool: "read", Name: "a__read", Args: map[string]any{"path": "/srv/shared/keys/a"}}, true},
		{toolgate.Call{Kind: toolgate.KindResource, Server: "a", Tool: "files", Name: "a__files", Args: map[string]any{"uri": "file:///w/config/prod.txt"}}, true},
		{toolgate.Call{Server: "a", Tool: "read", Name: "a__read", Args: map[string]any{"path": "/w/config/prod.txt.example"}}, false},
		{toolgate.Call{Server: "a", Tool: "read", Name: "a__read", Args: map[string]any{"path": "/srv/shared2"}}, false},
	}
	for _, tc := range cases {
		d := s.Evaluate(context.Background(), tc.call)
		if denied := d.Action == toolgate.Deny && (d.Rule == "deny-secret-paths" || d.Rule == "deny-secret-resources"); denied != tc.deny {
			t.Errorf("%s %v: %s by %q, want denied as secret %v", tc.call.Name, tc.call.Args, d.Action, d.Rule, tc.deny)
		}
	}
}
