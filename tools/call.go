// Package tools holds the catalog of tools toolgate re-exposes: the upstream
// MCP servers, the built-in workspace tools, and the Call that describes one
// tool invocation as it travels through the gate.
package tools

import "github.com/toolgate/toolgate"

// Aliases kept until the merge; the lead removes them.
type (
	Peer        = toolgate.Peer
	Annotations = toolgate.Annotations
	Call        = toolgate.Call
)
