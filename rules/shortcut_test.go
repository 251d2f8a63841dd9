package rules_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/rules/corpus"
)

// shortcutSets returns the default pack compiled with its evaluation
// shortcuts and without them.
func shortcutSets(t testing.TB) (fast, general *rules.Set) {
	t.Helper()
	general, err := rules.ParseGeneral("default.yaml", rules.DefaultSource())
	if err != nil {
		t.Fatal(err)
	}
	return rules.Default(), general
}

// sameDecision fails t unless both sets decide c, in ws, alike: the whole
// Decision (action, rule, reason, sandbox, shadow results, confidence
// effect...) and every rule's step.
func sameDecision(t *testing.T, where string, fast, general *rules.Set, ws rules.Workspace, c toolgate.Call) {
	t.Helper()
	fast, general = fast.WithWorkspace(ws), general.WithWorkspace(ws)
	fd, fsteps, _ := fast.Explain(context.Background(), c)
	gd, gsteps, _ := general.Explain(context.Background(), c)
	if !reflect.DeepEqual(fd, gd) || !reflect.DeepEqual(fsteps, gsteps) {
		t.Errorf("%s: the shortcuts change the decision:\nfast    %+v\n        %+v\ngeneral %+v\n        %+v", where, fd, fsteps, gd, gsteps)
	}
	if d := fast.Evaluate(context.Background(), c); !reflect.DeepEqual(d, fd) {
		t.Errorf("%s: Evaluate %+v, Explain %+v", where, d, fd)
	}
}

// TestShortcutsKeepDecisions decides every call of the default pack's cases
// and of both corpora with and without the evaluation shortcuts (fast
// paths, kind guards) and requires identical decisions.
func TestShortcutsKeepDecisions(t *testing.T) {
	fast, general := shortcutSets(t)
	calls := packCalls(t)
	for _, pc := range calls {
		sameDecision(t, pc.where, fast, general, pc.ws, pc.call)
	}
	if len(calls) < 100 {
		t.Fatalf("only %d calls compared", len(calls))
	}
	t.Logf("%d calls decided alike", len(calls))
}

// FuzzShortcuts compares the two paths on arbitrary calls: tool, server,
// kind and JSON arguments.
func FuzzShortcuts(f *testing.F) {
	for _, seed := range [][4]string{
		{"run_command", "workspace", "", `{"command":"go test ./... && git status"}`},
		{"read_file", "workspace", "", `{"path":"../x"}`},
		{"write_file", "workspace", "", `{"path":"/etc/passwd","content":"x"}`},
		{"query", "db", "", `{"sql":"drop table x"}`},
		{"fetch", "web", "", `{"url":"http://localhost:8080/"}`},
		{"git_status", "git", "", `{"repo_path":"."}`},
		{"shadow", "fs", "resource", `{"uri":"file:///etc/shadow"}`},
		{"p", "s", "prompt", `{}`},
		{"run_command", "workspace", "", `{"command":"echo 'unterminated"}`},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	fast, general := shortcutSets(f)
	ws := corpus.Workspace()
	f.Fuzz(func(t *testing.T, tool, server, kind, args string) {
		var a map[string]any
		if json.Unmarshal([]byte(args), &a) != nil {
			return
		}
		c := toolgate.Call{Tool: tool, Server: server, Name: server + "__" + tool, Kind: kind, Args: a}
		sameDecision(t, "fuzz", fast, general, ws, c)
	})
}
