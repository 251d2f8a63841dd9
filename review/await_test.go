package review_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/toolgatetest"
)

var (
	_ gate.Waiter        = (*review.Service)(nil)
	_ gate.PendingFinder = (*audit.Store)(nil)
	_ review.EndedStore  = (*audit.Store)(nil)
)

var heldID = regexp.MustCompile(`review ([0-9A-Z]+) is waiting`)

// TestRetryWaitsOnHeldReview, over a real audit DB through the gate: the
// retry of a held call waits on its review instead of starting another
// (answered pending, naming the same review, while nobody answers); an
// approval while it waits runs it on the grant, once; a denial while it
// waits refuses it with the reviewer's reason.
func TestRetryWaitsOnHeldReview(t *testing.T) {
	st := openAudit(t, filepath.Join(t.TempDir(), "audit.db"))
	// Long enough that an approval lands while a retry waits, even on a
	// loaded machine (the test waits it out only where it must).
	const hold = 2 * time.Second
	svc, err := review.New(review.Options{Store: st, Channels: []string{toolgate.ChannelCLI},
		Timeout: 10 * time.Second, Hold: hold, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Hold() != hold {
		t.Fatalf("Hold() = %v", svc.Hold())
	}
	fw := &countingForwarder{}
	g, err := gate.New(gate.Options{Decider: decideReview{}, Reviewer: svc, Recorder: st, Granter: st, Forwarder: fw})
	if err != nil {
		t.Fatal(err)
	}
	handle := func(id string) <-chan toolgate.Result {
		c, _ := reviewCall(id)
		out := make(chan toolgate.Result, 1)
		go func() { out <- g.Handle(t.Context(), c) }()
		return out
	}
	textOf := func(ch <-chan toolgate.Result) (string, bool) {
		t.Helper()
		select {
		case res := <-ch:
			return toolgatetest.Text(res), res.IsError
		case <-time.After(10 * time.Second):
			t.Fatal("the call did not return")
			return "", false
		}
	}
	// A retry's row is recorded before it waits on the review, and is not
	// listed for review.
	waitRecorded := func(id string) {
		t.Helper()
		toolgatetest.Eventually(t, "call "+id+" recorded", func() bool {
			_, err := st.Get(t.Context(), id)
			return err == nil
		})
		if got := toolgatetest.PendingIDs(t, st); len(got) != 1 {
			t.Fatalf("pending reviews %v while the retry %s waits, want only its review", got, id)
		}
	}

	text, isErr := textOf(handle("01AWAIT0"))
	m := heldID.FindStringSubmatch(text)
	if !isErr || m == nil || m[1] != "01AWAIT0" {
		t.Fatalf("the first call: %v %s", isErr, text)
	}
	start := time.Now()
	text, isErr = textOf(handle("01AWAIT1"))
	if m := heldID.FindStringSubmatch(text); !isErr || m == nil || m[1] != "01AWAIT0" || !strings.Contains(text, "(decision 01AWAIT1)") {
		t.Fatalf("the retry while nobody answered: %v %s", isErr, text)
	}
	if d := time.Since(start); d < hold {
		t.Errorf("the retry was answered pending after %v, before the hold", d)
	}
	if got := toolgatetest.PendingIDs(t, st); len(got) != 1 || got[0] != "01AWAIT0" {
		t.Fatalf("pending reviews after the retry: %v", got)
	}
	if r, _ := st.Get(t.Context(), "01AWAIT1"); r.Status != toolgate.StatusRefused || r.Review == nil ||
		r.Review.Channel != toolgate.ChannelPending || !strings.Contains(r.Review.Reason, "01AWAIT0") {
		t.Fatalf("the retry's row: %s %+v", r.Status, r.Review)
	}

	// Approved while the retry waits: it runs, on the grant.
	retry := handle("01AWAIT2")
	waitRecorded("01AWAIT2")
	if ok, err := st.SubmitVerdict(t.Context(), "01AWAIT0", toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if text, isErr := textOf(retry); isErr || text != "deleted" || fw.n.Load() != 1 {
		t.Fatalf("the retry after the approval: %v %s (forwarded %d)", isErr, text, fw.n.Load())
	}
	if r, _ := st.Get(t.Context(), "01AWAIT2"); r.Review == nil || r.Review.Channel != toolgate.ChannelGrant || !strings.Contains(r.Review.Reason, "of review 01AWAIT0") {
		t.Fatalf("the retry's row: %s %+v", r.Status, r.Review)
	}
	if r, _ := st.Get(t.Context(), "01AWAIT0"); r.Status != toolgate.StatusGranted {
		t.Fatalf("the held call is %s, want granted", r.Status)
	}

	// The grant ran once: the next call is reviewed anew, and a retry
	// waiting on that review is refused when it is denied.
	text, _ = textOf(handle("01AWAIT3"))
	if m := heldID.FindStringSubmatch(text); m == nil || m[1] != "01AWAIT3" {
		t.Fatalf("a call after the grant's one use: %s", text)
	}
	retry = handle("01AWAIT4")
	waitRecorded("01AWAIT4")
	if ok, err := st.SubmitVerdict(t.Context(), "01AWAIT3", toolgate.Verdict{Reviewer: "cli:bob", Channel: toolgate.ChannelCLI, Reason: "use the archive"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	text, isErr = textOf(retry)
	if !isErr || !strings.Contains(text, "cli:bob denied it via cli") || !strings.Contains(text, "use the archive") || !strings.Contains(text, "01AWAIT3") {
		t.Fatalf("the retry after the denial: %v %s", isErr, text)
	}
	if fw.n.Load() != 1 {
		t.Fatalf("forwarded %d times", fw.n.Load())
	}
	if rep, err := st.Verify(t.Context()); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// meetAtBegin records calls in st, each returning from Begin only once
// every call of the group has been recorded: the calls then look for a
// pending review of the same call with every row there.
type meetAtBegin struct {
	*audit.Store
	met *sync.WaitGroup
}

func (m meetAtBegin) Begin(ctx context.Context, c toolgate.Call, d toolgate.Decision) error {
	err := m.Store.Begin(ctx, c, d)
	m.met.Done()
	m.met.Wait()
	return err
}

// logSignal closes seen once a log line holding text is written.
type logSignal struct {
	text string
	once sync.Once
	seen chan struct{}
}

func (l *logSignal) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(l.text)) {
		l.once.Do(func() { close(l.seen) })
	}
	return len(p), nil
}

// TestTwinCallsDoNotWaitOnEachOther, over a real audit DB through the
// gate: two identical calls recorded at once, each seeing the other's
// pending row, do not each wait on the other's review (then nobody is
// asked and every answer is lost). The earlier asks the reviewers and is
// the one review listed; the later waits on it and takes no answer of its
// own. Approving the listed review runs the earlier call, once; the later
// is told the approval ran another call, and no approval is recorded on
// it.
func TestTwinCallsDoNotWaitOnEachOther(t *testing.T) {
	st := openAudit(t, filepath.Join(t.TempDir(), "audit.db"))
	svc, err := review.New(review.Options{Store: st, Channels: []string{toolgate.ChannelWeb},
		Timeout: 20 * time.Second, Hold: 10 * time.Second, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var met sync.WaitGroup
	met.Add(2)
	fw := &countingForwarder{}
	// The approval comes once the later call waits on the earlier's review:
	// given before, the earlier call may have run by the time the later one
	// looks, and then the later rightly asks for a review of its own.
	following := &logSignal{text: "the same call is already under review", seen: make(chan struct{})}
	g, err := gate.New(gate.Options{Decider: decideReview{}, Reviewer: svc, Recorder: meetAtBegin{st, &met}, Granter: st, Forwarder: fw,
		Logger: slog.New(slog.NewTextHandler(following, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"01TWIN0", "01TWIN1"}
	out := map[string]chan toolgate.Result{}
	for _, id := range ids {
		c, _ := reviewCall(id)
		ch := make(chan toolgate.Result, 1)
		out[id] = ch
		go func() { ch <- g.Handle(t.Context(), c) }()
	}
	met.Wait()
	got := toolgatetest.PendingIDs(t, st)
	if len(got) != 1 {
		t.Fatalf("pending reviews %v; want one", got)
	}
	asker := got[0]
	other := ids[0]
	if other == asker {
		other = ids[1]
	}
	select {
	case <-following.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("no call waited on the other's review")
	}
	// The waiting call's own row takes no answer; the listed one does.
	if ok, err := st.SubmitVerdict(t.Context(), other, toolgate.Verdict{Approved: true, Reviewer: "web:rita", Channel: toolgate.ChannelWeb}); ok || !errors.Is(err, audit.ErrFollows) {
		t.Fatalf("approving the waiting call %s = %v, %v; want ErrFollows", other, ok, err)
	}
	if ok, err := st.SubmitVerdict(t.Context(), asker, toolgate.Verdict{Approved: true, Reviewer: "web:rita", Channel: toolgate.ChannelWeb}); !ok || err != nil {
		t.Fatalf("approving %s = %v, %v", asker, ok, err)
	}
	result := func(id string) (string, bool) {
		t.Helper()
		select {
		case res := <-out[id]:
			return toolgatetest.Text(res), res.IsError
		case <-time.After(10 * time.Second):
			t.Fatalf("call %s did not return", id)
			return "", false
		}
	}
	if text, isErr := result(asker); isErr || text != "deleted" {
		t.Fatalf("the call whose review was approved: %v %s", isErr, text)
	}
	if text, isErr := result(other); !isErr || !strings.Contains(text, "review "+asker+" of the same call was approved for one run") {
		t.Fatalf("the call that waited: %v %s", isErr, text)
	}
	if fw.n.Load() != 1 {
		t.Fatalf("forwarded %d times, want once", fw.n.Load())
	}
	if r, _ := st.Get(t.Context(), other); r.Status != toolgate.StatusRefused || r.Review == nil || r.Review.Approved || r.Review.Reviewer != "" {
		t.Fatalf("the waiting call's row: %s %+v", r.Status, r.Review)
	}
	if rep, err := st.Verify(t.Context()); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
