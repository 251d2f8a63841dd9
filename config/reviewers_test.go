package config

import (
	"github.com/toolgate/toolgate"
	"testing"
)

func TestHTTPReviewers(t *testing.T) {
	c, err := Parse("c.yaml", []byte("http:\n  tokens: true\n  reviewers: [rita, \"group:oncall\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.HTTP.Reviewers; len(got) != 2 || got[0] != "rita" || got[1] != "group:oncall" {
		t.Errorf("http.reviewers: %q", got)
	}
	if _, err := Parse("c.yaml", []byte("review:\n  channels: [web, pager]\n")); err == nil {
		t.Error("an unknown review channel was accepted")
	}
	if c, err := Parse("c.yaml", []byte("review:\n  channels: [web]\n")); err != nil || c.Review.Channels[0] != toolgate.ChannelWeb {
		t.Errorf("review.channels [web]: %v", err)
	}
}
