package review_test

import (
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"

	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
)

// A Slack user mapped to the caller's principal cannot approve the call;
// an unmapped one cannot either (toolgate cannot tell them from the
// caller); another mapped approver can. Every refusal is chained.
func TestSlackSelfApprovalRefused(t *testing.T) {
	const bob, stranger = "U0BOB", "U0STRANGER"
	g, st, fs, fw := gateHarness(t, func(o *review.SlackOptions) {
		o.Approvers = append(o.Approvers, bob, stranger)
		o.Users = map[string]string{testApprover: "alice", bob: "bob"}
	})
	c, _ := reviewCall("01SELF")
	c.Principal = toolgate.Principal{User: "alice", Groups: []string{"dev"}, Auth: toolgate.AuthToken}
	done := make(chan toolgate.Result, 1)
	go func() { done <- g.Handle(t.Context(), c) }()

	post := fs.WaitPosts(1)
	if text := slackfake.Readable(post); !strings.Contains(text, "*Requested by:*\nalice (token; groups dev)") {
		t.Errorf("the message does not say who asks:\n%s", text)
	}
	fs.Click(click(review.ActionApprove, c.ID, "")) // alice herself
	if e := fs.WaitEphemerals(1); !slackfake.ContainsText(e, "alice made this call and cannot approve it") {
		t.Errorf("alice was told %v", e)
	}
	a := click(review.ActionApprove, c.ID, "")
	a.User = stranger
	fs.Click(a)
	if e := fs.WaitEphemerals(2); !slackfake.ContainsText(e, "cannot tell whether") {
		t.Errorf("the unmapped approver was told %v", e)
	}
	select {
	case res := <-done:
		t.Fatalf("the call ended on a refused approval: %+v", res)
	case <-time.After(100 * time.Millisecond):
	}
	if fw.n.Load() != 0 {
		t.Fatal("forwarded on a self-approval")
	}
	a.User = bob
	fs.Click(a)
	select {
	case res := <-done:
		if res.IsError || fw.n.Load() != 1 {
			t.Fatalf("after bob's approval: %+v, forwarded %d", res, fw.n.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bob's approval did not release the call")
	}
	if err := st.Flush(t.Context()); err != nil { // the outcome is written behind
		t.Fatal(err)
	}
	rec, err := st.Get(t.Context(), c.ID)
	if err != nil || rec.Review == nil || rec.Review.Reviewer != bob || rec.Principal.User != "alice" {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if rep, err := st.Verify(t.Context()); err != nil || !rep.OK() || rep.Events < 5 {
		t.Fatalf("verify: %+v %v (want the decision, two refusals, the verdict, ...)", rep, err)
	}
}
