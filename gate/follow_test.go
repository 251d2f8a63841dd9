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

// granter is a Granter and PendingFinder: grants hands out its verdicts one
// use each; pending is the review PendingFor finds.
type granter struct {
	j          *journal
	grants     []toolgate.Verdict
	pending    string
	pendingErr error
}

func (g *granter) UseGrant(context.Context, toolgate.Call, toolgate.Decision) (toolgate.Verdict, bool, error) {
	g.j.add("grant?")
	if len(g.grants) == 0 {
		return toolgate.Verdict{}, false, nil
	}
	v := g.grants[0]
	g.grants = g.grants[1:]
	return v, true, nil
}

func (g *granter) PendingFor(context.Context, toolgate.Call, toolgate.Decision) (string, bool, error) {
	g.j.add("pending?")
	return g.pending, g.pending != "", g.pendingErr
}

// waiter is a reviewer that is also a Waiter: Await returns v, decided and
// err, after issuing a grant when it approves (as the held review's waiter
// does).
type waiter struct {
	reviewer
	g       *granter
	decided bool
	awaited string
	maxWait time.Duration
}

func (w *waiter) Await(_ context.Context, id string, maxWait time.Duration) (toolgate.Verdict, bool, error) {
	w.j.add("await")
	w.awaited, w.maxWait = id, maxWait
	if w.decided && w.v.Approved {
		w.g.grants = append(w.g.grants, toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: toolgate.ChannelGrant,
			Reason: "approved by U1 via grant G1 of review " + id, DecidedAt: time.Now()})
	}
	return w.v, w.decided, w.err
}

func (w *waiter) Hold() time.Duration { return 45 * time.Second }

// TestRetryWaitsOnPendingReview: a call whose review is still pending from
// an earlier call (a retry of a held call) waits on that review instead of
// asking a human again, and its own row says which review it followed.
func TestRetryWaitsOnPendingReview(t *testing.T) {
	const rid = "01HELDREVIEW0000000000000A"
	ok := toolgatetest.TextResult("done", false)
	cases := []struct {
		name       string
		pending    string
		pendingErr error
		v          toolgate.Verdict
		decided    bool
		err        error
		grantTaken bool // another call used the approval's grant first
		wantEvents string
		wantError  bool
		wantText   []string
		wantRow    func(toolgate.Verdict) bool
	}{
		{name: "still pending: the same pending answer, naming the review",
			pending: rid, v: toolgate.Verdict{Channel: toolgate.ChannelPending, Reason: "review " + rid + " is waiting for a human via Slack"},
			wantEvents: "begin:review grant? pending? await resolve", wantError: true,
			wantText: []string{"nobody has answered yet", "review " + rid + " is waiting"},
			wantRow: func(v toolgate.Verdict) bool {
				return !v.Approved && v.Channel == toolgate.ChannelPending && strings.Contains(v.Reason, rid)
			}},
		{name: "approved meanwhile: runs on the grant",
			pending: rid, v: toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "slack"}, decided: true,
			wantEvents: "begin:review grant? pending? await grant? resolve forward finish:ok", wantText: []string{"done"},
			wantRow: func(v toolgate.Verdict) bool {
				return v.Approved && v.Channel == toolgate.ChannelGrant && strings.Contains(v.Reason, "of review "+rid)
			}},
		{name: "approved, but its grant went to another call",
			pending: rid, v: toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "slack"}, decided: true, grantTaken: true,
			wantEvents: "begin:review grant? pending? await grant? resolve", wantError: true,
			wantText: []string{"approved for one run", "review of its own"},
			wantRow:  func(v toolgate.Verdict) bool { return !v.Approved && strings.Contains(v.Reason, rid) }},
		{name: "denied meanwhile: refused with that verdict",
			pending: rid, v: toolgate.Verdict{Reviewer: "U1", Channel: "slack", Reason: "not on main"}, decided: true,
			wantEvents: "begin:review grant? pending? await resolve", wantError: true,
			wantText: []string{"U1 denied it via slack", "not on main", "review " + rid},
			wantRow: func(v toolgate.Verdict) bool {
				return !v.Approved && v.Reviewer == "U1" && v.Channel == "slack" && strings.Contains(v.Reason, rid)
			}},
		{name: "expired meanwhile: refused, nobody answered",
			pending: rid, v: toolgate.Verdict{Channel: toolgate.ChannelTimeout, Reason: "no reviewer answered within 5m0s"}, decided: true,
			wantEvents: "begin:review grant? pending? await resolve", wantError: true,
			wantText: []string{"no reviewer answered in time", rid}},
		{name: "waiting fails: denied",
			pending: rid, err: errors.New("disk gone"),
			wantEvents: "begin:review grant? pending? await resolve", wantError: true, wantText: []string{"disk gone", rid}},
		{name: "no pending review: a review of its own",
			v:          toolgate.Verdict{Approved: true, Reviewer: "U2", Channel: "cli"},
			wantEvents: "begin:review grant? pending? review resolve forward finish:ok", wantText: []string{"done"}},
		{name: "looking fails: refused, since a review of its own might be an unlisted retry's",
			pending: rid, pendingErr: errors.New("db busy"), v: toolgate.Verdict{Approved: true, Reviewer: "U2", Channel: "cli"},
			wantEvents: "begin:review grant? pending? resolve", wantError: true, wantText: []string{"db busy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			rec := &recorder{j: j}
			gr := &granter{j: j, pending: tc.pending, pendingErr: tc.pendingErr}
			w := &waiter{reviewer: reviewer{j: j, v: tc.v, err: tc.err}, g: gr, decided: tc.decided}
			if tc.pending == "" || tc.pendingErr != nil {
				w.err = nil // it reviews on its own
			}
			g, err := New(Options{Decider: fixed{Action: toolgate.Review, Rule: "writes", Reason: "writes need a human"},
				Recorder: rec, Forwarder: &forwarder{j: j, res: ok}, Reviewer: w, Granter: gr})
			if err != nil {
				t.Fatal(err)
			}
			if tc.grantTaken {
				w.g = &granter{j: &journal{}} // the grant lands elsewhere
			}
			res := g.Handle(t.Context(), toolgate.Call{Server: "ws", Tool: "write_file", Name: "ws__write_file"})
			if got := j.String(); got != tc.wantEvents {
				t.Errorf("events = %q, want %q", got, tc.wantEvents)
			}
			if res.IsError != tc.wantError {
				t.Errorf("isError = %v, want %v (%q)", res.IsError, tc.wantError, toolgatetest.Text(res))
			}
			for _, s := range tc.wantText {
				if !strings.Contains(toolgatetest.Text(res), s) {
					t.Errorf("result %q lacks %q", toolgatetest.Text(res), s)
				}
			}
			if strings.Contains(tc.wantEvents, "await") && (w.awaited != rid || w.maxWait != 45*time.Second) {
				t.Errorf("awaited %q for %v, want %s for the hold", w.awaited, w.maxWait, rid)
			}
			if tc.wantRow != nil && !tc.wantRow(rec.resolved) {
				t.Errorf("the call's own row was resolved with %+v", rec.resolved)
			}
			if rec.resolved.DecidedAt.IsZero() {
				t.Errorf("verdict recorded without a decision time: %+v", rec.resolved)
			}
		})
	}
}

// TestNoWaitWithoutWaiter: a Reviewer that cannot wait on another review
// reviews every call itself, as before.
func TestNoWaitWithoutWaiter(t *testing.T) {
	j := &journal{}
	g, err := New(Options{Decider: fixed{Action: toolgate.Review}, Recorder: &recorder{j: j},
		Forwarder: &forwarder{j: j, res: toolgatetest.TextResult("done", false)},
		Reviewer:  &reviewer{j: j, v: toolgate.Verdict{Approved: true, Reviewer: "U1", Channel: "cli"}},
		Granter:   &granter{j: j, pending: "01SOMEREVIEW"}})
	if err != nil {
		t.Fatal(err)
	}
	g.Handle(t.Context(), toolgate.Call{Server: "ws", Tool: "write_file"})
	if got := j.String(); got != "begin:review grant? review resolve forward finish:ok" {
		t.Errorf("events = %q", got)
	}
}
