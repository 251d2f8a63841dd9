package tools

import "github.com/mark3labs/mcp-go/mcp"

// RPCError is an upstream's JSON-RPC error response to a forwarded call:
// its code, message and data as the upstream sent them. It travels as the
// error of Forward (wrapped; find it with errors.As) and, from the gate, as
// Result.RPCError, so the agent-facing edge answers the agent with the same
// JSON-RPC error where its transport lets it (see the mcp package). It
// unwraps to mcp-go's error for the code (errors.Is(err,
// mcp.ErrInvalidParams), errors.As(err, &mcp.URLElicitationRequiredError{})
// and the like), whose text is its Error.
type RPCError struct {
	Code    int
	Message string
	// Data is the error's data member, nil when it had none.
	Data any
	is   error
}

func newRPCError(d *mcp.JSONRPCErrorDetails) *RPCError {
	return &RPCError{Code: d.Code, Message: d.Message, Data: d.Data, is: d.AsError()}
}

// Error is mcp-go's text for the error.
func (e *RPCError) Error() string {
	if e.is == nil {
		return e.Message
	}
	return e.is.Error()
}

// Unwrap returns mcp-go's error for the code.
func (e *RPCError) Unwrap() error { return e.is }
