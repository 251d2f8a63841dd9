// Package tools holds the catalog of tools toolgate re-exposes: the upstream
// MCP servers and the built-in workspace tools. It forwards each
// toolgate.Call the gate lets through to the tool that runs it.
package tools

import "github.com/toolgate/toolgate"

// Aliases kept until the merge; the lead removes them.
type (
	Peer        = toolgate.Peer
	Annotations = toolgate.Annotations
	Call        = toolgate.Call
)
