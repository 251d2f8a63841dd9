package gate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestQuarantinedToolRefused: a call of a tool whose definition is not the
// approved one is refused and recorded as denied, with a message saying
// what unblocks it (but not the command), even when the rules allow
// everything; a
// pinned, built-in or unchecked tool's call is decided by the rules.
func TestQuarantinedToolRefused(t *testing.T) {
	approved := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		pin     toolgate.Pin
		refused bool
		want    string
	}{
		{toolgate.Pin{State: toolgate.PinChanged, ApprovedAt: approved}, true, "tool up__echo's definition changed since it was approved on 2026-03-01, so it is quarantined until an admin reviews and approves the new definition"},
		{toolgate.Pin{State: toolgate.PinPending}, true, "tool up__echo is new and not approved yet"},
		{toolgate.Pin{State: toolgate.PinError, Err: "disk I/O error"}, true, "disk I/O error"},
		{toolgate.Pin{State: toolgate.PinPinned, ApprovedAt: approved}, false, "done"},
		{toolgate.Pin{State: toolgate.PinBuiltin}, false, "done"},
		{toolgate.Pin{}, false, "done"},
	} {
		t.Run(string(tc.pin.State), func(t *testing.T) {
			j := &journal{}
			rec := &recorder{j: j}
			var decided toolgate.Decision
			g, err := New(Options{
				Decider: decider(func(c toolgate.Call) toolgate.Decision {
					j.add("decide")
					return toolgate.Decision{Action: toolgate.Allow}
				}),
				Recorder:  &capture{recorder: rec, d: &decided},
				Forwarder: &forwarder{j: j, res: toolgatetest.TextResult("done", false)},
			})
			if err != nil {
				t.Fatal(err)
			}
			res := g.Handle(context.Background(), toolgate.Call{Server: "up", Tool: "echo", Name: "up__echo", Pin: tc.pin})
			got := toolgatetest.Text(res)
			if !strings.Contains(got, tc.want) {
				t.Fatalf("result %q does not contain %q", got, tc.want)
			}
			if tc.refused {
				if strings.Contains(got, "tools approve") {
					t.Fatalf("the refusal hands the agent the command that approves the tool: %s", got)
				}
				if !res.IsError || j.String() != "begin:deny" || decided.Rule != RulePin || !strings.Contains(decided.Reason, "up__echo") {
					t.Fatalf("quarantined call: isError %v, journal %q, recorded %+v", res.IsError, j, decided)
				}
				return
			}
			if res.IsError || j.String() != "decide begin:allow forward finish:ok" {
				t.Fatalf("trusted call: isError %v, journal %q", res.IsError, j)
			}
		})
	}
}

type decider func(toolgate.Call) toolgate.Decision

func (f decider) Decide(_ context.Context, c toolgate.Call) toolgate.Decision { return f(c) }

// capture is a recorder that keeps the decision Begin recorded.
type capture struct {
	*recorder
	d *toolgate.Decision
}

func (c *capture) Begin(ctx context.Context, call toolgate.Call, d toolgate.Decision) error {
	*c.d = d
	return c.recorder.Begin(ctx, call, d)
}

// pinForwarder is a forwarder that knows its tools' pins, as the catalog does.
type pinForwarder struct {
	*forwarder
	pins map[string]toolgate.Pin
}

func (f pinForwarder) PinOf(c toolgate.Call) (toolgate.Pin, bool) {
	p, ok := f.pins[c.Name]
	return p, ok
}

// TestPinFromCatalog: the catalog's current pin state wins over the one
// the call was built with (the agent-facing list lags the catalog).
func TestPinFromCatalog(t *testing.T) {
	for _, tc := range []struct {
		name        string
		call, now   toolgate.PinState
		wantRefusal bool
	}{
		{"changed since the list was built", toolgate.PinPinned, toolgate.PinChanged, true},
		{"approved since the list was built", toolgate.PinChanged, toolgate.PinPinned, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			cat := pinForwarder{
				forwarder: &forwarder{j: j, res: toolgatetest.TextResult("done", false)},
				pins:      map[string]toolgate.Pin{"up__echo": {State: tc.now}},
			}
			g, err := New(Options{Decider: fixed{Action: toolgate.Allow}, Recorder: &recorder{j: j}, Forwarder: cat})
			if err != nil {
				t.Fatal(err)
			}
			res := g.Handle(context.Background(), toolgate.Call{Server: "up", Tool: "echo", Name: "up__echo", Pin: toolgate.Pin{State: tc.call}})
			if res.IsError != tc.wantRefusal {
				t.Fatalf("isError %v, want %v: %s (journal %s)", res.IsError, tc.wantRefusal, toolgatetest.Text(res), j)
			}
		})
	}
}

// TestCaseAmbiguityRefused: a call whose arguments or _meta hold two keys
// that differ only in letter case, or a key with a rune that folds to an
// ASCII letter, is refused and recorded as denied before any rule runs,
// even when the rules allow everything; other keys are decided by the
// rules.
func TestCaseAmbiguityRefused(t *testing.T) {
	for _, tc := range []struct {
		args, meta map[string]any
		refused    bool
	}{
		{map[string]any{"script": "ls", "ſcript": "id > /tmp/x"}, nil, true},
		{map[string]any{"opts": map[string]any{"cwd": "/ws", "CWD": "/etc"}}, nil, true},
		{map[string]any{"text": "hi"}, map[string]any{"dry_run": true, "DRY_RUN": false}, true},
		{map[string]any{"cmd": "ls", "wor\u212adir": "/etc"}, nil, true},
		{map[string]any{"script": "ls", "scripts": "id"}, map[string]any{"dry_run": true}, false},
	} {
		j := &journal{}
		var decided toolgate.Decision
		g, err := New(Options{
			Decider: decider(func(toolgate.Call) toolgate.Decision {
				j.add("decide")
				return toolgate.Decision{Action: toolgate.Allow}
			}),
			Recorder:  &capture{recorder: &recorder{j: j}, d: &decided},
			Forwarder: &forwarder{j: j, res: toolgatetest.TextResult("done", false)},
		})
		if err != nil {
			t.Fatal(err)
		}
		res := g.Handle(context.Background(), toolgate.Call{Server: "up", Tool: "run", Name: "up__run", Args: tc.args, Meta: tc.meta})
		if !tc.refused {
			if res.IsError || j.String() != "decide begin:allow forward finish:ok" {
				t.Errorf("%v: isError %v, journal %q", tc.args, res.IsError, j)
			}
			continue
		}
		if !res.IsError || j.String() != "begin:deny" || decided.Rule != RuleArgs || !strings.Contains(toolgatetest.Text(res), "ignoring case") {
			t.Errorf("%v %v: isError %v, journal %q, recorded %+v, result %q", tc.args, tc.meta, res.IsError, j, decided, toolgatetest.Text(res))
		}
	}
}
