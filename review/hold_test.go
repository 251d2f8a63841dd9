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
	c, d := testCall("01SESSION")
	d.SessionGrant = 30 * time.Minute
	h.store.add(c, d)
	res := make(chan result, 1)
	go func() {
		v, err := h.svc.Review(t.Context(), c, d)
		res <- result{v, err}
	}()
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
