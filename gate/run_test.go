package gate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestRun: a resource read, prompt or completion passes the same pipeline
// as a tool call, in the same order; it runs only when allowed or
// approved, and its refusal is a *RefusedError naming the decision.
func TestRun(t *testing.T) {
	boom := errors.New("upstream said no")
	cases := []struct {
		name     string
		decision toolgate.Decision
		verdict  toolgate.Verdict
		runErr   error
		journal  string
		refused  string // substring of the RefusedError; "" when it ran
		status   string // the recorded outcome, when it ran
	}{
		{name: "allow", decision: toolgate.Decision{Action: toolgate.Allow}, journal: "begin:allow run finish:ok", status: toolgate.StatusOK},
		{name: "deny", decision: toolgate.Decision{Action: toolgate.Deny, Rule: "no-secrets", Reason: "secret file"}, journal: "begin:deny",
			refused: `denied by policy (rule "no-secrets"): secret file`},
		{name: "review approved", decision: toolgate.Decision{Action: toolgate.Review, Rule: "ask"}, verdict: toolgate.Verdict{Approved: true, Reviewer: "ann", Channel: "cli"},
			journal: "begin:review review resolve run finish:ok", status: toolgate.StatusOK},
		{name: "review denied", decision: toolgate.Decision{Action: toolgate.Review, Rule: "ask"}, verdict: toolgate.Verdict{Reviewer: "ann", Channel: "cli"},
			journal: "begin:review review resolve", refused: "ann denied it via cli"},
		{name: "run fails", decision: toolgate.Decision{Action: toolgate.Allow}, runErr: boom, journal: "begin:allow run finish:failed", status: toolgate.StatusFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			rec := &recorder{j: j}
			g, err := New(Options{Decider: fixed(tc.decision), Recorder: rec, Forwarder: &forwarder{j: j}, Reviewer: &reviewer{j: j, v: tc.verdict}})
			if err != nil {
				t.Fatal(err)
			}
			c := toolgate.Call{Kind: toolgate.KindResource, Server: "docs", Tool: "readme", Name: "docs__readme", Args: map[string]any{"uri": "file:///r"}}
			out, err := g.Run(context.Background(), c, func(context.Context) (any, error) {
				j.add("run")
				return map[string]string{"text": "hello"}, tc.runErr
			})
			if got := j.String(); got != tc.journal {
				t.Errorf("journal %q, want %q", got, tc.journal)
			}
			var refused *RefusedError
			switch {
			case tc.refused != "":
				if !errors.As(err, &refused) || !strings.Contains(refused.Text, tc.refused) || refused.ID == "" || !strings.Contains(refused.Text, refused.ID) {
					t.Errorf("Run = %v, %v; want a refusal naming its decision and %q", out, err, tc.refused)
				}
			case tc.runErr != nil:
				if !errors.Is(err, tc.runErr) || errors.As(err, &refused) {
					t.Errorf("Run = %v; want the run's own error", err)
				}
			default:
				if err != nil || out.(map[string]string)["text"] != "hello" {
					t.Errorf("Run = %v, %v", out, err)
				}
			}
			if tc.status != "" && rec.finished.Status != tc.status {
				t.Errorf("outcome %+v, want status %s", rec.finished, tc.status)
			}
			if tc.status == toolgate.StatusOK && (rec.finished.ResultSize != len(`{"text":"hello"}`) || rec.finished.ResultHash == "") {
				t.Errorf("outcome %+v, want the size and hash of the result's JSON", rec.finished)
			}
		})
	}
}
