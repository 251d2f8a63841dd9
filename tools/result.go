package tools

import (
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// Result is a call's result on its way back to the agent.
type Result struct {
	// Decoded is the tool call's result; nil when only Raw is set.
	Decoded *mcp.CallToolResult
	// Raw, when set, is the result's JSON as the agent gets it, for a
	// result that is already encoded (gate.Run's results of calls that are
	// not tool calls); the gate records its size and hash.
	Raw json.RawMessage
	// IsError is the result's isError.
	IsError bool
	// RPCError, when set, is the upstream's JSON-RPC error response to the
	// call: an edge that can answer with a JSON-RPC error passes it on as
	// the upstream sent it; Decoded is then a tool error saying the same,
	// for one that cannot.
	RPCError *RPCError
}

// Decoded returns res as a Result.
func Decoded(res *mcp.CallToolResult) Result {
	return Result{Decoded: res, IsError: res != nil && res.IsError}
}
