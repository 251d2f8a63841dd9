package review

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// Tests of the Slack channel under trouble: rate limits, failing updates, a
// lost Socket Mode connection. Deadlines here are guards, never the thing
// tested.

// fastRetries makes failed API calls retry after milliseconds instead of
// half a second (a 429 still waits its Retry-After).
func fastRetries(h *harness) { h.svc.slack.retryFirstWait = 5 * time.Millisecond }

func TestSlackBurstRateLimited(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Channels = []string{toolgate.ChannelSlack} // a post that fails denies the call at once
		o.Timeout = time.Minute
		o.Slack.APITimeout = 20 * time.Second
	})
	fastRetries(h)
	h.run()
	// Slack's answer to a burst: the first posts get 429 with Retry-After.
	h.slack.Fail("chat.postMessage", 3, slackfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1})

	ids := []string{"01BURST1", "01BURST2", "01BURST3", "01BURST4", "01BURST5"}
	var results []<-chan result
	for _, id := range ids {
		_, res := h.review(t.Context(), id)
		results = append(results, res)
	}
	h.slack.WaitPosts(len(ids))
	for i, res := range results {
		select {
		case r := <-res:
			t.Fatalf("review %s ended while its message was being posted: %+v, %v", ids[i], r.v, r.err)
		default:
		}
	}
	if n := h.slack.Calls("chat.postMessage"); n != len(ids)+3 {
		t.Errorf("%d chat.postMessage calls, want %d (each 429 tried again)", n, len(ids)+3)
	}
	for i, id := range ids {
		h.slack.Click(click(approver, ActionApprove, id, ""))
		if r := await(t, results[i]); r.err != nil || !r.v.Approved {
			t.Errorf("review %s = %+v, %v; want approved", id, r.v, r.err)
		}
	}
	if logs := h.logs.String(); !strings.Contains(logs, "slack API call failed; retrying") || !strings.Contains(logs, "method=chat.postMessage") {
		t.Errorf("retries not logged:\n%s", logs)
	}
}

// A Retry-After longer than the budget is not slept through: the review
// asks the next channel at once.
func TestSlackRateLimitPastBudgetFallsThrough(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Channels = []string{toolgate.ChannelSlack, toolgate.ChannelCLI}
		o.Timeout = time.Minute
		o.Slack.APITimeout = 30 * time.Second
	})
	h.slack.Fail("chat.postMessage", -1, slackfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: 600})
	c, res := h.review(t.Context(), "01LONGWAIT")
	toolgatetest.Eventually(t, "the review asking via cli", func() bool { return strings.Contains(h.logs.String(), "Slack is unreachable, asking via cli") })
	if logs := h.logs.String(); !strings.Contains(logs, "gave up after 1 attempts") {
		t.Errorf("the log does not say why Slack was given up:\n%s", logs)
	}
	h.store.SubmitVerdict(t.Context(), c.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI})
	if r := await(t, res); !r.v.Approved || r.v.Channel != toolgate.ChannelCLI {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
}

// A call that goes away stops the retries of its post.
func TestSlackRetriesStopWhenCallCancelled(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Channels = []string{toolgate.ChannelSlack, toolgate.ChannelCLI}
		o.Timeout = 5 * time.Minute
		o.Slack.APITimeout = 5 * time.Minute
	})
	h.svc.slack.retryFirstWait = time.Minute
	h.slack.Fail("chat.postMessage", -1, slackfake.Fault{Status: http.StatusServiceUnavailable})
	ctx, cancel := context.WithCancel(t.Context())
	_, res := h.review(ctx, "01CANCELRETRY")
	toolgatetest.Eventually(t, "a failed post", func() bool { return h.slack.Calls("chat.postMessage") > 0 })
	cancel()
	r := await(t, res)
	if r.v.Approved || r.v.Channel != toolgate.ChannelCancelled {
		t.Fatalf("Review = %+v, %v; want cancelled", r.v, r.err)
	}
	if n := h.slack.Calls("chat.postMessage"); n != 1 {
		t.Errorf("%d chat.postMessage calls after the call was cancelled, want 1", n)
	}
}

func TestSlackUpdateRetried(t *testing.T) {
	h := newHarness(t, true, nil)
	fastRetries(h)
	h.run()
	h.slack.Fail("chat.update", 2, slackfake.Fault{Status: http.StatusInternalServerError})
	c, res := h.review(t.Context(), "01UPDATE")
	post := h.waitPosted(1)
	ts := h.messageTS(c.ID)
	h.slack.Click(click(approver, ActionApprove, c.ID, ""))
	if r := await(t, res); !r.v.Approved {
		t.Fatalf("Review = %+v", r.v)
	}
	if n := h.slack.Calls("chat.update"); n != 3 {
		t.Errorf("%d chat.update calls, want 3 (two 500s, then served)", n)
	}
	msg := h.slack.Message(ts)
	if msg == nil || !slackfake.ContainsText(msg, "Approved") || slackfake.ContainsText(msg, `"type":"actions"`) {
		t.Errorf("message after the update: %v (posted %v)", msg, post)
	}
}

// An update that fails for good is logged as an error; a later click on
// the message is told the review is closed, and closes the message.
func TestSlackUpdateFailsForGood(t *testing.T) {
	var mu sync.Mutex
	var refusals []string
	h := newHarness(t, true, func(o *Options) {
		o.Slack.OnRefusedClick = func(id, user, why string) {
			mu.Lock()
			defer mu.Unlock()
			refusals = append(refusals, id+" "+user+" "+why)
		}
	})
	fastRetries(h)
	h.run()
	h.slack.Fail("chat.update", -1, slackfake.Fault{Status: http.StatusBadGateway})
	c, res := h.review(t.Context(), "01STUCK")
	h.waitPosted(1)
	h.slack.Click(click(approver, ActionDeny, c.ID, "not now"))
	if r := await(t, res); r.v.Approved {
		t.Fatalf("Review = %+v", r.v)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "still shows its buttons") {
		t.Errorf("the failed update is not logged as an error:\n%s", logs)
	}
	_, ts := h.store.message(c.ID)
	if m := h.slack.Message(ts); !slackfake.ContainsText(m, `"action_id":"approve"`) {
		t.Fatalf("the message changed although every update failed: %v", m)
	}

	h.slack.Fail("chat.update", 0, slackfake.Fault{})
	h.slack.Click(click(stranger, ActionApprove, c.ID, ""))
	h.slack.Click(click(approver, ActionApprove, c.ID, ""))
	h.slack.WaitEphemerals(2) // the clicks are handled concurrently
	for _, eph := range h.slack.Ephemerals() {
		if txt := eph.Get("text"); eph.Get("user") == approver && !strings.Contains(txt, "already closed: denied by <@"+approver+">") {
			t.Errorf("late click reply = %q", txt)
		}
	}
	toolgatetest.Eventually(t, "the message closed", func() bool { return len(h.slack.Updates()) > 0 })
	m := h.slack.Message(ts)
	if slackfake.ContainsText(m, `"action_id":"approve"`) || !slackfake.ContainsText(m, "Denied") || !slackfake.ContainsText(m, "not now") {
		t.Errorf("the late click did not close the message: %v", m)
	}
	if v, _ := h.store.verdict(c.ID); v.Approved {
		t.Error("a late click approved a denied review")
	}
	mu.Lock()
	got := strings.Join(refusals, "\n")
	mu.Unlock()
	for _, want := range []string{c.ID + " " + stranger + " " + RefusedNotApprover, c.ID + " " + approver + " " + RefusedAlreadyDecided} {
		if !strings.Contains(got, want) {
			t.Errorf("OnRefusedClick calls %q lack %q", got, want)
		}
	}
	for _, want := range []string{"why=" + RefusedNotApprover, "why=" + RefusedAlreadyDecided, "slack_user=" + stranger, "call_id=" + c.ID} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

func TestSocketModeDownFallsToCLI(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Channels = []string{toolgate.ChannelSlack, toolgate.ChannelCLI}
		o.Timeout = time.Minute
		o.ProgressInterval = time.Hour
	})
	h.svc.slack.reconnectGrace = 10 * time.Millisecond
	h.run()
	if !h.svc.SlackUp() {
		t.Fatal("SlackUp is false while connected")
	}
	// Slack goes away: the websocket dies and reconnecting fails.
	h.slack.Fail("apps.connections.open", -1, slackfake.Fault{Status: http.StatusServiceUnavailable})
	h.slack.DropConnections()
	toolgatetest.Eventually(t, "SlackUp false", func() bool { return !h.svc.SlackUp() })

	var mu sync.Mutex
	var progress []string
	ctx := toolgate.WithProgress(t.Context(), func(_, _ float64, msg string) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, msg)
	})
	c, res := h.review(ctx, "01SOCKDOWN")
	toolgatetest.Eventually(t, "the review asking via cli", func() bool { return strings.Contains(h.logs.String(), "Slack is unreachable, asking via cli") })
	mu.Lock()
	first := strings.Join(progress, "\n")
	mu.Unlock()
	if !strings.Contains(first, "Slack is unreachable") || !strings.Contains(first, "via a terminal") {
		t.Errorf("progress = %q; want it to say Slack is unreachable", first)
	}
	if n := h.slack.Calls("chat.postMessage"); n != 0 {
		t.Errorf("%d posts while clicks could not arrive", n)
	}
	h.store.SubmitVerdict(t.Context(), c.ID, toolgate.Verdict{Approved: true, Reviewer: "cli:alice", Channel: toolgate.ChannelCLI})
	if r := await(t, res); !r.v.Approved || r.v.Channel != toolgate.ChannelCLI {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}

	// Slack comes back; so do reviews in Slack.
	h.slack.Fail("apps.connections.open", 0, slackfake.Fault{})
	h.slack.WaitConnected()
	toolgatetest.Eventually(t, "SlackUp true", h.svc.SlackUp)
	c2, res2 := h.review(t.Context(), "01SOCKBACK")
	h.waitPosted(1)
	h.slack.Click(click(approver, ActionApprove, c2.ID, ""))
	if r := await(t, res2); !r.v.Approved || r.v.Channel != toolgate.ChannelSlack {
		t.Fatalf("Review after reconnecting = %+v, %v", r.v, r.err)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "connection lost") || !strings.Contains(logs, "connected again") {
		t.Errorf("loss and return of the connection not logged:\n%s", logs)
	}
}

// Slack asks for a new connection every few hours: a review started while
// toolgate reconnects waits for it instead of skipping Slack.
func TestSocketModeRefreshKeepsSlack(t *testing.T) {
	h := newHarness(t, true, func(o *Options) {
		o.Channels = []string{toolgate.ChannelSlack} // skipping Slack would deny the call
		o.Timeout = time.Minute
	})
	h.svc.slack.reconnectGrace = time.Minute // a guard: reconnecting takes a fraction of a second
	h.run()
	for i, id := range []string{"01REFRESH1", "01REFRESH2"} {
		// The first attempt to reconnect fails, so that the review surely
		// starts while the connection is down.
		h.slack.Fail("apps.connections.open", 1, slackfake.Fault{Status: http.StatusServiceUnavailable})
		h.slack.Disconnect("refresh_requested")
		toolgatetest.Eventually(t, "SlackUp false", func() bool { return !h.svc.SlackUp() })
		c, res := h.review(t.Context(), id)
		h.waitPosted(i + 1)
		h.slack.WaitConnected()
		h.slack.Click(click(approver, ActionApprove, c.ID, ""))
		if r := await(t, res); r.err != nil || !r.v.Approved {
			t.Fatalf("Review = %+v, %v", r.v, r.err)
		}
	}
	if n := h.slack.Calls("apps.connections.open"); n < 5 {
		t.Errorf("%d apps.connections.open calls; the disconnect requests were not followed", n)
	}
}

func TestSlackDownWithoutOtherChannelDenies(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Channels = []string{toolgate.ChannelSlack}; o.Timeout = time.Hour })
	h.svc.slack.reconnectGrace = 10 * time.Millisecond
	h.run()
	h.slack.Fail("apps.connections.open", -1, slackfake.Fault{Status: http.StatusBadGateway})
	h.slack.DropConnections()
	toolgatetest.Eventually(t, "SlackUp false", func() bool { return !h.svc.SlackUp() })
	_, res := h.review(t.Context(), "01NOSOCKET")
	r := await(t, res)
	if !errors.Is(r.err, ErrNoChannel) || !errors.Is(r.err, errSlackDown) || !strings.Contains(r.err.Error(), "Socket Mode") {
		t.Fatalf("Review = %+v, %v; want ErrNoChannel saying Slack is unreachable", r.v, r.err)
	}
}

func TestCheckSlack(t *testing.T) {
	check := func(t *testing.T, mut func(*Options), fake func(*slackfake.Server)) (error, *harness) {
		t.Helper()
		h := newHarness(t, true, mut)
		fastRetries(h)
		if fake != nil {
			fake(h.slack)
		}
		return h.svc.CheckSlack(t.Context()), h
	}
	t.Run("ok by name and by id", func(t *testing.T) {
		if err, _ := check(t, nil, nil); err != nil {
			t.Errorf("#approvals: %v", err)
		}
		if err, _ := check(t, func(o *Options) { o.Slack.Channel = slackfake.ChannelID }, nil); err != nil {
			t.Errorf("%s: %v", slackfake.ChannelID, err)
		}
	})
	t.Run("retried", func(t *testing.T) {
		err, h := check(t, nil, func(f *slackfake.Server) {
			f.Fail("auth.test", 2, slackfake.Fault{Status: http.StatusServiceUnavailable})
		})
		if err != nil || h.slack.Calls("auth.test") != 3 {
			t.Errorf("err = %v after %d auth.test calls", err, h.slack.Calls("auth.test"))
		}
	})
	t.Run("bad token", func(t *testing.T) {
		err, _ := check(t, func(o *Options) { o.Slack.BotToken = "xoxb-revoked" }, nil)
		if !errors.Is(err, ErrSlackAuth) || !strings.Contains(err.Error(), "invalid_auth") {
			t.Errorf("err = %v; want ErrSlackAuth with Slack's invalid_auth", err)
		}
	})
	t.Run("not a member", func(t *testing.T) {
		for _, ch := range []string{"#approvals", slackfake.ChannelID} {
			err, _ := check(t, func(o *Options) { o.Slack.Channel = ch }, func(f *slackfake.Server) { f.SetBotMember(false) })
			want := "the bot is not a member of #approvals: /invite @" + slackfake.BotName + " in that channel"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v; want %q", ch, err, want)
			}
		}
	})
	t.Run("no such channel", func(t *testing.T) {
		err, _ := check(t, func(o *Options) { o.Slack.Channel = "#aproovals" }, nil)
		if err == nil || !strings.Contains(err.Error(), "#aproovals") || !strings.Contains(err.Error(), "no such channel") {
			t.Errorf("err = %v", err)
		}
		err, _ = check(t, func(o *Options) { o.Slack.Channel = "C0NOPE" }, nil)
		if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("channel unreadable", func(t *testing.T) {
		err, h := check(t, nil, func(f *slackfake.Server) { f.RevokeScope("channels:read"); f.SetBotMember(false) })
		if err != nil {
			t.Errorf("err = %v; want the check skipped", err)
		}
		if logs := h.logs.String(); !strings.Contains(logs, "cannot check that the bot is in the review channel") || !strings.Contains(logs, "channels:read") {
			t.Errorf("skipped check not logged:\n%s", logs)
		}
	})
	t.Run("approver groups", func(t *testing.T) {
		err, _ := check(t, func(o *Options) { o.Slack.ApproverGroups = []string{"S0OPS", "S0NOPE"} }, nil)
		if err == nil || !strings.Contains(err.Error(), "S0NOPE") || !strings.Contains(err.Error(), "no_such_subteam") {
			t.Errorf("unknown group: err = %v", err)
		}
		err, _ = check(t, nil, func(f *slackfake.Server) { f.RevokeScope("usergroups:read") })
		if err == nil || !strings.Contains(err.Error(), "missing_scope") || !strings.Contains(err.Error(), "see docs/review.md") {
			t.Errorf("no usergroups:read: err = %v", err)
		}
	})
	t.Run("without slack", func(t *testing.T) {
		h := newHarness(t, false, nil)
		if err := h.svc.CheckSlack(t.Context()); err != nil {
			t.Errorf("err = %v", err)
		}
	})
}
