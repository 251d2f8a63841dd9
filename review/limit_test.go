package review

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// reviewBy starts the review of call id by user, each in a session of its
// own: the limit is the requester's, not the session's.
func (h *harness) reviewBy(id, user string) (toolgate.Call, <-chan result) {
	c, d := testCall(id)
	c.SessionID, c.Principal = "session-"+id, userPrincipal(user)
	h.store.add(c, d)
	out := make(chan result, 1)
	go func() {
		v, err := h.svc.Review(context.Background(), c, d)
		out <- result{v, err}
	}()
	return c, out
}

func userPrincipal(user string) toolgate.Principal {
	return toolgate.Principal{User: user, Auth: toolgate.AuthToken}
}

// openFor is how many reviews of user's calls the service counts as
// waiting.
func (h *harness) openFor(user string) int {
	h.svc.mu.Lock()
	defer h.svc.mu.Unlock()
	return h.svc.open[requester(toolgate.Call{Principal: userPrincipal(user)})]
}

func isLimited(r result) bool {
	return r.err == nil && !r.v.Approved && r.v.Channel == toolgate.ChannelLimit &&
		strings.Contains(r.v.Reason, "2 reviews of your calls are already waiting") && strings.Contains(r.v.Reason, "review.max_pending")
}

// TestMaxPendingHeld: reviews held past Hold still count against their
// requester, whatever session each came in; the one past MaxPending is
// refused without a reviewer being asked, another requester is not
// affected, and a held review's end frees its place.
func TestMaxPendingHeld(t *testing.T) {
	h := newHarness(t, false, func(o *Options) {
		o.Channels = []string{toolgate.ChannelCLI}
		o.Hold = 20 * time.Millisecond
		o.MaxPending = 2
	})
	a, resA := h.reviewBy("01LIMITA", "alice")
	_, resB := h.reviewBy("01LIMITB", "alice")
	for _, res := range []<-chan result{resA, resB} {
		if r := await(t, res); !errors.Is(r.err, toolgate.ErrHeld) {
			t.Fatalf("Review = %+v, %v; want held", r.v, r.err)
		}
	}
	if _, res := h.reviewBy("01LIMITC", "alice"); !isLimited(await(t, res)) {
		t.Fatal("a third review of the requester was asked")
	}
	if strings.Contains(h.logs.String(), "01LIMITC") && !strings.Contains(h.logs.String(), "too many reviews waiting") {
		t.Errorf("log: %s", h.logs)
	}
	if _, res := h.reviewBy("01LIMITD", "bob"); !errors.Is(await(t, res).err, toolgate.ErrHeld) {
		t.Fatal("another requester's review was refused")
	}
	if ok, err := h.svc.submit(context.Background(), a.ID, toolgate.Verdict{Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	toolgatetest.Eventually(t, "the held review's place freed", func() bool { return h.openFor("alice") == 1 })
	if _, res := h.reviewBy("01LIMITE", "alice"); !errors.Is(await(t, res).err, toolgate.ErrHeld) {
		t.Fatal("a review after one ended was refused")
	}
	for _, id := range []string{"01LIMITB", "01LIMITD", "01LIMITE"} {
		if ok, err := h.svc.submit(context.Background(), id, toolgate.Verdict{Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	toolgatetest.Eventually(t, "every held review ended", func() bool { return h.openFor("alice")+h.openFor("bob") == 0 })
}

// TestMaxPendingWaiting: a review the call waits for counts until its
// verdict, and its place is free once Review returns.
func TestMaxPendingWaiting(t *testing.T) {
	h := newHarness(t, false, func(o *Options) {
		o.Channels = []string{toolgate.ChannelCLI}
		o.MaxPending = 2
	})
	a, resA := h.reviewBy("01WAITA", "alice")
	_, resB := h.reviewBy("01WAITB", "alice")
	toolgatetest.Eventually(t, "two reviews waiting", func() bool { return h.openFor("alice") == 2 })
	if _, res := h.reviewBy("01WAITC", "alice"); !isLimited(await(t, res)) {
		t.Fatal("a third review of the requester was asked")
	}
	if ok, err := h.svc.submit(context.Background(), a.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if r := await(t, resA); !r.v.Approved {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	if h.openFor("alice") != 1 {
		t.Fatalf("open = %d after one review ended, want 1", h.openFor("alice"))
	}
	c, resD := h.reviewBy("01WAITD", "alice")
	toolgatetest.Eventually(t, "the next review waiting", func() bool { return h.openFor("alice") == 2 })
	for _, id := range []string{"01WAITB", c.ID} {
		if ok, err := h.svc.submit(context.Background(), id, toolgate.Verdict{Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	await(t, resB)
	await(t, resD)
	if n := h.openFor("alice"); n != 0 {
		t.Errorf("open = %d after every review ended", n)
	}
}
