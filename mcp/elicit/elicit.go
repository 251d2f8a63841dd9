// Package elicit asks the agent's user through the MCP session a request
// came in on (elicitation): for an upstream's question relayed to the
// agent, and for review by the agent's own user.
package elicit

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Supported reports why the agent of ctx (the MCP request a
// call came in on) cannot be asked through elicitation, or nil when it can.
func Supported(ctx context.Context) error {
	sess := server.ClientSessionFromContext(ctx)
	if sess == nil {
		return errors.New("not called from an MCP request (no client session)")
	}
	if _, ok := sess.(server.SessionWithElicitation); !ok {
		return errors.New("the transport cannot send elicitation requests")
	}
	if ci, ok := sess.(server.SessionWithClientInfo); ok && ci.GetClientCapabilities().Elicitation == nil {
		return errors.New("the MCP client did not declare the elicitation capability")
	}
	return nil
}

// Ask sends req to the agent of ctx and waits for the answer: through
// mcp-go's server when the request came through its dispatch (it also
// checks the protocol allows server-initiated requests), else straight to
// the session (toolgate's stdio fast path, which serves only legacy
// protocol requests).
func Ask(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if srv := server.ServerFromContext(ctx); srv != nil {
		return srv.RequestElicitation(ctx, req)
	}
	sess, ok := server.ClientSessionFromContext(ctx).(server.SessionWithElicitation)
	if !ok {
		return nil, server.ErrElicitationNotSupported
	}
	if err := req.Params.Validate(); err != nil {
		return nil, err
	}
	return sess.RequestElicitation(ctx, req)
}
