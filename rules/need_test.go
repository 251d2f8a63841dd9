package rules

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// parseBoth compiles src with the evaluation shortcuts and without.
func parseBoth(t testing.TB, src string) (fast, general *Set) {
	t.Helper()
	fast, err := parse("f.yaml", []byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	general, err = parse("f.yaml", []byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	return fast, general
}

// needOf compiles match as the one rule of a set and returns its need, as
// the names of the variables and the kinds it holds on; ok false for none.
func needOf(t *testing.T, match string) (vars, kinds []string, ok bool) {
	t.Helper()
	s, err := Parse("n.yaml", []byte(fmt.Sprintf("version: 1\nrules:\n  - name: r\n    match: %q\n    action: deny\n", match)))
	if err != nil {
		t.Fatal(err)
	}
	n := s.rules[0].need
	if n == nil {
		return nil, nil, false
	}
	for name, v := range normVars {
		if n.vars&(1<<v) != 0 {
			vars = append(vars, name)
		}
	}
	slices.Sort(vars)
	return vars, n.kinds, true
}

func TestMatchNeed(t *testing.T) {
	for _, tc := range []struct {
		match string
		vars  []string // nil with kinds nil: no need
		kinds []string
		none  bool
	}{
		{match: `cmd.commands.exists(c, c[0] == "rm")`, vars: []string{"cmd.commands"}},
		{match: `paths.secret.size() > 0`, vars: []string{"paths.secret"}},
		{match: `size(paths.secret) >= 1`, vars: []string{"paths.secret"}},
		{match: `paths.secret.size() != 0 || net.hosts.size() == 2`, vars: []string{"net.hosts", "paths.secret"}},
		{match: `!(paths.all.size() == 0)`, vars: []string{"paths.all"}},
		{match: `!cmd.programs.all(p, p == "ls")`, vars: []string{"cmd.programs"}},
		{match: `cmd.line.matches("rm -rf")`, vars: []string{"cmd.line"}},
		{match: `cmd.cwd.startsWith("/tmp")`, vars: []string{"cmd.cwd"}},
		{match: `tool.kind == "shell" && args.x == 1`, kinds: []string{"shell"}},
		{match: `"vcs" == tool.kind || tool.kind in ["a", "b"]`, kinds: []string{"vcs", "a", "b"}},
		{match: `!(tool.kind != "network")`, kinds: []string{"network"}},
		{match: `paths.written.exists(p, p == "/") && args.x == 1`, vars: []string{"paths.written"}},
		{match: `cel.bind(w, paths.written.filter(p, p.endsWith(".go")), w.size() > 0)`, vars: []string{"paths.written"}},
		{match: `cel.bind(l, net.hosts.all(h, h == "localhost"), !l)`, vars: []string{"net.hosts"}},
		{match: `cel.bind(w, paths.written.map(p, p + "x"), w.exists(p, true)) || false`, vars: []string{"paths.written"}},
		{match: `false`},
		// No need: each could be true, or an error, with every list empty.
		{match: `true`, none: true},
		{match: `paths.all.size() > 0 || args.x == 1`, none: true},
		// args.x runs first, and could cost anything.
		{match: `args.x == 1 && paths.written.exists(p, p == "/")`, none: true},
		{match: `cel.bind(x, args.x, paths.all.size() > 0)`, none: true},
		{match: `paths.all.size() >= 0`, none: true},
		{match: `paths.all.size() == 0`, none: true},
		{match: `cmd.line.matches("^$")`, none: true},
		{match: `cmd.line.startsWith("")`, none: true},
		{match: `cmd.line.size() > 0`, none: true},
		{match: `tool.kind != "shell"`, none: true},
		{match: `cmd.commands.exists_one(c, true) || paths.all.size() > 0`, none: true},
		{match: `paths.all.all(p, p == "x")`, none: true},
		{match: `cel.bind(paths, [1], paths.size() > 0)`, none: true},
		{match: `cmd.commands.exists(c, c.exists(w, w == "x") && c.size() > 0)`, vars: []string{"cmd.commands"}},
		{match: `cmd.commands.exists(c, c.filter(w, w == "x").size() > 0)`, vars: []string{"cmd.commands"}},
		{match: `[1].exists(c, paths.all.size() > 0)`, none: true},
	} {
		vars, kinds, ok := needOf(t, tc.match)
		if ok == tc.none || !reflect.DeepEqual(vars, tc.vars) || !reflect.DeepEqual(kinds, tc.kinds) {
			t.Errorf("%s: need %v %v (ok %v), want %v %v (ok %v)", tc.match, vars, kinds, ok, tc.vars, tc.kinds, !tc.none)
		}
	}
}

// needRules have needs of every shape, and parts that fail or cost more
// than CostLimit on large arguments, so that a skip that differs from
// evaluating shows. All are shadow rules, so every call evaluates each.
const needRules = `version: 1
default: allow
on_error: review
rules:
  - name: rm-then-missing
    match: 'cmd.commands.exists(c, c[0] == "rm") && args.nope == 1'
    action: deny
    mode: shadow
  - name: missing-then-rm
    match: 'args.nope == 1 && cmd.commands.exists(c, c[0] == "rm")'
    action: deny
    mode: shadow
  - name: costly-then-paths
    match: 'args.?list.orValue([]).all(x, args.?list.orValue([]).all(y, x != y || true)) && paths.written.size() > 0'
    action: deny
    mode: shadow
  - name: costly-bind
    match: 'cel.bind(x, args.?list.orValue([]).all(a, args.?list.orValue([]).all(b, a != b || true)), paths.written.size() > 0)'
    action: deny
    mode: shadow
  - name: paths-then-costly
    match: 'paths.written.size() > 0 && args.?list.orValue([]).all(x, args.?list.orValue([]).all(y, x != y || true))'
    action: deny
    mode: shadow
  - name: bound
    match: 'cel.bind(w, paths.all.filter(p, p.endsWith(".go")), w.size() > 0 || cmd.line.matches("curl"))'
    action: review
    mode: shadow
  - name: hosts
    match: 'cel.bind(l, net.hosts.all(h, h == "localhost"), !l || tool.kind == "network")'
    action: review
    mode: shadow
  - name: untracked
    match: 'paths.written.size() > 0 || cmd.escapes.size() > 0'
    action: review
    mode: shadow
  - name: programs
    match: '!cmd.programs.all(p, p in ["ls", "cat"])'
    action: review
    mode: shadow
`

// TestNeedSkipsAsEvaluation decides calls that hold and lack each rule's
// need with and without the skip: the same decisions and steps, errors
// and cost-limit failures included.
func TestNeedSkipsAsEvaluation(t *testing.T) {
	fast, general := parseBoth(t, needRules)
	for _, r := range fast.rules {
		if r.need == nil && !strings.HasPrefix(r.name, "costly-") && !strings.HasPrefix(r.name, "missing-") {
			t.Errorf("rule %s has no need", r.name)
		}
	}
	big := make([]any, 2000)
	for i := range big {
		big[i] = float64(i)
	}
	ws := Workspace{Root: "/home/u/p", Home: "/home/u"}
	fast, general = fast.WithWorkspace(ws), general.WithWorkspace(ws)
	var calls []toolgate.Call
	for _, cmd := range []string{"", "ls", "rm x.go", "curl http://example.com/x", "echo $(cat ~/.ssh/id_rsa)", "echo 'unterminated", "cat a.go > b.go"} {
		for _, extra := range []map[string]any{{}, {"nope": 1.0}, {"list": big}, {"list": []any{1.0, 2.0}}} {
			args := map[string]any{}
			if cmd != "" {
				args["command"] = cmd
			}
			for k, v := range extra {
				args[k] = v
			}
			calls = append(calls,
				toolgate.Call{Tool: "run_command", Server: "workspace", Args: args},
				toolgate.Call{Tool: "fetch", Server: "web", Args: map[string]any{"url": "http://localhost/" + strings.ReplaceAll(cmd, " ", "")}},
				toolgate.Call{Tool: "echo", Server: "up", Args: extra})
		}
	}
	skipped := 0
	for _, c := range calls {
		fd, fsteps, _ := fast.Explain(context.Background(), c)
		gd, gsteps, _ := general.Explain(context.Background(), c)
		if !reflect.DeepEqual(fd, gd) || !reflect.DeepEqual(fsteps, gsteps) {
			t.Errorf("call %s %v:\nfast    %+v\n        %+v\ngeneral %+v\n        %+v", c.Tool, c.Args, fd, fsteps, gd, gsteps)
		}
		act := fast.acts.get(&c, &fast.ws, fast.kinds)
		for _, r := range fast.rules {
			if r.need != nil && !r.need.holds(act) {
				skipped++
			}
		}
		fast.acts.put(act)
	}
	if skipped == 0 {
		t.Fatal("no rule was skipped")
	}
}
