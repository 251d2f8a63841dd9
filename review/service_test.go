package review

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

const (
	approver   = "U0APPROVER"
	stranger   = "U0STRANGER"
	fakeSecret = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
)

func testCall(id string) (toolgate.Call, toolgate.Decision) {
	conf := 0.42
	c := toolgate.Call{
		ID: id, Server: "shell", Tool: "exec", Name: "shell__exec",
		Args:       map[string]any{"command": "deploy --token " + fakeSecret, "password": "hunter2", "cwd": "/srv/app"},
		Client:     toolgate.Peer{Name: "claude-code", Version: "2.1"},
		Model:      toolgate.Peer{Name: "claude-opus"},
		Confidence: &conf,
		Time:       time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	d := toolgate.Decision{Action: toolgate.Review, Rule: "prod-deploys", Reason: "deploys need a human", Version: "v1"}
	return c, d
}

type harness struct {
	t     *testing.T
	logs  *toolgatetest.SyncBuffer
	store *fakeStore
	slack *slackfake.Server
	svc   *Service
}

// newHarness builds a Service over a fake store and (unless slackOpts is
// nil) the fake Slack; mut adjusts the options.
func newHarness(t *testing.T, withSlack bool, mut func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, store: newFakeStore(), logs: &toolgatetest.SyncBuffer{}}
	o := Options{Store: h.store, Timeout: 5 * time.Second, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if withSlack {
		h.slack = newFakeSlack(t)
		hc := &http.Client{Transport: &http.Transport{}}
		t.Cleanup(hc.CloseIdleConnections)
		o.Slack = &SlackOptions{
			BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, SigningSecret: signingSecret,
			Channel: "#approvals", Approvers: []string{approver}, ApproverGroups: []string{"S0OPS"},
			APIURL: h.slack.APIURL(), HTTPClient: hc, APITimeout: 2 * time.Second,
		}
	}
	if mut != nil {
		mut(&o)
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	return h
}

// run starts the Socket Mode loop and waits for it to connect.
func (h *harness) run() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			h.t.Error("Run did not return after cancel")
		}
	})
	h.slack.WaitConnected()
}

type result struct {
	v   toolgate.Verdict
	err error
}

// review starts Review for a new pending call in the background.
func (h *harness) review(ctx context.Context, id string) (toolgate.Call, <-chan result) {
	return h.reviewFor(ctx, id, 0)
}

// reviewFor is review of a call whose rule has session_grant: session.
func (h *harness) reviewFor(ctx context.Context, id string, session time.Duration) (toolgate.Call, <-chan result) {
	c, d := testCall(id)
	d.SessionGrant = session
	h.store.add(c, d)
	out := make(chan result, 1)
	go func() {
		v, err := h.svc.Review(ctx, c, d)
		out <- result{v, err}
	}()
	return c, out
}

func (h *harness) waitPosted(n int) url.Values {
	h.t.Helper()
	return h.slack.WaitPosts(n)
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Review did not return")
		return result{}
	}
}

func TestSlackApproveViaSocketMode(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, res := h.review(t.Context(), "01APPROVE")

	post := h.waitPosted(1)
	if post.Get("channel") != "#approvals" {
		t.Errorf("posted to %q", post.Get("channel"))
	}
	bs := blocksOf(t, post)
	if !hasBlockType(bs, "actions") || !hasBlockType(bs, "header") || hasBlockType(bs, "input") {
		t.Errorf("review message lacks actions/header blocks, or has an input (Deny asks in a form): %s", post.Get("blocks"))
	}
	for _, want := range []string{`"action_id":"approve"`, `"action_id":"deny"`, `"style":"primary"`, `"style":"danger"`,
		`"value":"01APPROVE"`, "shell__exec", "prod-deploys", "deploys need a human", "claude-code 2.1", "claude-opus",
		"0.42", "01APPROVE", "/srv/app", "!date^"} {
		if !slackfake.ContainsText(post, want) {
			t.Errorf("review message lacks %q", want)
		}
	}
	for _, secret := range []string{fakeSecret, "hunter2"} {
		if slackfake.ContainsText(post, secret) {
			t.Errorf("review message leaks %q", secret)
		}
	}
	toolgatetest.Eventually(t, "message location stored", func() bool { _, ts := h.store.message(c.ID); return ts != "" })

	h.slack.Click(click(approver, ActionApprove, c.ID, ""))
	r := await(t, res)
	if r.err != nil || !r.v.Approved || r.v.Reviewer != approver || r.v.Channel != toolgate.ChannelSlack {
		t.Fatalf("Review = %+v, %v; want approved by %s via slack", r.v, r.err, approver)
	}
	if v, ok := h.store.verdict(c.ID); !ok || !v.Approved {
		t.Errorf("stored verdict = %+v, %v", v, ok)
	}
	ups := h.slack.Updates()
	if len(ups) != 1 {
		t.Fatalf("%d chat.update calls, want 1", len(ups))
	}
	up := ups[0]
	_, ts := h.store.message(c.ID)
	if up.Get("channel") != slackfake.ChannelID || up.Get("ts") != ts {
		t.Errorf("updated %s/%s, want %s/%s", up.Get("channel"), up.Get("ts"), slackfake.ChannelID, ts)
	}
	if !slackfake.ContainsText(up, "Approved") || !slackfake.ContainsText(up, "<@"+approver+">") || slackfake.ContainsText(up, `"action_id":"approve"`) {
		t.Errorf("updated message: %s", up.Get("blocks"))
	}
	if logs := h.logs.String(); strings.Contains(logs, "hunter2") || strings.Contains(logs, fakeSecret) {
		t.Errorf("logs leak arguments:\n%s", logs)
	}
}

func TestSlackDenyWithReasonViaHTTP(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Slack.Mode = SlackModeHTTP; o.Slack.AppToken = "" })
	c, res := h.review(t.Context(), "01DENY")
	h.waitPosted(1)

	rec := h.postInteraction(clickPayload(approver, ActionDeny, c.ID, "  not on a Friday "), time.Now())
	if rec.Code != http.StatusOK {
		t.Fatalf("interaction status %d: %s", rec.Code, rec.Body)
	}
	r := await(t, res)
	if r.err != nil || r.v.Approved || r.v.Reviewer != approver || r.v.Channel != toolgate.ChannelSlack || r.v.Reason != "not on a Friday" {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	ups := h.slack.Updates()
	if len(ups) != 1 || !slackfake.ContainsText(ups[0], "Denied") || !slackfake.ContainsText(ups[0], "not on a Friday") {
		t.Errorf("updates: %v", ups)
	}
}

// postInteraction sends payload to the HTTP interactivity endpoint, signed
// with the signing secret at time at.
func (h *harness) postInteraction(payload map[string]any, at time.Time) *httptest.ResponseRecorder {
	return h.postSigned(payload, at, signingSecret)
}

func (h *harness) postSigned(payload map[string]any, at time.Time, secret string) *httptest.ResponseRecorder {
	b, err := json.Marshal(payload)
	if err != nil {
		h.t.Fatal(err)
	}
	body := url.Values{"payload": {string(b)}}.Encode()
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req := httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	rec := httptest.NewRecorder()
	h.svc.InteractionHandler().ServeHTTP(rec, req)
	return rec
}

func TestInteractionHandlerRejectsForgedAndStale(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Slack.Mode = SlackModeHTTP })
	c, res := h.review(t.Context(), "01FORGED")
	h.waitPosted(1)
	click := clickPayload(approver, ActionApprove, c.ID, "")

	if rec := h.postSigned(click, time.Now(), "not-the-secret"); rec.Code != http.StatusUnauthorized {
		t.Errorf("forged signature: status %d, want 401", rec.Code)
	}
	if rec := h.postInteraction(click, time.Now().Add(-6*time.Minute)); rec.Code != http.StatusUnauthorized {
		t.Errorf("stale timestamp: status %d, want 401", rec.Code)
	}
	// A garbage signature.
	tampered := httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader("payload=%7B%7D"))
	tampered.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	tampered.Header.Set("X-Slack-Signature", "v0=00")
	trec := httptest.NewRecorder()
	h.svc.InteractionHandler().ServeHTTP(trec, tampered)
	if trec.Code != http.StatusUnauthorized {
		t.Errorf("bad signature: status %d, want 401", trec.Code)
	}
	if v, ok := h.store.verdict(c.ID); ok {
		t.Fatalf("rejected requests stored a verdict: %+v", v)
	}
	// A correctly signed, fresh request is accepted.
	if rec := h.postInteraction(click, time.Now()); rec.Code != http.StatusOK {
		t.Fatalf("valid request: status %d: %s", rec.Code, rec.Body)
	}
	r := await(t, res)
	if !r.v.Approved || r.v.Reviewer != approver {
		t.Errorf("Review = %+v", r.v)
	}
}

func TestForgedClickDoesNotDecide(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Slack.Mode = SlackModeHTTP; o.Timeout = 300 * time.Millisecond })
	c, res := h.review(t.Context(), "01FORGED2")
	h.waitPosted(1)
	click := clickPayload(approver, ActionApprove, c.ID, "")
	if rec := h.postSigned(click, time.Now(), "wrong"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	if rec := h.postInteraction(click, time.Now().Add(-10*time.Minute)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	if r := await(t, res); r.v.Approved || r.v.Channel != toolgate.ChannelTimeout {
		t.Errorf("after forged clicks Review = %+v, want timeout", r.v)
	}
}

func TestUnauthorizedClickerIsRefused(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, res := h.review(t.Context(), "01STRANGER")
	h.waitPosted(1)

	h.slack.Click(click(stranger, ActionApprove, c.ID, ""))
	h.slack.WaitEphemerals(1)
	eph := h.slack.Ephemerals()
	if eph[0].Get("user") != stranger || eph[0].Get("channel") != slackfake.ChannelID || !strings.Contains(eph[0].Get("text"), "not on toolgate's approver list") {
		t.Errorf("ephemeral = %v", eph[0])
	}
	if v, ok := h.store.verdict(c.ID); ok {
		t.Fatalf("stranger's click stored a verdict: %+v", v)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "not an approver") || !strings.Contains(logs, stranger) {
		t.Errorf("refused click not logged:\n%s", logs)
	}
	select {
	case r := <-res:
		t.Fatalf("Review returned after a stranger's click: %+v", r)
	default:
	}

	// A member of an approver group may answer.
	h.slack.Click(click("U0GROUPIE", ActionApprove, c.ID, ""))
	r := await(t, res)
	if !r.v.Approved || r.v.Reviewer != "U0GROUPIE" {
		t.Errorf("Review = %+v", r.v)
	}
}

func TestGroupMembersAreCached(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	h := newHarness(t, true, func(o *Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	sc := h.svc.slack
	ctx := t.Context()
	if !sc.approver(ctx, "U0GROUPIE") || !sc.approver(ctx, "U0OTHER") || sc.approver(ctx, stranger) {
		t.Fatal("group membership wrong")
	}
	if calls := h.slack.GroupCalls(); calls != 1 {
		t.Errorf("%d usergroups.users.list calls within the TTL, want 1", calls)
	}
	mu.Lock()
	now = now.Add(DefaultGroupCacheTTL + time.Second)
	mu.Unlock()
	sc.approver(ctx, stranger)
	if calls := h.slack.GroupCalls(); calls != 2 {
		t.Errorf("%d usergroups.users.list calls after the TTL, want 2", calls)
	}
	if !sc.approver(ctx, approver) {
		t.Error("listed approver refused")
	}
	if sc.approver(ctx, "") {
		t.Error("empty user accepted")
	}
}

func TestTimeoutDeniesAndUpdatesMessage(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	c, res := h.review(t.Context(), "01TIMEOUT")
	r := await(t, res)
	if r.err != nil || r.v.Approved || r.v.Channel != toolgate.ChannelTimeout || !strings.Contains(r.v.Reason, "200ms") {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	if v, ok := h.store.verdict(c.ID); !ok || v.Channel != toolgate.ChannelTimeout {
		t.Errorf("stored verdict = %+v, %v", v, ok)
	}
	ups := h.slack.Updates()
	if len(ups) != 1 || !slackfake.ContainsText(ups[0], "Expired") || slackfake.ContainsText(ups[0], `"type":"actions"`) {
		t.Errorf("updates = %v", ups)
	}
}

func TestTimeoutLosesRaceToVerdict(t *testing.T) {
	// A verdict that landed just before the timer fired wins over the timeout.
	h := newHarness(t, false, func(o *Options) { o.Timeout = 50 * time.Millisecond; o.PollInterval = time.Hour })
	c, d := testCall("01RACE")
	h.store.add(c, d)
	// Stored without waking the waiter, as another process would.
	h.store.SubmitVerdict(t.Context(), c.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI})
	v, err := h.svc.Review(t.Context(), c, d)
	if err != nil || !v.Approved || v.Reviewer != "cli:alice" {
		t.Fatalf("Review = %+v, %v", v, err)
	}
	// And a conclude that loses the race returns the winner.
	c2, d2 := testCall("01RACE2")
	h.store.add(c2, d2)
	w := &wait{s: h.svc, c: c2, d: d2, log: h.svc.o.Logger}
	h.store.SubmitVerdict(t.Context(), c2.ID, toolgate.Verdict{Reviewer: "U1", Channel: toolgate.ChannelSlack, Reason: "no"})
	if got := h.svc.conclude(w, toolgate.Verdict{Channel: toolgate.ChannelTimeout}); got.Channel != toolgate.ChannelSlack || got.Reviewer != "U1" {
		t.Errorf("conclude = %+v, want the stored slack verdict", got)
	}
}

// TestCancelledCall: a call that goes away during its review ends it as
// cancelled, and its Slack message says so, also when the call went away
// while the message was being posted (a slow Slack): reviewers are never
// left a live request for a call that is gone.
func TestCancelledCall(t *testing.T) {
	for _, delay := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("post takes %v", delay), func(t *testing.T) {
			h := newHarness(t, true, nil)
			h.slack.PostDelay = delay
			ctx, cancel := context.WithCancel(t.Context())
			c, res := h.review(ctx, "01CANCEL")
			h.waitPosted(1) // recorded; with a delay, the answer is still on its way
			cancel()
			r := await(t, res)
			if r.err != nil || r.v.Approved || r.v.Channel != toolgate.ChannelCancelled {
				t.Fatalf("Review = %+v, %v", r.v, r.err)
			}
			if v, _ := h.store.verdict(c.ID); v.Channel != toolgate.ChannelCancelled {
				t.Errorf("stored %+v", v)
			}
			ups := h.slack.Updates()
			if len(ups) != 1 || !slackfake.ContainsText(ups[0], "Cancelled") {
				t.Errorf("updates = %v; want the posted message marked cancelled", ups)
			}
		})
	}
}

func TestRecoverExpiresOrphans(t *testing.T) {
	h := newHarness(t, true, nil)
	c1, d1 := testCall("01ORPHAN1")
	c2, d2 := testCall("01ORPHAN2")
	h.store.add(c1, d1)
	h.store.add(c2, d2)
	h.store.SetReviewMessage(t.Context(), c1.ID, slackfake.ChannelID, "1699999999.000100")

	if err := h.svc.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{c1.ID, c2.ID} {
		if v, ok := h.store.verdict(id); !ok || v.Approved || v.Channel != toolgate.ChannelExpired {
			t.Errorf("%s: verdict %+v, %v", id, v, ok)
		}
	}
	ups := h.slack.Updates()
	if len(ups) != 1 {
		t.Fatalf("%d updates, want 1 (only c1 had a message)", len(ups))
	}
	if ups[0].Get("ts") != "1699999999.000100" || !slackfake.ContainsText(ups[0], "toolgate restarted") || slackfake.ContainsText(ups[0], `"type":"actions"`) {
		t.Errorf("update = %v", ups[0])
	}

	// A late click on the expired review is answered politely.
	h.run()
	h.slack.Click(click(approver, ActionApprove, c1.ID, ""))
	h.slack.WaitEphemerals(1)
	eph := h.slack.Ephemerals()
	if !strings.Contains(eph[0].Get("text"), "already closed") || !strings.Contains(eph[0].Get("text"), "expired") {
		t.Errorf("late click reply = %q", eph[0].Get("text"))
	}
	if v, _ := h.store.verdict(c1.ID); v.Approved {
		t.Error("late click approved an expired review")
	}
}

func TestLateClickOnDecidedReview(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, res := h.review(t.Context(), "01LATE")
	h.waitPosted(1)
	h.slack.Click(click(approver, ActionDeny, c.ID, "nope"))
	if r := await(t, res); r.v.Approved {
		t.Fatalf("Review = %+v", r.v)
	}
	h.slack.Click(click(approver, ActionApprove, c.ID, ""))
	h.slack.WaitEphemerals(1)
	eph := h.slack.Ephemerals()
	if txt := eph[0].Get("text"); !strings.Contains(txt, "already closed: denied by <@"+approver+">") {
		t.Errorf("late click reply = %q", txt)
	}
	if v, _ := h.store.verdict(c.ID); v.Approved || v.Reason != "nope" {
		t.Errorf("verdict changed to %+v", v)
	}
	// Clicks for unknown calls and junk payloads do not crash either.
	h.slack.Click(click(approver, ActionApprove, "01UNKNOWN", ""))
	h.slack.Send(map[string]any{"type": "block_actions", "actions": []any{}})
	h.slack.Send(map[string]any{"type": "view_submission"})
	h.slack.WaitEphemerals(2)
	eph = h.slack.Ephemerals()
	if txt := eph[1].Get("text"); !strings.Contains(txt, "not known to this toolgate") {
		t.Errorf("unknown review reply = %q", txt)
	}
}

func TestSlackDownFallsToCLI(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Slack.APIURL = closedURL(t)
		o.Channels = []string{toolgate.ChannelSlack, toolgate.ChannelCLI}
	})
	c, res := h.review(t.Context(), "01SLACKDOWN")
	toolgatetest.Eventually(t, "slack failure logged", func() bool { return strings.Contains(h.logs.String(), "slack review channel unreachable") })
	select {
	case r := <-res:
		t.Fatalf("Review returned although cli is listed: %+v, %v", r.v, r.err)
	default:
	}
	// Another process (toolgate review approve) writes the verdict; the
	// waiter finds it by polling.
	if ok, err := h.store.SubmitVerdict(t.Context(), c.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	r := await(t, res)
	if r.err != nil || !r.v.Approved || r.v.Channel != toolgate.ChannelCLI {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
}

func TestSlackDownOnlyChannelErrorsPromptly(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Slack.APIURL = closedURL(t)
		o.Channels = []string{toolgate.ChannelSlack}
		o.Timeout = time.Hour
	})
	_, res := h.review(t.Context(), "01NOCHAN")
	r := await(t, res)
	if !errors.Is(r.err, ErrNoChannel) || r.v.Approved || !strings.Contains(r.err.Error(), "slack") {
		t.Fatalf("Review = %+v, %v; want ErrNoChannel naming slack", r.v, r.err)
	}
}

func TestSlackErrorsCarryHints(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Slack.BotToken = "xoxb-wrong"; o.Channels = []string{toolgate.ChannelSlack} })
	_, res := h.review(t.Context(), "01BADTOKEN")
	r := await(t, res)
	if r.err == nil || !strings.Contains(r.err.Error(), "invalid_auth") || !strings.Contains(r.err.Error(), "check the bot token") {
		t.Fatalf("err = %v", r.err)
	}
}

func TestElicitationUnavailableOutsideMCP(t *testing.T) {
	h := newHarness(t, false, func(o *Options) { o.Elicitation = true; o.Channels = []string{toolgate.ChannelElicitation} })
	_, res := h.review(t.Context(), "01ELICIT")
	r := await(t, res)
	if !errors.Is(r.err, ErrNoChannel) || !strings.Contains(r.err.Error(), "elicitation") {
		t.Fatalf("err = %v", r.err)
	}
	h2 := newHarness(t, false, func(o *Options) { o.Channels = []string{toolgate.ChannelElicitation} })
	_, res = h2.review(t.Context(), "01ELICIT2")
	if r := await(t, res); !strings.Contains(fmt.Sprint(r.err), "disabled") {
		t.Fatalf("err = %v", r.err)
	}
}

func TestProgressWhileWaiting(t *testing.T) {
	var mu sync.Mutex
	var got []float64
	var msgs []string
	h := newHarness(t, false, func(o *Options) {
		o.Timeout = 300 * time.Millisecond
		o.ProgressInterval = 20 * time.Millisecond
	})
	ctx := toolgate.WithProgress(t.Context(), func(p, total float64, msg string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
		msgs = append(msgs, msg)
		if total != 0.3 {
			t.Errorf("total = %v, want 0.3", total)
		}
	})
	_, res := h.review(ctx, "01PROGRESS")
	if r := await(t, res); r.v.Channel != toolgate.ChannelTimeout {
		t.Fatalf("Review = %+v", r.v)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 3 {
		t.Fatalf("%d progress notifications, want several", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] && got[i] != 0 {
			t.Errorf("progress not increasing: %v", got)
			break
		}
	}
	// The agent reads these: they must not tell it how to approve itself.
	for _, m := range msgs {
		if !strings.Contains(m, "waiting for human review via a terminal") || strings.Contains(m, "review approve") {
			t.Errorf("progress message = %q; want it to say a terminal answers, without the command", m)
		}
	}
}

func TestStoreReadFailureIsAnError(t *testing.T) {
	h := newHarness(t, false, nil)
	h.store.failRead = errors.New("disk on fire")
	_, res := h.review(t.Context(), "01READFAIL")
	if r := await(t, res); r.err == nil || !strings.Contains(r.err.Error(), "disk on fire") {
		t.Fatalf("err = %v", r.err)
	}
}

func TestNewValidates(t *testing.T) {
	st := newFakeStore()
	good := SlackOptions{BotToken: "xoxb", AppToken: "xapp", Channel: "#c", Approvers: []string{"U1"}}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no store", Options{}, "no store"},
		{"unknown channel", Options{Store: st, Channels: []string{"pager"}}, "unknown channel"},
		{"twice", Options{Store: st, Channels: []string{"cli", "cli"}}, "twice"},
		{"slack listed not set", Options{Store: st, Channels: []string{"slack"}}, "not configured"},
		{"no approvers", Options{Store: st, Slack: &SlackOptions{BotToken: "x", AppToken: "y", Channel: "#c"}}, "no approvers"},
		{"socket without app token", Options{Store: st, Slack: &SlackOptions{BotToken: "x", Channel: "#c", Approvers: []string{"U1"}}}, "app-level token"},
		{"http without secret", Options{Store: st, Slack: &SlackOptions{BotToken: "x", Channel: "#c", Approvers: []string{"U1"}, Mode: "http"}}, "signing secret"},
		{"no bot token", Options{Store: st, Slack: &SlackOptions{Channel: "#c"}}, "bot token"},
	}
	for _, tc := range cases {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	s, err := New(Options{Store: st, Slack: &good, Elicitation: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Channels(), ","); got != "slack,cli,elicitation" {
		t.Errorf("default channels = %s", got)
	}
	// Without Slack, InteractionHandler answers 404 and Run just waits.
	s2, _ := New(Options{Store: st})
	rec := httptest.NewRecorder()
	s2.InteractionHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d", rec.Code)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s2.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestSocketModeBadAppToken(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Slack.AppToken = "xapp-wrong" })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := h.svc.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "app-level token") {
		t.Fatalf("Run = %v, want an app token error", err)
	}
}

func TestMessageShape(t *testing.T) {
	h := newHarness(t, true, nil)
	c, d := testCall("01SHAPE")
	c.Args["blob"] = strings.Repeat("é", 2000)
	c.Name = "evil<@U123>&`" + strings.Repeat("x", 300)
	d.Sandbox = "workspace-write"
	bs := h.svc.slack.reviewBlocks(c, d, time.Unix(1700000000, 0), nil)
	b, err := json.Marshal(bs)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "*Runs in:*\\nsandbox profile workspace-write") {
		t.Errorf("the message does not say which sandbox the call runs in: %s", s)
	}
	if strings.Contains(s, "<@U123>") || !strings.Contains(s, "evil\\u0026lt;@U123\\u0026gt;\\u0026amp;") {
		t.Errorf("names not escaped: %s", s)
	}
	if !strings.Contains(s, "bytes in all") {
		t.Error("long arguments not truncated")
	}
	if len(s) > 6000 {
		t.Errorf("message is %d bytes", len(s))
	}
	if head := bs[0].(*slack.HeaderBlock).Text.Text; utf8.RuneCountInString(head) > 150 {
		t.Errorf("header has %d runes, Slack allows 150", utf8.RuneCountInString(head))
	}
	if fb := h.svc.slack.fallbackText(toolgate.Call{Name: "<!channel>", ID: "1"}, nil); strings.Contains(fb, "<!channel>") {
		t.Errorf("fallback text can ping: %q", fb)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	for _, blk := range decoded {
		if txt, ok := blk["text"].(map[string]any); ok {
			if !json.Valid([]byte(strconv.Quote(txt["text"].(string)))) {
				t.Error("invalid text")
			}
		}
	}
}
