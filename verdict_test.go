package toolgate

import "testing"

// TestReviewChannels: the people's channels are review channels; the
// channels that record no person's answer are not, so a review policy
// (approvals, channel limits, self-approval) never counts them.
func TestReviewChannels(t *testing.T) {
	for _, ch := range []string{ChannelSlack, ChannelCLI, ChannelElicitation, ChannelWeb} {
		if !IsReviewChannel(ch) {
			t.Errorf("%q is not a review channel", ch)
		}
	}
	for _, ch := range []string{ChannelTimeout, ChannelCancelled, ChannelExpired, ChannelPending, ChannelGrant, "", "auto", "Slack"} {
		if IsReviewChannel(ch) {
			t.Errorf("%q is a review channel", ch)
		}
	}
}
