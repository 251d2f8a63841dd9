package rules

import "github.com/toolgate/toolgate"

// Aliases kept until the merge; the lead removes them.
type (
	Action       = toolgate.Action
	Decision     = toolgate.Decision
	ShadowResult = toolgate.ShadowResult
	ReviewPolicy = toolgate.ReviewPolicy
)

// Aliases kept until the merge; the lead removes them.
const (
	Allow                       = toolgate.Allow
	Deny                        = toolgate.Deny
	Review                      = toolgate.Review
	ConfidenceNone              = toolgate.ConfidenceNone
	ConfidenceTightenedToReview = toolgate.ConfidenceTightenedToReview
	ConfidenceTightenedToDeny   = toolgate.ConfidenceTightenedToDeny
	ConfidenceAutoApproved      = toolgate.ConfidenceAutoApproved
)
