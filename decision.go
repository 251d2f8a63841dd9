package toolgate

import "time"

// Action is what a decision tells the gate to do with a call.
type Action string

// The three actions. The zero Action is not valid and is treated as Deny.
const (
	Allow  Action = "allow"
	Deny   Action = "deny"
	Review Action = "review"
)

// Stricter returns the stricter of a and b, deny before review before
// allow (anything else counts as deny, as the zero Action does); a when
// they are as strict.
func Stricter(a, b Action) Action {
	rank := func(x Action) int {
		switch x {
		case Allow:
			return 0
		case Review:
			return 1
		}
		return 2
	}
	if rank(a) >= rank(b) {
		return a
	}
	return b
}

// How the agent's stated confidence changed a decision (Decision.ConfidenceEffect).
const (
	// ConfidenceNone: the action is the rule's (or the default's). A
	// Decision says it with "".
	ConfidenceNone = "none"
	// ConfidenceTightenedToReview: an allow became review (review_below).
	ConfidenceTightenedToReview = "tightened_to_review"
	// ConfidenceTightenedToDeny: an allow or review became deny (deny_below).
	ConfidenceTightenedToDeny = "tightened_to_deny"
	// ConfidenceAutoApproved: a review became allow (a rule's auto_approve_at).
	ConfidenceAutoApproved = "auto_approved"
)

// Decision is the outcome of evaluating one call against a rule set.
// The gate acts on Action; audit stores every field.
type Decision struct {
	// Action is what to do. A rule set never returns an empty one; the
	// gate treats one as Deny.
	Action Action `json:"action"`
	// Rule is the name of the matching rule; "" when the default applied.
	Rule string `json:"rule,omitempty"`
	// Reason is the rule's (possibly computed) reason, shown to the agent on deny.
	Reason string `json:"reason,omitempty"`
	// Version is the rule set's content hash.
	Version string `json:"version"`
	// Label is the rule set's optional human label.
	Label string `json:"label,omitempty"`
	// Sandbox is the sandbox profile the matching rule names for running
	// the call (allow, or review once approved); "" means the tool's own
	// default.
	Sandbox string `json:"sandbox,omitempty"`
	// SessionGrant, for a review, is the longest a reviewer may approve the
	// tool for the rest of the agent's session (the rule's session_grant);
	// zero offers only "approve once".
	SessionGrant time.Duration `json:"session_grant,omitempty"`
	// Review is how a review rule wants its review run: approvers,
	// channels, escalation. The zero value is one approver, any channel.
	Review ReviewPolicy `json:"review_policy,omitzero"`
	// AutoApproved is true when a review rule's auto_approve_at turned it into Allow.
	AutoApproved bool `json:"auto_approved,omitempty"`
	// ConfidenceEffect says how the agent's stated confidence changed the
	// action: one of the Confidence* constants, "" when it changed nothing
	// (the audit log records that as ConfidenceNone).
	ConfidenceEffect string `json:"confidence_effect,omitempty"`
	// Shadow holds what each matching shadow-mode rule would have decided.
	Shadow []ShadowResult `json:"shadow,omitempty"`
	// Error is the evaluation error, if one forced this decision (fail closed).
	Error string `json:"error,omitempty"`
}

// ShadowResult is a shadow rule's verdict, recorded but not enforced.
type ShadowResult struct {
	Rule   string `json:"rule"`
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Error is the shadow rule's evaluation error, if any; Action is then
	// the set's on_error.
	Error string `json:"error,omitempty"`
}

// ReviewPolicy is a review rule's demands on its review.
type ReviewPolicy struct {
	// Approvals is how many distinct approvers must approve; 0 means 1.
	// One denial is enough to deny.
	Approvals int `json:"approvals,omitempty"`
	// Channels are the review channels that may answer (see
	// IsReviewChannel); empty means every configured one.
	Channels []string `json:"channels,omitempty"`
	// EscalateAfter is when, still unanswered, the review mentions
	// EscalateTo (Slack user or group IDs) in its Slack thread.
	EscalateAfter time.Duration `json:"escalate_after,omitempty"`
	EscalateTo    []string      `json:"escalate_to,omitempty"`
}

// Zero reports whether p makes no demands (one approver, any channel, no
// escalation).
func (p ReviewPolicy) Zero() bool {
	return p.Approvals == 0 && len(p.Channels) == 0 && p.EscalateAfter == 0 && len(p.EscalateTo) == 0
}
