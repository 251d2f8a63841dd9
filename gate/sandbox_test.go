package gate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// confiningForwarder is a forwarder whose upstream runs in profile.
type confiningForwarder struct {
	forwarder
	profile string
}

func (f *confiningForwarder) Confine(c toolgate.Call) (string, error) {
	if c.Sandbox == "" || c.Sandbox == f.profile {
		return f.profile, nil
	}
	return "", errors.New("upstream runs in profile " + f.profile + ", not " + c.Sandbox)
}

// decisionRecorder keeps the decision it was asked to record.
type decisionRecorder struct {
	*recorder
	d toolgate.Decision
}

func (r *decisionRecorder) Begin(ctx context.Context, c toolgate.Call, d toolgate.Decision) error {
	r.d = d
	return r.recorder.Begin(ctx, c, d)
}

// TestConfine: every kind of call runs in the profile its decision names
// or not at all. A call whose upstream cannot run it there is recorded
// denied by toolgate:sandbox before any review (an auto-approval
// included), and its run is never called; a decision naming none runs
// in the upstream's own profile, which the record then names.
func TestConfine(t *testing.T) {
	review := toolgate.Decision{Action: toolgate.Review, Rule: "auto", Sandbox: "read-only"}
	auto := toolgate.Decision{Action: toolgate.Allow, Rule: "auto", Sandbox: "read-only", AutoApproved: true, ConfidenceEffect: toolgate.ConfidenceAutoApproved}
	cases := []struct {
		name     string
		kind     string
		upstream *string // the Confiner's profile; nil: the forwarder is no Confiner
		decision toolgate.Decision
		journal  string
		sandbox  string // the recorded profile, when it ran
	}{
		{name: "auto-approved resource, unconfined upstream", kind: toolgate.KindResource, upstream: ptr(""), decision: auto, journal: "begin:deny"},
		{name: "reviewed prompt, unconfined upstream", kind: toolgate.KindPrompt, upstream: ptr(""), decision: review, journal: "begin:deny"},
		{name: "completion, other profile", kind: toolgate.KindCompletion, upstream: ptr("docs"), decision: auto, journal: "begin:deny"},
		{name: "tool, unconfined upstream", kind: toolgate.KindTool, upstream: ptr(""), decision: auto, journal: "begin:deny"},
		{name: "resource, same profile", kind: toolgate.KindResource, upstream: ptr("read-only"), decision: auto, journal: "begin:allow run finish:ok", sandbox: "read-only"},
		{name: "resource, no profile named", kind: toolgate.KindResource, upstream: ptr("docs"), decision: toolgate.Decision{Action: toolgate.Allow}, journal: "begin:allow run finish:ok", sandbox: "docs"},
		{name: "resource, no Confiner", kind: toolgate.KindResource, decision: auto, journal: "begin:deny"},
		{name: "resource, no Confiner, no profile", kind: toolgate.KindResource, decision: toolgate.Decision{Action: toolgate.Allow}, journal: "begin:allow run finish:ok"},
		{name: "tool, no Confiner", kind: toolgate.KindTool, decision: auto, journal: "begin:allow run finish:ok", sandbox: "read-only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			rec := &decisionRecorder{recorder: &recorder{j: j}}
			var fw Forwarder = &forwarder{j: j}
			if tc.upstream != nil {
				fw = &confiningForwarder{forwarder: forwarder{j: j}, profile: *tc.upstream}
			}
			g, err := New(Options{Decider: fixed(tc.decision), Recorder: rec, Forwarder: fw, Reviewer: &reviewer{j: j, v: toolgate.Verdict{Approved: true}}})
			if err != nil {
				t.Fatal(err)
			}
			c := toolgate.Call{Kind: tc.kind, Server: "docs", Tool: "readme", Name: "docs__readme"}
			_, err = g.Run(context.Background(), c, func(context.Context) (any, error) {
				j.add("run")
				return "ok", nil
			})
			if got := j.String(); got != tc.journal {
				t.Errorf("journal %q, want %q", got, tc.journal)
			}
			if tc.journal != "begin:deny" {
				if err != nil || rec.d.Sandbox != tc.sandbox {
					t.Errorf("Run: %v, recorded profile %q; want it run in %q", err, rec.d.Sandbox, tc.sandbox)
				}
				return
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(refused.Text, RuleSandbox) || !strings.Contains(refused.Text, "read-only") ||
				!strings.Contains(refused.Text, `rule "auto" names`) {
				t.Errorf("Run = %v; want a refusal by %s naming the profile", err, RuleSandbox)
			}
			if rec.d.Rule != RuleSandbox || rec.d.Sandbox != "" || rec.d.AutoApproved || rec.d.ConfidenceEffect != "" {
				t.Errorf("recorded %+v; want a denial by %s that claims no profile and no auto-approval", rec.d, RuleSandbox)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
