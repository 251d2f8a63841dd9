package review

import (
	"context"
	"time"

	"github.com/toolgate/toolgate"
)

// Store is where reviews live durably. The audit package's *audit.Store
// implements it; the gate's Recorder.Begin creates the pending entry (a call
// whose decision is review) before any channel is asked.
// PendingCounter is a Store that counts a person's reviews waiting in
// every process sharing it; *audit.Store is one. With it, MaxPending
// holds for a person whose sessions spread over several replicas.
type PendingCounter interface {
	// PendingOf counts the reviews of user's calls waiting, the one being
	// asked included once its call is recorded.
	PendingOf(ctx context.Context, user string) (int, error)
}

type Store interface {
	// PendingReviews lists calls still waiting for a verdict, oldest first.
	PendingReviews(ctx context.Context) ([]toolgate.Pending, error)
	// SubmitVerdict stores v for call id if, and only if, the call is still
	// pending with no verdict: the first answer wins, from any channel or
	// process. ok is false when the review was already answered or expired.
	SubmitVerdict(ctx context.Context, id string, v toolgate.Verdict) (ok bool, err error)
	// ReviewVerdict returns the stored verdict for id; decided is false while
	// it is pending.
	ReviewVerdict(ctx context.Context, id string) (v toolgate.Verdict, decided bool, err error)
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
	Resolve(ctx context.Context, id string, v toolgate.Verdict) error
	// ExpireOrphanReviews marks every still-pending review as expired (a
	// verdict with Channel "expired", not approved) and returns them, so the
	// caller can update their Slack messages. Called at start-up, when no
	// call from a previous process can still be waiting.
	ExpireOrphanReviews(ctx context.Context, now time.Time) ([]toolgate.Pending, error)
}
