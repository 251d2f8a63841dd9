package tools

import (
	"context"
	"errors"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// An upstream's JSON-RPC error comes back as an *RPCError with its code,
// message and data, still matching mcp-go's sentinel for the code.
func TestForwardKeepsRPCError(t *testing.T) {
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "a", Server: namedServer("here")}}})
	_, err := c.ForwardResult(context.Background(), Call{Server: "a", Tool: "gone", Name: "a__gone"})
	rpc, ok := errors.AsType[*RPCError](err)
	if !ok {
		t.Fatalf("err = %v (%T), want an *RPCError", err, err)
	}
	if rpc.Code != mcp.INVALID_PARAMS || rpc.Message == "" || !errors.Is(err, mcp.ErrInvalidParams) {
		t.Errorf("RPCError = %+v (errors.Is invalid params: %v)", rpc, errors.Is(err, mcp.ErrInvalidParams))
	}
}
