package review

import "time"

// Verdict is a human's (or an auto-approval's) answer to a review.
type Verdict struct {
	// Approved is true only on an explicit approval.
	Approved bool `json:"approved"`
	// Reviewer identifies who decided: a Slack user ID, a local user name, "elicitation:<client>".
	Reviewer string `json:"reviewer,omitempty"`
	// Channel is how the answer came: "slack", "cli", "elicitation", "timeout", "auto".
	Channel string `json:"channel"`
	// Reason is the reviewer's reason (deny) or why the review ended (timeout, error).
	Reason string `json:"reason,omitempty"`
	// DecidedAt is when the answer was given.
	DecidedAt time.Time `json:"decided_at"`
}

// sandboxText says where an approved call runs, for reviewers: the sandbox
// profile its decision chose, or that toolgate does not confine it.
func sandboxText(profile string) string {
	switch profile {
	case "":
		return "no toolgate sandbox (the tool runs on its own server)"
	case "none":
		return "no sandbox (profile none: toolgate's own rights)"
	}
	return "sandbox profile " + profile
}
