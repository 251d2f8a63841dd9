package gate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/toolgate/toolgate"
)

// Linker finds the paths among a call's arguments that go through a
// symbolic link in the workspace, and the path each resolves to
// (workspace.Links).
type Linker interface {
	Links(c toolgate.Call) (map[string]string, error)
}

// throughLinks returns the stricter of d and the decision on c with each
// argument that goes through a link replaced by the path it resolves to.
// The rules read paths as text, while a server outside the sandbox
// follows links: a command can make hk a link to .git/hooks, and a write
// of hk/pre-commit through such a server writes a git hook.
func (g *Gate) throughLinks(ctx context.Context, c toolgate.Call, d toolgate.Decision) toolgate.Decision {
	if g.o.Linker == nil || d.Action == toolgate.Deny {
		return d
	}
	links, err := g.o.Linker.Links(c)
	if err != nil {
		return toolgate.Decision{Action: toolgate.Deny, Rule: RuleArgs, Version: d.Version, Label: d.Label,
			Reason: "toolgate could not look at every path of the call for links in the workspace, so it is not run: " + err.Error()}
	}
	if len(links) == 0 {
		return d
	}
	alt := c
	alt.Args, _ = resolveLinks(c.Args, links).(map[string]any)
	ld := g.o.Decider.Decide(ctx, alt)
	if toolgate.Stricter(d.Action, ld.Action) == d.Action {
		return d
	}
	var via []string
	for _, p := range slices.Sorted(maps.Keys(links)) {
		via = append(via, fmt.Sprintf("%q is a link to %q", p, links[p]))
	}
	ld.Reason = strings.Join(via, ", ") + ", and " + ld.Reason
	return ld
}

// resolveLinks is v, a decoded JSON value, with each string that links
// names replaced by what it names.
func resolveLinks(v any, links map[string]string) any {
	switch x := v.(type) {
	case string:
		if t, ok := links[x]; ok {
			return t
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = resolveLinks(e, links)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = resolveLinks(e, links)
		}
		return l
	}
	return v
}
