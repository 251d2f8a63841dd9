package gate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

type linker map[string]string

func (l linker) Links(context.Context, toolgate.Call) (map[string]string, func(), bool, error) {
	return l, func() {}, false, nil
}

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

// fenced is a Linker whose links a test changes, and which journals when
// the fence is held and let go.
type fenced struct {
	j       *journal
	links   map[string]string
	holdErr error
}

func (f *fenced) Links(context.Context, toolgate.Call) (map[string]string, func(), bool, error) {
	if f.holdErr != nil {
		f.j.add("hold-failed")
		return nil, nil, false, f.holdErr
	}
	f.j.add("hold")
	return f.links, func() { f.j.add("release") }, true, nil
}

// relinker is a reviewer that approves after the workspace's links
// changed to links, as a command run during the review can change them.
type relinker struct {
	reviewer
	f     *fenced
	links map[string]string
}

func (r *relinker) Review(ctx context.Context, c toolgate.Call, d toolgate.Decision) (toolgate.Verdict, error) {
	r.f.links = r.links
	return r.reviewer.Review(ctx, c, d)
}

// TestFenceHeldToTheAnswer: the fence is held from the links check to the
// call's answer, let go while a person reviews, and taken again after; an
// approved call whose links changed during its review is not run, and its
// outcome says so. A call the rules deny takes no fence, and a call that
// ends while it waits for the fence is refused and recorded.
func TestFenceHeldToTheAnswer(t *testing.T) {
	hooks := map[string]string{"/ws/hk": "/ws/.git/hooks"}
	for _, tc := range []struct {
		name             string
		action           toolgate.Action
		before, after    map[string]string
		holdErr          error
		want, wantResult string
	}{
		{"allowed", toolgate.Allow, nil, nil, nil, "hold begin:allow forward finish:ok release", "done"},
		{"reviewed, unchanged", toolgate.Review, hooks, hooks, nil,
			"hold begin:review release review resolve hold forward finish:ok release", "done"},
		{"reviewed, a link made meanwhile", toolgate.Review, nil, hooks, nil,
			"hold begin:review release review resolve hold release finish:refused", `"/ws/hk" is now a link to "/ws/.git/hooks"`},
		{"reviewed, a link gone meanwhile", toolgate.Review, hooks, nil, nil,
			"hold begin:review release review resolve hold release finish:refused", `"/ws/hk" is no longer a link`},
		{"denied", toolgate.Deny, nil, nil, nil, "begin:deny", "denied by policy"},
		{"ended waiting", toolgate.Allow, nil, nil, context.Canceled, "hold-failed begin:deny", "this call ended first"},
		{"too many paths", toolgate.Allow, nil, nil, errors.New("too many strings"), "hold-failed begin:deny", "could not look at every path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			f := &fenced{j: j, links: tc.before, holdErr: tc.holdErr}
			rec := &recorder{j: j}
			g, err := New(Options{
				Decider: fixed{Action: tc.action, Rule: "r"}, Linker: f, Recorder: rec,
				Reviewer:  &relinker{reviewer: reviewer{j: j, v: toolgate.Verdict{Approved: true, Reviewer: "alice"}}, f: f, links: tc.after},
				Forwarder: &forwarder{j: j, res: toolgatetest.TextResult("done", false)},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if errors.Is(tc.holdErr, context.Canceled) {
				cancel() // the agent cancelled the call while it waited
			}
			defer cancel()
			res := g.Handle(ctx, toolgate.Call{Server: "fs", Tool: "write_file", Name: "fs__write_file",
				Args: map[string]any{"path": "/ws/hk/x"}})
			if got := j.String(); got != tc.want {
				t.Errorf("journal %q, want %q", got, tc.want)
			}
			if text := toolgatetest.Text(res); !strings.Contains(text, tc.wantResult) {
				t.Errorf("result %q, want %q in it", text, tc.wantResult)
			}
			if rec.finished.Status == toolgate.StatusRefused && !strings.Contains(rec.finished.Error, "changed while it waited for review") {
				t.Errorf("recorded outcome %+v, want why it was not run", rec.finished)
			}
		})
	}
}

// TestFenceHeldAfterCancel: when the agent cancels a forwarded call, the
// links stay held for cancelGrace more, as its server may still be at
// work on it; then they are let go.
func TestFenceHeldAfterCancel(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := New(Options{
		Decider: fixed{Action: toolgate.Allow, Rule: "r"}, Linker: &fenced{j: j}, Recorder: &recorder{j: j},
		Forwarder: &forwarder{j: j, err: context.Canceled, cancel: cancel},
	})
	if err != nil {
		t.Fatal(err)
	}
	var later func()
	var waited time.Duration
	g.after = func(d time.Duration, f func()) { waited, later = d, f }
	g.Handle(ctx, toolgate.Call{Server: "fs", Tool: "write_file", Args: map[string]any{"path": "/ws/x"}})
	if got, want := j.String(), "hold begin:allow forward finish:cancelled"; got != want || later == nil || waited != cancelGrace {
		t.Fatalf("journal %q, let go after %v; want %q, the links let go after %v", got, waited, want, cancelGrace)
	}
	later()
	if got := j.String(); !strings.HasSuffix(got, "finish:cancelled release") {
		t.Errorf("journal %q after the grace, want the links let go", got)
	}
}
