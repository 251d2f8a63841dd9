package toolgate

import (
	"context"
	"errors"
	"time"
)

// Review channels: the ways a person answers a review. They are what a
// config's review.channels and a rule's review_channels list, and what a
// person's Verdict.Channel records.
const (
	ChannelSlack       = "slack"
	ChannelCLI         = "cli"
	ChannelElicitation = "elicitation"
	// ChannelWeb is a signed-in reviewer's answer on the web UI.
	ChannelWeb = "web"
)

// ReviewChannels names the review channels for people, as a config or
// rule error lists them.
const ReviewChannels = "slack, cli, elicitation or web"

// IsReviewChannel reports whether ch is a way a person answers a review
// (one of the Channel constants above): the channels a review policy
// applies to.
func IsReviewChannel(ch string) bool {
	switch ch {
	case ChannelSlack, ChannelCLI, ChannelElicitation, ChannelWeb:
		return true
	}
	return false
}

// Verdict channels that are no person's answer.
const (
	// ChannelTimeout marks a review nobody answered in time.
	ChannelTimeout = "timeout"
	// ChannelCancelled marks a review whose call went away (the agent
	// disconnected or cancelled the request) before anyone answered.
	ChannelCancelled = "cancelled"
	// ChannelExpired marks a review left pending by a previous process.
	ChannelExpired = "expired"
	// ChannelPending marks the verdict a review returns with ErrHeld.
	ChannelPending = "pending"
	// ChannelGrant is the verdict channel of a call that ran on a grant:
	// an earlier approval bound to the same call.
	ChannelGrant = "grant"
	// ChannelLimit marks a review never asked: its session already had as
	// many reviews waiting as it may (review.max_pending).
	ChannelLimit = "limit"
)

// ErrHeld is returned by a review when the time a call waits passed
// without a verdict: the review goes on, the call does not wait for it.
// The Verdict returned with it says where the review waits (Channel
// ChannelPending).
var ErrHeld = errors.New("the review is still pending")

// Errors a review store returns when a person's answer does not end the
// review under its rule's policy (ReviewPolicy); the review goes on, and
// the answerer is told why.
var (
	// ErrChannelRefused: the rule does not accept answers from this channel.
	ErrChannelRefused = errors.New("answer refused")
	// ErrSameApprover: this approver already approved; another must.
	ErrSameApprover = errors.New("approval not counted")
	// ErrMoreApprovals: the approval was counted; more approvers are needed.
	ErrMoreApprovals = errors.New("approval counted")
	// ErrSelfApproval: the approver made the call under review (or cannot
	// be told apart from who did); the refusal is recorded, and the
	// review waits for someone else.
	ErrSelfApproval = errors.New("self-approval refused")
	// ErrArgsNotShown: the approval came through a channel that shows
	// reviewers the call as stored, and its arguments are not stored
	// (only their hash), so the approver cannot have seen them.
	ErrArgsNotShown = errors.New("approval refused")
)

// ErrTakenOver is returned when recording an approval finds that the
// call's review was taken over by another toolgate process (sharing the
// audit log) while the one holding the call was stalled: that process
// ends the review, and an approval becomes a grant for the agent's retry.
// The holder must not run the call.
var ErrTakenOver = errors.New("the review was taken over by another toolgate process")

// Verdict is a human's (or an auto-approval's) answer to a review.
type Verdict struct {
	// Approved is true only on an explicit approval.
	Approved bool `json:"approved"`
	// Reviewer identifies who decided: a Slack user ID, "cli:" and an OS
	// account, "web:" and a signed-in user, "elicitation:" and the call's
	// principal user (or "elicitation:session:" and its session).
	Reviewer string `json:"reviewer,omitempty"`
	// Channel is how the answer came: a review channel, or one of the
	// verdict channels that are no person's answer ("timeout", "grant"...).
	Channel string `json:"channel"`
	// Reason is the reviewer's reason (deny) or why the review ended (timeout, error).
	Reason string `json:"reason,omitempty"`
	// DecidedAt is when the answer was given.
	DecidedAt time.Time `json:"decided_at"`
	// ReviewerUser is the reviewer as a principal user (Principal.User),
	// "" when the channel cannot tell: the OS account on the CLI, the
	// mapped user of a Slack user (SlackOptions.Users), the call's own
	// principal for elicitation (the agent's user answers). The store
	// refuses an approval of a call whose principal is the reviewer's.
	ReviewerUser string `json:"-"`
}

// Pending is a call waiting for a human, as stored durably in the audit log.
type Pending struct {
	Call        Call      `json:"call"`
	Decision    Decision  `json:"decision"`
	RequestedAt time.Time `json:"requested_at"`
	// SlackChannel and SlackTS locate the Slack message for this review, if
	// one was posted, so it can be updated after a restart.
	SlackChannel string `json:"slack_channel,omitempty"`
	SlackTS      string `json:"slack_ts,omitempty"`
	// ArgsNotStored is true when the log keeps only the hash of the call's
	// arguments and _meta (audit store_args: hash): Call has none to show,
	// and channels that show the stored call cannot approve it.
	ArgsNotStored bool `json:"args_not_stored,omitempty"`
}

// SessionGrant is the longest approval for the session p's rule allows,
// by the rules in force: p's call is decided again with decide, and the
// decision's session_grant counts only when it comes from the same rule
// of the same rules version, still asking for review. A reload that drops
// the rule's session_grant, or has another rule decide the call, allows
// none, whatever p's decision said when the review was asked. Without
// decide (no live rules), p's decision is all there is: a stored review
// does not keep its session_grant, so it allows none; the process that
// asked holds it. What a reviewer may grant comes from the rules, never
// from the request that asks for the grant.
func (p Pending) SessionGrant(ctx context.Context, decide func(context.Context, Call) Decision) time.Duration {
	if decide == nil {
		return p.Decision.SessionGrant
	}
	d := decide(ctx, p.Call)
	if d.Version != p.Decision.Version || d.Rule != p.Decision.Rule || d.Action != Review {
		return 0
	}
	return d.SessionGrant
}
