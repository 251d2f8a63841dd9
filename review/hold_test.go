package review

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHeldReview: past Hold the call stops waiting (ErrHeld, with where the
// review waits and that the same call runs once approved); the review goes
// on, and a later approval becomes a grant while a later denial refuses the
// call for good.
func TestHeldReview(t *testing.T) {
	h := newHarness(t, false, func(o *Options) {
		o.Channels = []string{ChannelCLI}
		o.Hold = 50 * time.Millisecond
	})
	for _, tc := range []struct {
		id      string
		approve bool
	}{{"01HOLDAPPROVE", true}, {"01HOLDDENY", false}} {
		t.Run(tc.id, func(t *testing.T) {
			c, res := h.review(context.Background(), tc.id)
			r := await(t, res)
			if !errors.Is(r.err, ErrHeld) || r.v.Channel != ChannelPending || !strings.Contains(r.v.Reason, c.ID) ||
				!strings.Contains(r.v.Reason, "same arguments runs once") || strings.Contains(r.v.Reason, "review approve") {
				t.Fatalf("Review = %+v, %v", r.v, r.err)
			}
			if ok, err := h.svc.submit(context.Background(), c.ID, Verdict{Approved: tc.approve, Reviewer: "cli:alice", Channel: ChannelCLI}); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if tc.approve {
				eventually(t, "the grant", func() bool {
					h.store.mu.Lock()
					defer h.store.mu.Unlock()
					return h.store.grants[c.ID] == "once"
				})
				return
			}
			eventually(t, "the refusal", func() bool {
				h.store.mu.Lock()
				defer h.store.mu.Unlock()
				v, ok := h.store.resolved[c.ID]
				return ok && !v.Approved
			})
		})
	}
}
