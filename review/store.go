package review

import (
	"context"
	"errors"
	"time"

	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
)

// Pending is a call waiting for a human, as stored durably in the audit DB.
type Pending struct {
	Call        tools.Call     `json:"call"`
	Decision    rules.Decision `json:"decision"`
	RequestedAt time.Time      `json:"requested_at"`
	// SlackChannel and SlackTS locate the Slack message for this review, if
	// one was posted, so it can be updated after a restart.
	SlackChannel string `json:"slack_channel,omitempty"`
	SlackTS      string `json:"slack_ts,omitempty"`
}

// Errors a Store's SubmitVerdict returns when a person's answer does not end
// the review under its rule's policy (rules.ReviewPolicy); the review goes
// on, and the answerer is told why.
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
)

// Store is where reviews live durably. The audit package's *audit.Store
// implements it; the gate's Recorder.Begin creates the pending entry (a call
// whose decision is review) before any channel is asked.
type Store interface {
	// PendingReviews lists calls still waiting for a verdict, oldest first.
	PendingReviews(ctx context.Context) ([]Pending, error)
	// SubmitVerdict stores v for call id if, and only if, the call is still
	// pending with no verdict: the first answer wins, from any channel or
	// process. ok is false when the review was already answered or expired.
	SubmitVerdict(ctx context.Context, id string, v Verdict) (ok bool, err error)
	// ReviewVerdict returns the stored verdict for id; decided is false while
	// it is pending.
	ReviewVerdict(ctx context.Context, id string) (v Verdict, decided bool, err error)
	// SetReviewMessage remembers where the review's Slack message is.
	SetReviewMessage(ctx context.Context, id, channel, ts string) error
	// GrantReview turns the stored approval of call id, whose agent
	// stopped waiting for it (see Options.Hold), into a grant of scope
	// ("once") valid for ttl that a retry of the same call uses; it
	// returns the grant's id.
	GrantReview(ctx context.Context, id, scope string, ttl time.Duration) (grantID string, err error)
	// GrantSession issues a session grant from call id's stored approval:
	// later calls of the same tool in the same session run without review
	// until ttl has passed. It returns the grant's id.
	GrantSession(ctx context.Context, id string, ttl time.Duration) (grantID string, err error)
	// Resolve finalizes call id's review with v when no gate waits for it
	// any more (a held review that was denied or timed out).
	Resolve(ctx context.Context, id string, v Verdict) error
	// ExpireOrphanReviews marks every still-pending review as expired (a
	// verdict with Channel "expired", not approved) and returns them, so the
	// caller can update their Slack messages. Called at start-up, when no
	// call from a previous process can still be waiting.
	ExpireOrphanReviews(ctx context.Context, now time.Time) ([]Pending, error)
}
