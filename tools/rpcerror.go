package tools

import (
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
)

// newRPCError returns an upstream's JSON-RPC error with mcp-go's error for
// its code as Err, so errors.Is(err, mcp.ErrInvalidParams),
// errors.As(err, &mcp.URLElicitationRequiredError{}) and the like work.
func newRPCError(d *mcp.JSONRPCErrorDetails) *toolgate.RPCError {
	return &toolgate.RPCError{Code: d.Code, Message: d.Message, Data: d.Data, Err: d.AsError()}
}
