package toolgate

import "encoding/json"

// Result is a call's result on its way back to the agent. Exactly one of
// Raw, Value and Refusal is set in a result the gate returns.
type Result struct {
	// Raw is the result object's JSON as its upstream sent it, compact
	// (no raw newline, so it fits one stdio line): toolgate passes it on
	// without decoding it.
	Raw json.RawMessage
	// Value is the decoded result, of the edge's own type (package mcp:
	// *mcp.CallToolResult). The agent gets its JSON, which is what the
	// audit log hashes.
	Value json.Marshaler
	// Refusal is toolgate's own tool error (isError) in words for the
	// agent: why the call did not run, or how its upstream failed. The
	// edge turns it into its protocol's error result.
	Refusal string
	// IsError is the result's isError, in every case.
	IsError bool
	// RPCError, when set, is the upstream's JSON-RPC error response to the
	// call: an edge that can answer with a JSON-RPC error passes it on as
	// the upstream sent it; Refusal says the same for one that cannot.
	RPCError *RPCError
}

// Refused returns a Result that is toolgate's tool error text.
func Refused(text string) Result { return Result{Refusal: text, IsError: true} }

// Empty reports whether r holds no result at all.
func (r Result) Empty() bool { return r.Raw == nil && r.Value == nil && r.Refusal == "" }

// RPCError is an upstream's JSON-RPC error response to a forwarded call:
// its code, message and data as the upstream sent them. It travels as the
// error of a forward (wrapped; find it with errors.As) and as
// Result.RPCError, so the agent-facing edge answers the agent with the same
// JSON-RPC error where its transport lets it.
type RPCError struct {
	Code    int
	Message string
	// Data is the error's data member, nil when it had none.
	Data any
	// Err is the MCP library's error for the code (errors.Is against its
	// sentinels works through Unwrap); its text is Error's. nil means
	// Message alone.
	Err error
}

// Error is Err's text, else Message.
func (e *RPCError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *RPCError) Unwrap() error { return e.Err }
