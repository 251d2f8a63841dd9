// Package agent sends requests to the agent's client through the MCP
// session a request came in on: elicitation (asking its user) and sampling
// (asking its model). The catalog relays its upstreams' requests this way,
// and review asks the agent's own user.
package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// CanElicit reports why the agent of ctx (the MCP request a call came in
// on) cannot be asked through elicitation with a form, or nil when it can.
func CanElicit(ctx context.Context) error { return CanElicitMode(ctx, mcp.ElicitationModeForm) }

// CanElicitMode is CanElicit for an elicitation of mode ("" is form). A
// client declares the modes it shows (MCP 2025-11-25: elicitation: {form:
// {}, url: {}}); an empty elicitation object declares form alone, so a
// client that declared it is never sent a URL to open.
func CanElicitMode(ctx context.Context, mode string) error {
	switch mode {
	case "", mcp.ElicitationModeForm:
		return can[server.SessionWithElicitation](ctx, "elicitation", func(c mcp.ClientCapabilities) bool {
			return c.Elicitation != nil && (c.Elicitation.Form != nil || c.Elicitation.URL == nil)
		})
	case mcp.ElicitationModeURL:
		return can[server.SessionWithElicitation](ctx, "elicitation url mode", func(c mcp.ClientCapabilities) bool {
			return c.Elicitation != nil && c.Elicitation.URL != nil
		})
	}
	return fmt.Errorf("unknown elicitation mode %q", mode)
}

// CanSample reports why the agent of ctx cannot be asked for a completion,
// or nil when it can.
func CanSample(ctx context.Context) error {
	return can[server.SessionWithSampling](ctx, "sampling", func(c mcp.ClientCapabilities) bool { return c.Sampling != nil })
}

// can reports why the session of ctx cannot send what requests: it is not
// an S, or its client did not declare the capability.
func can[S any](ctx context.Context, what string, declared func(mcp.ClientCapabilities) bool) error {
	sess := server.ClientSessionFromContext(ctx)
	if sess == nil {
		return errors.New("not called from an MCP request (no client session)")
	}
	if _, ok := sess.(S); !ok {
		return fmt.Errorf("the transport cannot send %s requests", what)
	}
	if ci, ok := sess.(server.SessionWithClientInfo); ok && !declared(ci.GetClientCapabilities()) {
		return fmt.Errorf("the MCP client did not declare the %s capability", what)
	}
	return nil
}

// Elicit sends req to the agent of ctx and waits for the answer: through
// mcp-go's server when the request came through its dispatch (it also
// checks the protocol allows server-initiated requests), else straight to
// the session (toolgate's stdio fast path, which serves only legacy
// protocol requests).
func Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
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

// Sample sends req to the agent of ctx and waits for the completion, the
// way Elicit does.
func Sample(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if srv := server.ServerFromContext(ctx); srv != nil {
		return srv.RequestSampling(ctx, req)
	}
	sess, ok := server.ClientSessionFromContext(ctx).(server.SessionWithSampling)
	if !ok {
		return nil, errors.New("the transport cannot send sampling requests")
	}
	return sess.RequestSampling(ctx, req)
}
