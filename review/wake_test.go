package review_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/review"
)

// firstEnded is the audit store, telling once that Await has read the
// review's state (and found it pending).
type firstEnded struct {
	*audit.Store
	once  sync.Once
	ready chan struct{}
}

func (f *firstEnded) ReviewEnded(ctx context.Context, id string) (bool, error) {
	ended, err := f.Store.ReviewEnded(ctx, id)
	f.once.Do(func() { close(f.ready) })
	return ended, err
}

// TestWakeEndsAwait: a retry waiting on a review (Await) is woken by Wake,
// as the PostgreSQL store's Listen calls it when another replica records
// the verdict: with an hour between polls, only Wake can end the wait.
func TestWakeEndsAwait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st := &firstEnded{Store: openAudit(t, path), ready: make(chan struct{})}
	svc, err := review.New(review.Options{Store: st, Channels: []string{toolgate.ChannelCLI},
		Timeout: 10 * time.Minute, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, d := reviewCall("01WAKE")
	if err := st.Begin(t.Context(), c, d); err != nil {
		t.Fatal(err)
	}
	type result struct {
		v       toolgate.Verdict
		decided bool
		err     error
	}
	out := make(chan result, 1)
	go func() {
		v, decided, err := svc.Await(t.Context(), c.ID, 10*time.Minute)
		out <- result{v, decided, err}
	}()
	<-st.ready
	// Another process answers: its own handle on the log.
	other := openAudit(t, path)
	v := toolgate.Verdict{Approved: false, Reviewer: "bob", Channel: toolgate.ChannelCLI, Reason: "no"}
	if ok, err := other.SubmitVerdict(t.Context(), c.ID, v); err != nil || !ok {
		t.Fatalf("SubmitVerdict = %v, %v", ok, err)
	}
	if err := other.Resolve(t.Context(), c.ID, v); err != nil {
		t.Fatal(err)
	}
	svc.Wake(c.ID)
	select {
	case r := <-out:
		if r.err != nil || !r.decided || r.v.Approved || r.v.Reviewer != "bob" {
			t.Fatalf("Await = %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Await was not woken")
	}
}

var _ review.AdoptStore = (*audit.Store)(nil)
