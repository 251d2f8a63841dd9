package review_test

import (
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"

	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/review/slackfake"
	"github.com/toolgate/toolgate/toolgatetest"
)

// The reason given in the Deny form reaches the agent and the audit log,
// through the gate and a real audit DB.
func TestGateSlackDenialThroughForm(t *testing.T) {
	g, st, fs, fw := gateHarness(t)
	c, _ := reviewCall("01E2EFORM")
	done := make(chan toolgate.Result, 1)
	go func() { done <- g.Handle(t.Context(), c) }()
	fs.WaitPosts(1)
	fs.Click(slackfake.Action{User: testApprover, ActionID: review.ActionDeny, Value: c.ID})
	if v := fs.WaitViews(1); v.Title() != "Deny fs__delete" || strings.Contains(v.PrivateMetadata(), "abc123secret") {
		t.Errorf("form: title %q, private_metadata %q", v.Title(), v.PrivateMetadata())
	}
	fs.Submit(slackfake.Submission{User: testApprover,
		Inputs: map[string]map[string]string{review.BlockDenyReason: {review.ActionDenyReason: "use the archive instead"}}})
	var res toolgate.Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("call still blocked after the denial")
	}
	if !res.IsError || fw.n.Load() != 0 {
		t.Fatalf("result %+v, forwarded %d", res, fw.n.Load())
	}
	if text := toolgatetest.Text(res); !strings.Contains(text, "use the archive instead") || !strings.Contains(text, testApprover) {
		t.Errorf("the agent reads %q", text)
	}
	rec, err := st.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != toolgate.StatusRefused || rec.Review == nil || rec.Review.Reason != "use the archive instead" ||
		rec.Review.Reviewer != testApprover || rec.Review.Channel != toolgate.ChannelSlack {
		t.Errorf("record: status %s, review %+v", rec.Status, rec.Review)
	}
}
