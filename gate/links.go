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
// (workspace.Links). It keeps them so until release is called: other
// calls that could change them wait (release is nil when c is no call
// they wait for). settle says that c may change them itself, so its
// server must be done with it before release (toolgate.Call.Settle). It
// returns ctx's error if ctx ends while c waits.
type Linker interface {
	Links(ctx context.Context, c toolgate.Call) (links map[string]string, release func(), settle bool, err error)
}

// throughLinks returns the stricter of d and the decision on c with each
// argument that goes through a link replaced by the path it resolves to.
// The rules read paths as text, while a server outside the sandbox
// follows links: a command can make hk a link to .git/hooks, and a write
// of hk/pre-commit through such a server writes a git hook. It also
// returns the links, which stay as they are until release is called.
func (g *Gate) throughLinks(ctx context.Context, c *toolgate.Call, d toolgate.Decision) (_ toolgate.Decision, links map[string]string, release func()) {
	var err error
	links, release, c.Settle, err = g.links(ctx, *c)
	if err != nil {
		why := "toolgate could not look at every path of the call for links in the workspace, so it is not run: "
		if ctx.Err() != nil {
			why = fenceText
		}
		return toolgate.Decision{Action: toolgate.Deny, Rule: RuleArgs, Version: d.Version, Label: d.Label, Reason: why + err.Error()}, nil, release
	}
	if len(links) == 0 {
		return d, nil, release
	}
	alt := *c
	alt.Args, _ = resolveLinks(c.Args, links).(map[string]any)
	ld := g.o.Decider.Decide(ctx, alt)
	if toolgate.Stricter(d.Action, ld.Action) == d.Action {
		return d, links, release
	}
	var via []string
	for _, p := range slices.Sorted(maps.Keys(links)) {
		via = append(via, fmt.Sprintf("%q is a link to %q", p, links[p]))
	}
	ld.Reason = strings.Join(via, ", ") + ", and " + ld.Reason
	return ld, links, release
}

// links is Linker.Links with a release that is never nil: a no-op where
// nothing is held.
func (g *Gate) links(ctx context.Context, c toolgate.Call) (map[string]string, func(), bool, error) {
	links, release, settle, err := g.o.Linker.Links(ctx, c)
	if release == nil {
		release = func() {}
	}
	return links, release, settle, err
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

// rehold takes the fence again for c after its review, and returns why c
// may not run when the links under its paths are no longer was, those
// the rules and the reviewer saw.
func (g *Gate) rehold(ctx context.Context, c toolgate.Call, was map[string]string) (release func(), why string) {
	now, release, _, err := g.links(ctx, c)
	switch {
	case err != nil && ctx.Err() != nil:
		return release, fenceText + err.Error()
	case err == nil && maps.Equal(now, was):
		return release, ""
	}
	release()
	var changed []string
	if err != nil {
		changed = append(changed, err.Error())
	}
	for _, p := range slices.Sorted(maps.Keys(now)) {
		if was[p] != now[p] {
			changed = append(changed, fmt.Sprintf("%q is now a link to %q", p, now[p]))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(was)) {
		if _, ok := now[p]; !ok {
			changed = append(changed, fmt.Sprintf("%q is no longer a link to %q", p, was[p]))
		}
	}
	return func() {}, "the approved call was not run: the links in the workspace on its paths changed while it waited for review (" +
		strings.Join(changed, ", ") + "); the rules and the reviewer saw them as they were. Send the call again to have it decided on the workspace as it is now"
}
