package audit

import "github.com/toolgate/toolgate"

// Aliases kept until the merge; the lead removes them.
const (
	StatusStarted   = toolgate.StatusStarted
	StatusPending   = toolgate.StatusPending
	StatusRefused   = toolgate.StatusRefused
	StatusOK        = toolgate.StatusOK
	StatusToolError = toolgate.StatusToolError
	StatusFailed    = toolgate.StatusFailed
	StatusGranted   = toolgate.StatusGranted
	ChannelGrant    = toolgate.ChannelGrant
	ChannelExpired  = toolgate.ChannelExpired
)

// Aliases kept until the merge; the lead removes them.
type Outcome = toolgate.Outcome
