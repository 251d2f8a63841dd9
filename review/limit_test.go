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

// reviewIn starts the review of call id in session.
func (h *harness) reviewIn(id, session string) (toolgate.Call, <-chan result) {
	c, d := testCall(id)
	c.SessionID = session
	h.store.add(c, d)
	out := make(chan result, 1)
	go func() {
		v, err := h.svc.Review(context.Background(), c, d)
		out <- result{v, err}
	}()
	return c, out
}

// openFor is how many reviews of session the service counts as waiting.
func (h *harness) openFor(session string) int {
	h.svc.mu.Lock()
	defer h.svc.mu.Unlock()
	return h.svc.open[session]
}

func isLimited(r result) bool {
	return r.err == nil && !r.v.Approved && r.v.Channel == toolgate.ChannelLimit &&
		strings.Contains(r.v.Reason, "2 reviews of this session are already waiting") && strings.Contains(r.v.Reason, "review.max_pending")
}

// TestMaxPendingHeld: reviews held past Hold still count against their
// session; the one past MaxPending is refused without a reviewer being
// asked, another session is not affected, and a held review's end frees
// its place.
func TestMaxPendingHeld(t *testing.T) {
	h := newHarness(t, false, func(o *Options) {
		o.Channels = []string{toolgate.ChannelCLI}
		o.Hold = 20 * time.Millisecond
		o.MaxPending = 2
	})
	a, resA := h.reviewIn("01LIMITA", "s1")
	_, resB := h.reviewIn("01LIMITB", "s1")
	for _, res := range []<-chan result{resA, resB} {
		if r := await(t, res); !errors.Is(r.err, toolgate.ErrHeld) {
			t.Fatalf("Review = %+v, %v; want held", r.v, r.err)
		}
	}
	if _, res := h.reviewIn("01LIMITC", "s1"); !isLimited(await(t, res)) {
		t.Fatal("a third review of the session was asked")
	}
	if strings.Contains(h.logs.String(), "01LIMITC") && !strings.Contains(h.logs.String(), "too many reviews waiting") {
		t.Errorf("log: %s", h.logs)
	}
	if _, res := h.reviewIn("01LIMITD", "s2"); !errors.Is(await(t, res).err, toolgate.ErrHeld) {
		t.Fatal("another session's review was refused")
	}
	if ok, err := h.svc.submit(context.Background(), a.ID, toolgate.Verdict{Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	toolgatetest.Eventually(t, "the held review's place freed", func() bool { return h.openFor("s1") == 1 })
	if _, res := h.reviewIn("01LIMITE", "s1"); !errors.Is(await(t, res).err, toolgate.ErrHeld) {
		t.Fatal("a review after one ended was refused")
	}
	for _, id := range []string{"01LIMITB", "01LIMITD", "01LIMITE"} {
		if ok, err := h.svc.submit(context.Background(), id, toolgate.Verdict{Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	toolgatetest.Eventually(t, "every held review ended", func() bool { return h.openFor("s1")+h.openFor("s2") == 0 })
}

// TestMaxPendingWaiting: a review the call waits for counts until its
// verdict, and its place is free once Review returns.
func TestMaxPendingWaiting(t *testing.T) {
	h := newHarness(t, false, func(o *Options) {
		o.Channels = []string{toolgate.ChannelCLI}
		o.MaxPending = 2
	})
	a, resA := h.reviewIn("01WAITA", "s1")
	_, resB := h.reviewIn("01WAITB", "s1")
	toolgatetest.Eventually(t, "two reviews waiting", func() bool { return h.openFor("s1") == 2 })
	if _, res := h.reviewIn("01WAITC", "s1"); !isLimited(await(t, res)) {
		t.Fatal("a third review of the session was asked")
	}
	if ok, err := h.svc.submit(context.Background(), a.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if r := await(t, resA); !r.v.Approved {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	if h.openFor("s1") != 1 {
		t.Fatalf("open = %d after one review ended, want 1", h.openFor("s1"))
	}
	c, resD := h.reviewIn("01WAITD", "s1")
	toolgatetest.Eventually(t, "the next review waiting", func() bool { return h.openFor("s1") == 2 })
	for _, id := range []string{"01WAITB", c.ID} {
		if ok, err := h.svc.submit(context.Background(), id, toolgate.Verdict{Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	await(t, resB)
	await(t, resD)
	if n := h.openFor("s1"); n != 0 {
		t.Errorf("open = %d after every review ended", n)
	}
}
