package review

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// Deny asks for its reason in a form (a modal).

// denyClick is user pressing Deny on callID's review message as posted
// now: no reason input on it, so no input state.
func denyClick(user, callID string) slackfake.Action {
	return slackfake.Action{User: user, ActionID: ActionDeny, Value: callID, BlockID: blockActionsPrefix + callID}
}

// denyForm is user submitting the last Deny form opened with reason.
func denyForm(user, reason string) slackfake.Submission {
	return slackfake.Submission{User: user, Inputs: map[string]map[string]string{BlockDenyReason: {ActionDenyReason: reason}}}
}

// refusals collects OnRefusedClick's calls as "why id user".
type refusals struct {
	mu  sync.Mutex
	got []string
}

func (r *refusals) hook(id, user, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, why+" "+id+" "+user)
}

func (r *refusals) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func TestDenyThroughForm(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, res := h.review(t.Context(), "01FORM")
	post := h.waitPosted(1)
	if bs := blocksOf(t, post); hasBlockType(bs, "input") {
		t.Errorf("the review message still has a reason input: %s", post.Get("blocks"))
	}
	ts := h.messageTS(c.ID)
	a := denyClick(approver, c.ID)
	a.MessageTS = ts
	h.slack.Click(a)

	view := h.slack.WaitViews(1)
	if view.TriggerID != "123.456" || view.Title() != "Deny shell__exec" || view.CallbackID() != ViewDeny {
		t.Errorf("opened view: trigger %q, title %q, callback %q", view.TriggerID, view.Title(), view.CallbackID())
	}
	var meta map[string]string
	if err := json.Unmarshal([]byte(view.PrivateMetadata()), &meta); err != nil ||
		meta["call_id"] != c.ID || meta["channel"] != slackfake.ChannelID || meta["message_ts"] != ts {
		t.Errorf("private_metadata = %q (%v)", view.PrivateMetadata(), err)
	}
	raw, _ := json.Marshal(view.View)
	for _, want := range []string{`"block_id":"` + BlockDenyReason + `"`, `"action_id":"` + ActionDenyReason + `"`,
		`"multiline":true`, `"type":"input"`, `"submit":{`, "01FORM"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the form lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(string(raw), `"optional":true`) || strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), fakeSecret) {
		t.Errorf("the form's reason is optional, or the form leaks arguments: %s", raw)
	}
	if v, ok := h.store.verdict(c.ID); ok {
		t.Fatalf("opening the form decided the review: %+v", v)
	}

	h.slack.Submit(denyForm(approver, "  use the staging cluster;\nprod is frozen  "))
	r := await(t, res)
	if r.err != nil || r.v.Approved || r.v.Reviewer != approver || r.v.Channel != toolgate.ChannelSlack ||
		r.v.Reason != "use the staging cluster;\nprod is frozen" {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	up := h.slack.WaitUpdates(1)
	if !slackfake.ContainsText(up, "Denied") || !slackfake.ContainsText(up, "use the staging cluster") {
		t.Errorf("update: %s", slackfake.Readable(up))
	}
	if n := len(h.slack.Ephemerals()); n != 0 {
		t.Errorf("%d ephemeral replies to a denial that counted", n)
	}

	// The form of a review that ended meanwhile changes nothing, and says so.
	h.slack.Submit(denyForm(approver, "again"))
	if eph := h.slack.WaitEphemerals(1); eph.Get("user") != approver || eph.Get("channel") != slackfake.ChannelID ||
		!strings.Contains(eph.Get("text"), "already closed: denied by <@"+approver+">") {
		t.Errorf("late submission reply = %v", eph)
	}
	// And Deny on it opens no form: it is answered as a late click.
	h.slack.Click(a)
	if eph := h.slack.WaitEphemerals(2); !strings.Contains(eph.Get("text"), "already closed") {
		t.Errorf("late Deny reply = %q", eph.Get("text"))
	}
	if n := h.slack.Calls("views.open"); n != 1 {
		t.Errorf("%d views.open calls, want 1", n)
	}
	if v, _ := h.store.verdict(c.ID); v.Reason != "use the staging cluster;\nprod is frozen" {
		t.Errorf("verdict changed to %+v", v)
	}
}

func TestDenyFormViaHTTP(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.Slack.Mode = SlackModeHTTP; o.Slack.AppToken = "" })
	c, res := h.review(t.Context(), "01FORMHTTP")
	h.waitPosted(1)
	if rec := h.postInteraction(denyClick(approver, c.ID).Payload(), time.Now()); rec.Code != http.StatusOK {
		t.Fatalf("click: status %d: %s", rec.Code, rec.Body)
	}
	h.slack.WaitViews(1)
	rec := h.postInteraction(h.slack.SubmissionPayload(denyForm(approver, "not on a Friday")), time.Now())
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("submission: status %d, body %q; want an empty 200 (closes the form)", rec.Code, rec.Body)
	}
	r := await(t, res)
	if r.err != nil || r.v.Approved || r.v.Reviewer != approver || r.v.Reason != "not on a Friday" {
		t.Fatalf("Review = %+v, %v", r.v, r.err)
	}
	// A submission with a forged signature is refused like a forged click.
	if rec := h.postSigned(h.slack.SubmissionPayload(denyForm(approver, "x")), time.Now(), "forged"); rec.Code != http.StatusUnauthorized {
		t.Errorf("forged submission: status %d", rec.Code)
	}
}

func TestDenyFormFromNonApproverRefused(t *testing.T) {
	var rf refusals
	h := newHarness(t, true, func(o *Options) { o.Slack.OnRefusedClick = rf.hook })
	h.run()
	c, res := h.review(t.Context(), "01FORMSTRANGER")
	h.waitPosted(1)

	// A stranger's Deny opens no form.
	h.slack.Click(denyClick(stranger, c.ID))
	if eph := h.slack.WaitEphemerals(1); !strings.Contains(eph.Get("text"), "not on toolgate's approver list") {
		t.Errorf("reply = %q", eph.Get("text"))
	}
	if n := h.slack.Calls("views.open"); n != 0 {
		t.Errorf("a stranger's Deny opened a form")
	}
	// A stranger's submission of an approver's form (or one who left the
	// approver group since) is refused.
	h.slack.Click(denyClick(approver, c.ID))
	h.slack.WaitViews(1)
	h.slack.Submit(denyForm(stranger, "let me in"))
	eph := h.slack.WaitEphemerals(2)
	if eph.Get("user") != stranger || eph.Get("channel") != slackfake.ChannelID || !strings.Contains(eph.Get("text"), "not on toolgate's approver list") {
		t.Errorf("reply = %v", eph)
	}
	if v, ok := h.store.verdict(c.ID); ok {
		t.Fatalf("a stranger's submission stored %+v", v)
	}
	want := []string{RefusedNotApprover + " " + c.ID + " " + stranger, RefusedNotApprover + " " + c.ID + " " + stranger}
	if got := rf.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("refusals = %q, want %q", got, want)
	}
	// A group member's submission counts.
	h.slack.Submit(denyForm("U0GROUPIE", "no"))
	if r := await(t, res); r.v.Approved || r.v.Reviewer != "U0GROUPIE" || r.v.Reason != "no" {
		t.Fatalf("Review = %+v", r.v)
	}
}

// Messages posted before the form carry a reason input; Deny on them still
// denies at once, with what was typed: Slack sends the input's state with
// every click, empty or not, and the message with its blocks.
func TestDenyOnOldMessageUsesInlineReason(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	oldBlocks := func(id string) map[string]any {
		return map[string]any{"type": "message", "ts": slackfake.FirstTS, "blocks": []any{
			map[string]any{"type": "input", "block_id": BlockReason, "optional": true,
				"label":   map[string]any{"type": "plain_text", "text": "Reason"},
				"element": map[string]any{"type": "plain_text_input", "action_id": ActionReason}},
			map[string]any{"type": "actions", "block_id": blockActionsPrefix + id, "elements": []any{}},
		}}
	}
	for i, tc := range []struct {
		payload func(id string) map[string]any
		want    string
	}{
		{func(id string) map[string]any {
			return clickPayload(approver, ActionDeny, id, " typed in the message ")
		}, "typed in the message"},
		{func(id string) map[string]any { return clickPayload(approver, ActionDeny, id, "") }, ""},
		{func(id string) map[string]any { // only the message's blocks show the input
			p := denyClick(approver, id).Payload()
			p["message"] = oldBlocks(id)
			return p
		}, ""},
	} {
		c, res := h.review(t.Context(), fmt.Sprintf("01OLDMSG%d", i))
		h.waitPosted(i + 1)
		h.slack.Send(tc.payload(c.ID))
		if r := await(t, res); r.v.Approved || r.v.Reviewer != approver || r.v.Reason != tc.want {
			t.Errorf("case %d: Review = %+v, want denied by %s with reason %q", i, r.v, approver, tc.want)
		}
	}
	if n := h.slack.Calls("views.open"); n != 0 {
		t.Errorf("%d views.open calls for old messages, want 0", n)
	}
}

// When the form cannot be opened, Deny denies at once without a reason
// and says so.
func TestDenyFormOpenFailsFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault slackfake.Fault
		want  string
	}{
		{"expired trigger", slackfake.Fault{Error: "expired_trigger_id"}, "expired_trigger_id"},
		// The last attempt ends with a 503, or with the budget under load.
		{"slack down past the retries", slackfake.Fault{Status: http.StatusServiceUnavailable}, "views.open: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true, func(o *Options) { o.Slack.APITimeout = 300 * time.Millisecond })
			fastRetries(h)
			h.run()
			h.slack.Fail("views.open", -1, tc.fault)
			c, res := h.review(t.Context(), "01FORMFAIL")
			h.waitPosted(1)
			h.slack.Click(denyClick(approver, c.ID))
			r := await(t, res)
			if r.err != nil || r.v.Approved || r.v.Reviewer != approver || r.v.Channel != toolgate.ChannelSlack || r.v.Reason != "" {
				t.Fatalf("Review = %+v, %v", r.v, r.err)
			}
			eph := h.slack.WaitEphemerals(1)
			if txt := eph.Get("text"); eph.Get("user") != approver || !strings.Contains(txt, "Denied, without a reason") || !strings.Contains(txt, tc.want) {
				t.Errorf("reply = %q", txt)
			}
			if tc.fault.Status != 0 && h.slack.Calls("views.open") < 2 {
				t.Errorf("views.open not retried")
			}
			if len(h.slack.Views()) != 0 {
				t.Errorf("views recorded although views.open failed")
			}
		})
	}
}

// Submissions whose private_metadata is not the form's, and other views,
// change nothing.
func TestDenyFormBadSubmissionsIgnored(t *testing.T) {
	h := newHarness(t, true, nil)
	h.run()
	c, res := h.review(t.Context(), "01FORMBAD")
	h.waitPosted(1)
	h.slack.Click(denyClick(approver, c.ID))
	h.slack.WaitViews(1)
	for _, pm := range []string{"", "{}", "not json", `{"call_id":"01FORMBAD","extra":1}`, `{"call_id":"01FORMBAD"} {}`,
		`{"call_id":"01 FORMBAD"}`, `{"call_id":"01FORMBAD","channel":"<!channel>"}`, `{"call_id":"01FORMBAD","message_ts":"x"}`,
		`{"call_id":"` + strings.Repeat("x", 3000) + `"}`} {
		h.slack.Submit(slackfake.Submission{User: approver, PrivateMetadata: &pm,
			Inputs: map[string]map[string]string{BlockDenyReason: {ActionDenyReason: "forged"}}})
	}
	p := h.slack.SubmissionPayload(denyForm(approver, "other view"))
	p["view"].(map[string]any)["callback_id"] = "someone_else"
	h.slack.Send(p)
	// Socket Mode acknowledges before handling: wait for the handling.
	toolgatetest.Eventually(t, "9 bad submissions logged", func() bool { return strings.Count(h.logs.String(), "deny form submission ignored") == 9 })
	if v, ok := h.store.verdict(c.ID); ok {
		t.Fatalf("a bad submission stored %+v", v)
	}
	if n := len(h.slack.Ephemerals()); n != 0 {
		t.Errorf("%d replies to bad submissions", n)
	}
	// The real one still counts (so no forged one did: the first answer
	// wins).
	h.slack.Submit(denyForm(approver, "real"))
	if r := await(t, res); r.v.Approved || r.v.Reason != "real" {
		t.Fatalf("Review = %+v", r.v)
	}
}

func TestDenyFormShape(t *testing.T) {
	h := newHarness(t, true, nil)
	c, _ := testCall("01SHAPEFORM")
	c.Name = "github__create_pull_request_review_comment"
	v := h.svc.slack.denyForm(c, `{"call_id":"01SHAPEFORM"}`)
	if n := len([]rune(v.Title.Text)); n > modalTitleMax || !strings.HasPrefix(v.Title.Text, "Deny github__") || !strings.HasSuffix(v.Title.Text, "…") {
		t.Errorf("title %q (%d characters)", v.Title.Text, n)
	}
	if v.Submit.Text != "Deny" || v.Close.Text != "Cancel" || v.CallbackID != ViewDeny {
		t.Errorf("form = %+v", v)
	}
	if got := h.svc.slack.denyForm(toolgate.Call{ID: "01X"}, "{}").Title.Text; got != "Deny tool call" {
		t.Errorf("title without a known call = %q", got)
	}
}

func TestParseDenyMeta(t *testing.T) {
	m, err := parseDenyMeta(`{"call_id":"01J9ZK3","channel":"C0REVIEW","message_ts":"1700000000.000001"}`)
	if err != nil || m != (denyMeta{ID: "01J9ZK3", Channel: "C0REVIEW", TS: "1700000000.000001"}) {
		t.Errorf("parseDenyMeta = %+v, %v", m, err)
	}
	if m, err := parseDenyMeta(`{"call_id":"01J9ZK3"}`); err != nil || m.ID != "01J9ZK3" {
		t.Errorf("without a message: %+v, %v", m, err)
	}
	for _, bad := range []string{"", "null", "[]", `{"call_id":""}`, `{"call_id":"a\u0000b"}`, `{"call_id":"a\nb"}`,
		`{"call_id":1}`, `{"call_id":"a","channel":"c0review"}`, `{"call_id":"a","message_ts":"1.2.3"}`} {
		if _, err := parseDenyMeta(bad); err == nil {
			t.Errorf("parseDenyMeta(%q) accepted", bad)
		}
	}
}

// Two instances on one store and one Slack app: the form opened by the
// instance that got the click may be submitted to the other one, which
// records it from what the form carries; the first sees the verdict.
func TestDenyFormSubmittedToAnotherInstance(t *testing.T) {
	a := newHarness(t, true, nil)
	a.run()
	svcB, err := New(a.svc.o)
	if err != nil {
		t.Fatal(err)
	}
	b := &harness{t: t, logs: a.logs, store: a.store, slack: a.slack, svc: svcB}
	b.run()
	toolgatetest.Eventually(t, "two Socket Mode connections", func() bool { return len(a.slack.ConnectionIDs()) == 2 })
	conns := a.slack.ConnectionIDs() // a connected first

	c, res := a.review(t.Context(), "01FORMTWO")
	a.waitPosted(1)
	a.slack.ClickVia(conns[0], denyClick(approver, c.ID))
	a.slack.WaitViews(1)
	a.slack.SubmitVia(conns[1], denyForm(approver, "the other instance took it"))
	if r := await(t, res); r.v.Approved || r.v.Reviewer != approver || r.v.Reason != "the other instance took it" {
		t.Fatalf("Review = %+v", r.v)
	}
}
