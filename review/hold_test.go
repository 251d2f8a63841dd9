package review

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// TestHeldReview: past Hold the call stops waiting (ErrHeld, with where the
// review waits and that the same call runs once approved); the review goes
// on, and a later approval becomes a grant while a later denial refuses the
// call for good.
func TestHeldReview(t *testing.T) {
	ended := make(chan toolgate.Verdict, 2)
	h := newHarness(t, false, func(o *Options) {
		o.Channels = []string{toolgate.ChannelCLI}
		o.Hold = 50 * time.Millisecond
		o.OnHeldEnd = func(_ string, v toolgate.Verdict) { ended <- v }
	})
	for _, tc := range []struct {
		id      string
		approve bool
	}{{"01HOLDAPPROVE", true}, {"01HOLDDENY", false}} {
		t.Run(tc.id, func(t *testing.T) {
			c, res := h.review(context.Background(), tc.id)
			r := await(t, res)
			if !errors.Is(r.err, toolgate.ErrHeld) || r.v.Channel != toolgate.ChannelPending || !strings.Contains(r.v.Reason, c.ID) ||
				!strings.Contains(r.v.Reason, "same arguments runs once") || strings.Contains(r.v.Reason, "review approve") {
				t.Fatalf("Review = %+v, %v", r.v, r.err)
			}
			if ok, err := h.svc.submit(context.Background(), c.ID, toolgate.Verdict{Approved: tc.approve, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
				t.Fatal(ok, err)
			}
			select {
			case v := <-ended:
				if v.Approved != tc.approve {
					t.Errorf("OnHeldEnd told %+v", v)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("OnHeldEnd was not told the end of the held review")
			}
			if tc.approve {
				toolgatetest.Eventually(t, "the grant", func() bool {
					h.store.mu.Lock()
					defer h.store.mu.Unlock()
					return h.store.grants[c.ID] == "once"
				})
				return
			}
			toolgatetest.Eventually(t, "the refusal", func() bool {
				h.store.mu.Lock()
				defer h.store.mu.Unlock()
				v, ok := h.store.resolved[c.ID]
				return ok && !v.Approved
			})
		})
	}
}

// TestSlackApproveForSession: a rule with session_grant offers "approve for
// this session"; that click runs the call and issues a session grant for the
// rule's length; without session_grant there is no such button.
func TestSlackApproveForSession(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, res := h.reviewFor(t.Context(), "01SESSION", 30*time.Minute)
	post := h.waitPosted(1)
	if !slackfake.ContainsText(post, `"action_id":"approve_session"`) || !slackfake.ContainsText(post, `"value":"01SESSION|1800"`) {
		t.Fatalf("no session button: %s", post.Get("blocks"))
	}
	h.slack.Click(click(approver, ActionApproveSession, c.ID+"|1800", ""))
	if r := await(t, res); r.err != nil || !r.v.Approved || !strings.Contains(r.v.Reason, "30m0s") {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	toolgatetest.Eventually(t, "the session grant", func() bool {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.grants[c.ID+"/session"] == "30m0s"
	})

	c2, res2 := h.review(t.Context(), "01ONCEONLY")
	if post := h.waitPosted(2); slackfake.ContainsText(post, "approve_session") {
		t.Errorf("a rule without session_grant offers the session button: %s", post.Get("blocks"))
	}
	h.slack.Click(click(approver, ActionDeny, c2.ID, ""))
	if r := await(t, res2); r.v.Approved {
		t.Fatalf("denied review: %+v", r.v)
	}
}

// TestSlackSessionGrantFromRule: what an "Approve for this session" click
// grants comes from the review's rule, not from the button's value, which
// the client sends back and can forge: a longer length is cut to the
// rule's session_grant; a rule without one refuses the click (and a plain
// Approve carrying a length grants no session); a review another process
// posted is granted what its rule, decided again, allows; and one posted
// here under a rule whose session_grant the rules in force no longer have
// (a reload) grants none.
func TestSlackSessionGrantFromRule(t *testing.T) {
	const other, withdrawn = "01OTHERPROCESS", "01WITHDRAWN"
	// The rules in force: what Decide says now.
	inForce := map[string]time.Duration{"01CAPPED": 30 * time.Minute, other: 20 * time.Minute}
	h := newHarness(t, true, func(o *Options) {
		o.Decide = func(_ context.Context, c toolgate.Call) toolgate.Decision {
			_, d := testCall(c.ID)
			d.SessionGrant = inForce[c.ID]
			return d
		}
	})
	h.run()
	grant := func(id string) string {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.grants[id+"/session"]
	}

	c, res := h.reviewFor(t.Context(), "01CAPPED", 30*time.Minute)
	h.waitPosted(1)
	h.slack.Click(click(approver, ActionApproveSession, c.ID+"|43200", ""))
	if r := await(t, res); r.err != nil || !r.v.Approved {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	toolgatetest.Eventually(t, "the session grant", func() bool { return grant(c.ID) != "" })
	if g := grant(c.ID); g != "30m0s" {
		t.Errorf("a button asking 12h on a 30m rule granted %s", g)
	}

	c2, res2 := h.review(t.Context(), "01NOSESSION")
	h.waitPosted(2)
	h.slack.Click(click(approver, ActionApproveSession, c2.ID+"|315360000", ""))
	if eph := h.slack.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "does not allow an approval for the session") {
		t.Errorf("forged session click told: %v", eph)
	}
	if _, decided, _ := h.store.ReviewVerdict(t.Context(), c2.ID); decided {
		t.Fatal("a forged session click on a rule without session_grant answered the review")
	}
	h.slack.Click(click(approver, ActionApprove, c2.ID+"|315360000", ""))
	if r := await(t, res2); r.err != nil || !r.v.Approved {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	if g := grant(c2.ID); g != "" {
		t.Errorf("a plain Approve carrying a length granted the session for %s", g)
	}

	oc, od := testCall(other)
	h.store.add(oc, od) // pending in the store, posted by no process here
	h.slack.Click(click(approver, ActionApproveSession, other+"|315360000", ""))
	toolgatetest.Eventually(t, "the other process's review's session grant", func() bool { return grant(other) != "" })
	if g := grant(other); g != "20m0s" {
		t.Errorf("another process's review granted %s, want its rule's 20m", g)
	}

	c3, res3 := h.reviewFor(t.Context(), withdrawn, 30*time.Minute)
	h.waitPosted(3)
	h.slack.Click(click(approver, ActionApproveSession, c3.ID+"|1800", ""))
	if eph := h.slack.WaitEphemerals(2); !strings.Contains(eph.Get("text"), "does not allow an approval for the session") {
		t.Errorf("a session click after the rule's session_grant was withdrawn told: %v", eph)
	}
	h.slack.Click(click(approver, ActionDeny, c3.ID, ""))
	if r := await(t, res3); r.err != nil || r.v.Approved {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	if g := grant(c3.ID); g != "" {
		t.Errorf("a session click under a withdrawn session_grant granted %s", g)
	}
}

// TestHeldReviewEscalates: a review held before its escalate_after is still
// escalated in its Slack thread when the time comes.
func TestHeldReviewEscalates(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Hold = 50 * time.Millisecond })
	h.run()
	c, d := testCall("01HELDESC")
	d.Review = toolgate.ReviewPolicy{EscalateAfter: 300 * time.Millisecond, EscalateTo: []string{"S0SRE"}}
	h.store.add(c, d)
	if _, err := h.svc.Review(t.Context(), c, d); !errors.Is(err, toolgate.ErrHeld) {
		t.Fatalf("Review: %v, want ErrHeld", err)
	}
	h.waitPosted(1)
	toolgatetest.Eventually(t, "the escalation in the thread", func() bool {
		for _, p := range h.slack.Posts() {
			if p.Get("thread_ts") != "" && strings.Contains(p.Get("text"), "<!subteam^S0SRE>") {
				return true
			}
		}
		return false
	})
	h.slack.Click(click(approver, ActionApprove, c.ID, ""))
	toolgatetest.Eventually(t, "the grant", func() bool {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.grants[c.ID] == "once"
	})
}
