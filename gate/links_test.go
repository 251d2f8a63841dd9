package gate

import (
	"context"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

type linker map[string]string

func (l linker) Links(toolgate.Call) (map[string]string, error) { return l, nil }

// TestThroughLinks: a call whose arguments go through links is decided
// again on the paths they resolve to, and the stricter decision stands,
// its reason naming the links; a decision as strict or stricter stands
// as it was.
func TestThroughLinks(t *testing.T) {
	// The rules deny a path under .git/hooks and review one under /etc.
	decide := decider(func(c toolgate.Call) toolgate.Decision {
		for _, v := range []any{c.Args["path"], c.Args["paths"].([]any)[0]} {
			switch p, _ := v.(string); {
			case strings.Contains(p, ".git/hooks"):
				return toolgate.Decision{Action: toolgate.Deny, Rule: "deny-persistence-writes", Reason: "this call writes " + p}
			case strings.HasPrefix(p, "/etc"):
				return toolgate.Decision{Action: toolgate.Review, Rule: "review-outside-workspace", Reason: "outside: " + p}
			}
		}
		return toolgate.Decision{Action: toolgate.Allow, Rule: "allow-workspace-writes"}
	})
	for _, tc := range []struct {
		links      linker
		path, item string
		rule       string
		reason     []string
	}{
		{linker{"/ws/hk/pre-commit": "/ws/.git/hooks/pre-commit"}, "/ws/hk/pre-commit", "/ws/a", "deny-persistence-writes",
			[]string{`"/ws/hk/pre-commit" is a link to "/ws/.git/hooks/pre-commit", and this call writes /ws/.git/hooks/pre-commit`}},
		{linker{"/ws/cfg": "/etc/x"}, "/ws/a", "/ws/cfg", "review-outside-workspace", []string{"is a link to", "outside: /etc/x"}},
		{linker{"/ws/docs": "/ws/shared/docs"}, "/ws/docs", "/ws/a", "allow-workspace-writes", nil},
		{nil, "/ws/hk/pre-commit", "/ws/a", "allow-workspace-writes", nil},
	} {
		var decided toolgate.Decision
		g, err := New(Options{
			Decider: decide, Linker: tc.links,
			Recorder:  &capture{recorder: &recorder{j: &journal{}}, d: &decided},
			Forwarder: &forwarder{j: &journal{}, res: toolgatetest.TextResult("done", false)},
		})
		if err != nil {
			t.Fatal(err)
		}
		g.Handle(context.Background(), toolgate.Call{Server: "fs", Tool: "write_file", Name: "fs__write_file",
			Args: map[string]any{"path": tc.path, "paths": []any{tc.item}}})
		if decided.Rule != tc.rule {
			t.Errorf("%v: rule %q (%s), want %q", tc.links, decided.Rule, decided.Reason, tc.rule)
		}
		for _, w := range tc.reason {
			if !strings.Contains(decided.Reason, w) {
				t.Errorf("%v: reason %q, want %q in it", tc.links, decided.Reason, w)
			}
		}
	}
}
