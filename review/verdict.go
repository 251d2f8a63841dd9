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
	// ReviewerUser is the reviewer as a principal user (Principal.User),
	// "" when the channel cannot tell: the OS account on the CLI, the
	// mapped user of a Slack user (SlackOptions.Users), the call's own
	// principal for elicitation (the agent's user answers). The store
	// refuses an approval of a call whose principal is the reviewer's.
	ReviewerUser string `json:"-"`
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
