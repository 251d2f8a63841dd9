package tools

import "github.com/toolgate/toolgate"

// Aliases kept until the merge; the lead removes them.
const (
	AuthNone   = toolgate.AuthNone
	AuthShared = toolgate.AuthShared
	AuthToken  = toolgate.AuthToken
	AuthOIDC   = toolgate.AuthOIDC
)

// Aliases kept until the merge; the lead removes them.
type Principal = toolgate.Principal

// Aliases kept until the merge; the lead removes them.
var NormalGroups = toolgate.NormalGroups
