package review

import (
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review/slackfake"
)

// The _meta that goes upstream with a call is shown with its arguments,
// redacted and made visible, in the Slack message, its full-arguments
// thread and the elicitation question; a call without _meta shows none.
func TestReviewShowsMeta(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, d := testCall("01META")
	c.Meta = map[string]any{
		"dry_run":    false,
		"auth":       "Bearer " + fakeSecret,
		"note\u202e": "gpt\u2066x",
		"<!channel>": "```\n*Rule:* none",
	}
	plain, _ := testCall("01PLAIN")
	h.store.add(c, d)
	h.store.add(plain, d)
	res := make(chan result, 2)
	review := func(c toolgate.Call) {
		go func() { v, err := h.svc.Review(t.Context(), c, d); res <- result{v, err} }()
	}
	review(c)
	post := h.waitPosted(1)
	text := slackfake.Readable(post)
	for _, want := range []string{"*`_meta`* (sent to the tool's server with the arguments):", `"dry_run": false`,
		`"auth": "[REDACTED 47 chars — contains spaces — not shown]"`, `"note\u202e": "gpt\u2066x"`, `"&lt;!channel&gt;"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the message lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{fakeSecret, "\u202e", "\u2066", "<!channel>", "\n*Rule:* none"} {
		if strings.Contains(post.Get("blocks")+post.Get("text"), bad) {
			t.Errorf("the message holds %q:\n%s", bad, text)
		}
	}

	ts := h.messageTS(c.ID)
	h.slack.Click(slackfake.Action{User: approver, ActionID: ActionViewArgs, Value: c.ID, MessageTS: ts})
	reply := h.slack.WaitReplies(ts, 1)
	full := slackfake.Readable(reply)
	for _, want := range []string{"_meta (sent to the tool's server with the arguments):", `"dry_run": false`, `"auth": "[REDACTED 47 chars — contains spaces — not shown]"`, `"note\u202e"`} {
		if !strings.Contains(full, want) {
			t.Errorf("the full arguments lack %q:\n%s", want, full)
		}
	}
	for _, bad := range []string{fakeSecret, "\u202e", "\u2066", "<!channel>"} {
		if strings.Contains(reply.Get("blocks"), bad) {
			t.Errorf("the full arguments hold %q:\n%s", bad, full)
		}
	}

	q := h.svc.elicitMessage(c, d, time.Unix(1700000000, 0))
	for _, want := range []string{"\n_meta (sent to the tool's server with the arguments):\n", `"dry_run": false`, `"auth": "[REDACTED 47 chars — contains spaces — not shown]"`, `"note\u202e": "gpt\u2066x"`} {
		if !strings.Contains(q, want) {
			t.Errorf("the elicitation question lacks %q:\n%s", want, q)
		}
	}
	for _, bad := range []string{fakeSecret, "\u202e", "\u2066", "\n*Rule:* none"} {
		if strings.Contains(q, bad) {
			t.Errorf("the elicitation question holds %q:\n%s", bad, q)
		}
	}

	if q := h.svc.elicitMessage(plain, d, time.Unix(1700000000, 0)); strings.Contains(q, "_meta") {
		t.Errorf("the question for a call without _meta mentions it:\n%s", q)
	}
	review(plain)
	if text := slackfake.Readable(h.waitPosted(3)); !strings.Contains(text, "01PLAIN") || strings.Contains(text, "_meta") {
		t.Errorf("the message for a call without _meta mentions it:\n%s", text)
	}
	for _, id := range []string{c.ID, plain.ID} {
		h.slack.Click(click(approver, ActionDeny, id, "test over"))
		await(t, res)
	}
}
