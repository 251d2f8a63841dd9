package review_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// These tests run the Service over a real audit DB (package audit's
// *audit.Store), and through the gate.

const testApprover = "U0APPROVER"

// click is testApprover pressing button action on callID's review message,
// with reason typed into the reason field.
func click(action, callID, reason string) slackfake.Action {
	return slackfake.Action{User: testApprover, ActionID: action, Value: callID,
		Inputs: map[string]map[string]string{review.BlockReason: {review.ActionReason: reason}}}
}

func openAudit(t *testing.T, path string) *audit.Store {
	t.Helper()
	st, err := audit.Open(context.Background(), path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func reviewCall(id string) (toolgate.Call, toolgate.Decision) {
	return toolgate.Call{
		ID: id, Server: "fs", Tool: "delete", Name: "fs__delete",
		Args:   map[string]any{"path": "/srv/data", "token": "abc123secret"},
		Client: toolgate.Peer{Name: "cursor"}, Time: time.Now(),
	}, toolgate.Decision{Action: toolgate.Review, Rule: "deletes", Reason: "deleting needs a human", Version: "v1"}
}

func TestCLIVerdictFromAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	server := openAudit(t, path)
	svc, err := review.New(review.Options{Store: server, Channels: []string{toolgate.ChannelCLI},
		Timeout: 10 * time.Second, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, d := reviewCall("01CROSSPROC")
	if err := server.Begin(t.Context(), c, d); err != nil {
		t.Fatal(err)
	}
	type result struct {
		v   toolgate.Verdict
		err error
	}
	done := make(chan result, 1)
	go func() { v, err := svc.Review(t.Context(), c, d); done <- result{v, err} }()

	// `toolgate review approve` opens its own store on the same file.
	cli := openAudit(t, path)
	ps, err := cli.PendingReviews(t.Context())
	if err != nil || len(ps) != 1 || ps[0].Call.ID != c.ID {
		t.Fatalf("pending = %+v, %v", ps, err)
	}
	ok, err := cli.SubmitVerdict(t.Context(), c.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI})
	if !ok || err != nil {
		t.Fatalf("SubmitVerdict = %v, %v", ok, err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not pick up the other process's verdict")
	}
	if r.err != nil || !r.v.Approved || r.v.Reviewer != "cli:alice" || r.v.Channel != toolgate.ChannelCLI {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	if err := server.Resolve(t.Context(), c.ID, r.v); err != nil {
		t.Fatal(err)
	}
	rec, err := server.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != toolgate.StatusStarted || rec.Review == nil || rec.Review.Reviewer != "cli:alice" {
		t.Errorf("record = status %s, review %+v", rec.Status, rec.Review)
	}
}

type decideReview struct{}

func (decideReview) Decide(context.Context, toolgate.Call) toolgate.Decision {
	return toolgate.Decision{Action: toolgate.Review, Rule: "deletes", Reason: "deleting needs a human", Version: "v1"}
}

type countingForwarder struct{ n atomic.Int32 }

func (f *countingForwarder) ForwardResult(ctx context.Context, c toolgate.Call) (toolgate.Result, error) {
	f.n.Add(1)
	return toolgate.Result{Raw: []byte(`{"content":[{"type":"text","text":"deleted"}]}`)}, nil
}

// gateHarness wires gate + audit + review + fake Slack (Socket Mode); mods
// adjust the Slack options.
func gateHarness(t *testing.T, mods ...func(*review.SlackOptions)) (*gate.Gate, *audit.Store, *slackfake.Server, *countingForwarder) {
	t.Helper()
	st := openAudit(t, filepath.Join(t.TempDir(), "audit.db"))
	fs := slackfake.New(t)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	so := &review.SlackOptions{
		BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, Channel: "#approvals",
		Approvers: []string{testApprover}, APIURL: fs.APIURL(), HTTPClient: hc,
	}
	for _, m := range mods {
		m(so)
	}
	svc, err := review.New(review.Options{
		Store: st, Timeout: 10 * time.Second, PollInterval: 20 * time.Millisecond, Slack: so,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })
	fs.WaitConnected()
	fw := &countingForwarder{}
	g, err := gate.New(gate.Options{Decider: decideReview{}, Reviewer: svc, Recorder: st, Forwarder: fw})
	if err != nil {
		t.Fatal(err)
	}
	return g, st, fs, fw
}

func TestGateSlackApprovalEndToEnd(t *testing.T) {
	g, st, fs, fw := gateHarness(t)
	c, _ := reviewCall("01E2EAPPROVE")
	done := make(chan toolgate.Result, 1)
	go func() { done <- g.Handle(t.Context(), c) }()

	fs.WaitPosts(1)
	if fw.n.Load() != 0 {
		t.Fatal("forwarded before approval")
	}
	time.Sleep(20 * time.Millisecond) // a measurable time-to-approval
	fs.Click(click(review.ActionApprove, c.ID, ""))

	var res toolgate.Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("call still blocked after approval")
	}
	if res.IsError || fw.n.Load() != 1 {
		t.Fatalf("result %+v, forwarded %d times", res, fw.n.Load())
	}
	if err := st.Flush(t.Context()); err != nil { // the outcome is written behind
		t.Fatal(err)
	}
	rec, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != toolgate.StatusOK || rec.Review == nil || !rec.Review.Approved ||
		rec.Review.Reviewer != testApprover || rec.Review.Channel != toolgate.ChannelSlack {
		t.Fatalf("record: status %s, review %+v", rec.Status, rec.Review)
	}
	if rec.Review.TimeToDecision < 20*time.Millisecond {
		t.Errorf("time to decision = %v", rec.Review.TimeToDecision)
	}
	if up := fs.WaitUpdates(1); !slackfake.ContainsText(up, "Approved") {
		t.Errorf("update = %v", up)
	}
}

func TestGateSlackDenialEndToEnd(t *testing.T) {
	g, st, fs, fw := gateHarness(t)
	c, _ := reviewCall("01E2EDENY")
	done := make(chan toolgate.Result, 1)
	go func() { done <- g.Handle(t.Context(), c) }()
	fs.WaitPosts(1)
	fs.Click(click(review.ActionDeny, c.ID, "use the archive instead"))
	res := <-done
	if !res.IsError || fw.n.Load() != 0 {
		t.Fatalf("result %+v, forwarded %d", res, fw.n.Load())
	}
	text := res.Refusal
	if !strings.Contains(text, "use the archive instead") || !strings.Contains(text, testApprover) {
		t.Errorf("refusal = %q", text)
	}
	rec, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != toolgate.StatusRefused || rec.Review == nil || rec.Review.Reason != "use the archive instead" {
		t.Errorf("record: status %s, review %+v", rec.Status, rec.Review)
	}
}

func TestRecoverWithRealAudit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	fs := slackfake.New(t)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)

	// The previous process: a review posted to Slack, then a crash.
	prev := openAudit(t, path)
	c, d := reviewCall("01RESTART")
	if err := prev.Begin(t.Context(), c, d); err != nil {
		t.Fatal(err)
	}
	if err := prev.SetReviewMessage(t.Context(), c.ID, slackfake.ChannelID, "1700000000.000042"); err != nil {
		t.Fatal(err)
	}
	prev.Close()

	st := openAudit(t, path)
	svc, err := review.New(review.Options{Store: st, Slack: &review.SlackOptions{
		BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, Channel: "#approvals",
		Approvers: []string{testApprover}, APIURL: fs.APIURL(), HTTPClient: hc,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != toolgate.StatusRefused || rec.Review == nil || rec.Review.Channel != toolgate.ChannelExpired {
		t.Errorf("record: status %s, review %+v", rec.Status, rec.Review)
	}
	if ups := fs.Updates(); len(ups) != 1 || !slackfake.ContainsText(ups[0], "toolgate restarted") {
		t.Errorf("updates: %v", ups)
	}
	if ps, _ := st.PendingReviews(t.Context()); len(ps) != 0 {
		t.Errorf("still pending: %+v", ps)
	}
}

// TestMaxPendingAcrossReplicas: the reviews of a person (a per-user
// credential) waiting in another process that shares the log, as a
// PostgreSQL replica does, count against MaxPending too; a caller
// without one (stdio, a shared token) is counted per process.
func TestMaxPendingAcrossReplicas(t *testing.T) {
	st := openAudit(t, filepath.Join(t.TempDir(), "audit.db"))
	replica := func() *review.Service {
		svc, err := review.New(review.Options{Store: st, Channels: []string{toolgate.ChannelCLI},
			Timeout: 20 * time.Second, Hold: 30 * time.Millisecond, PollInterval: 20 * time.Millisecond, MaxPending: 2})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := replica(), replica()
	ask := func(svc *review.Service, id string, p toolgate.Principal) (toolgate.Verdict, error) {
		t.Helper()
		c, d := reviewCall(id)
		c.Principal, c.Args["path"] = p, "/srv/"+id // not a retry of another
		if err := st.Begin(t.Context(), c, d); err != nil {
			t.Fatal(err)
		}
		return svc.Review(t.Context(), c, d)
	}
	alice, shared := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}, toolgate.Principal{User: "shared", Auth: toolgate.AuthShared}
	for i, p := range []toolgate.Principal{alice, alice, shared, shared} {
		if _, err := ask(a, fmt.Sprintf("01REPA%d", i), p); !errors.Is(err, toolgate.ErrHeld) {
			t.Fatalf("review %d on replica a: %v; want it held", i, err)
		}
	}
	if v, err := ask(b, "01REPB0", alice); err != nil || v.Channel != toolgate.ChannelLimit {
		t.Fatalf("alice's third review, on replica b: %+v, %v; want it refused (review.max_pending)", v, err)
	}
	if _, err := ask(b, "01REPB1", shared); !errors.Is(err, toolgate.ErrHeld) {
		t.Fatalf("a shared-token caller's review on replica b: %v; want it held", err)
	}
	held := []string{"01REPA0", "01REPA1", "01REPA2", "01REPA3", "01REPB1"}
	for _, id := range held {
		if _, err := st.SubmitVerdict(t.Context(), id, toolgate.Verdict{Reviewer: "cli:rita", Channel: toolgate.ChannelCLI}); err != nil {
			t.Fatal(err)
		}
	}
	toolgatetest.Eventually(t, "every held review to end", func() bool {
		for _, id := range held {
			if ended, err := st.ReviewEnded(t.Context(), id); err != nil || !ended {
				return false
			}
		}
		return true
	})
}
