package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// Slack trouble through the built binary: a rate-limited post, and the
// Socket Mode connection going away and coming back. The fake answers as
// Slack does (429 with Retry-After, 503, a websocket cut without a close
// frame).
func TestServeSlackTrouble(t *testing.T) {
	fs := slackfake.New(t)
	cfg, db := rvConfig(t, fs, "  timeout: 60s\n  channels: [slack, cli]\n")
	c, n, stderr := startStdio(t, cfg, rvSlackEnv...)
	fs.WaitConnected()

	t.Run("rate limited post", func(t *testing.T) {
		fs.Fail("chat.postMessage", 1, slackfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1})
		call := rvStart(c, t.Context(), "after a 429", "")
		id := rvPostedID(t, fs.WaitPosts(1))
		if got := fs.Calls("chat.postMessage"); got != 2 {
			t.Errorf("%d chat.postMessage calls, want 2 (the 429, then the post)", got)
		}
		fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
		if res := call.wait(t); res.IsError || resultText(res) != "after a 429" {
			t.Fatalf("call: isError=%v %q; want the upstream's echo", res.IsError, resultText(res))
		}
	})

	t.Run("socket mode down", func(t *testing.T) {
		fs.Fail("apps.connections.open", -1, slackfake.Fault{Status: http.StatusServiceUnavailable})
		fs.DropConnections()
		toolgatetest.EventuallyWithin(t, "toolgate to see the connection lost", 20*time.Second, func() bool {
			return strings.Contains(stderr.String(), "connection lost")
		})
		call := rvStart(c, t.Context(), "while slack is down", "rv-down")
		ids := rvWaitPending(t, db, 1)
		toolgatetest.EventuallyWithin(t, "the review asking via cli", 20*time.Second, func() bool {
			return strings.Contains(stderr.String(), "Slack is unreachable, asking via cli")
		})
		// The first progress notification is sent as the review starts;
		// it reaches the client on its own schedule.
		toolgatetest.EventuallyWithin(t, "a progress notification", 20*time.Second, func() bool { return len(progressMessages(n, "rv-down")) > 0 })
		if msgs := progressMessages(n, "rv-down"); !strings.Contains(msgs[0], "Slack is unreachable") {
			t.Errorf("progress messages %q; want the first to say Slack is unreachable", msgs)
		}
		if got := len(fs.Posts()); got != 1 {
			t.Errorf("%d messages posted while clicks could not arrive, want none after the first", got-1)
		}
		rvCLI(t, nil, "review", "approve", ids[0], "--db", db)
		if res := call.wait(t); res.IsError || resultText(res) != "while slack is down" {
			t.Fatalf("call approved from the terminal: isError=%v %q", res.IsError, resultText(res))
		}

		fs.Fail("apps.connections.open", 0, slackfake.Fault{})
		fs.WaitConnected()
		toolgatetest.EventuallyWithin(t, "toolgate to see the connection back", 20*time.Second, func() bool {
			return strings.Contains(stderr.String(), "connected again")
		})
		call = rvStart(c, t.Context(), "slack is back", "")
		id := rvPostedID(t, fs.WaitPosts(2))
		fs.Click(rvClick(rvApprover, review.ActionApprove, id, ""))
		if res := call.wait(t); res.IsError || resultText(res) != "slack is back" {
			t.Fatalf("call approved in Slack: isError=%v %q", res.IsError, resultText(res))
		}
	})
}

// progressMessages returns the messages of the progress notifications with
// token, in order.
func progressMessages(n *notes, token string) []string {
	var out []string
	for _, v := range n.progressField(token, "message") {
		m, _ := v.(string)
		out = append(out, m)
	}
	return out
}
