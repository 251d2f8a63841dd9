// Package reviewtool is toolgate's own MCP tool for agents: review_status,
// which tells an agent what became of a review its call is waiting for, and
// waits for it a while. An agent whose call came back "pending" can call it
// instead of guessing when to retry. It reads the audit log; it answers
// only about reviews of the caller's own session, and never says how to
// answer a review.
package reviewtool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/tools"
)

// ToolName is the tool's name on its server ("toolgate").
const ToolName = "review_status"

// MaxWait bounds how long one call waits for a verdict: under MCP clients'
// one-minute limit on a call.
const MaxWait = 40 * time.Second

// Store is what the tool reads of the audit log; *audit.Store is one.
type Store interface {
	Get(ctx context.Context, id string) (*audit.Record, error)
	GrantsOf(ctx context.Context, id string) ([]*audit.Grant, error)
}

// NewServer returns the in-process MCP server with review_status. poll is
// how often a waiting call reads the log.
func NewServer(st Store, version string, poll time.Duration) *server.MCPServer {
	s := server.NewMCPServer("toolgate", version, server.WithToolCapabilities(false), server.WithRecovery())
	s.AddTool(mcp.NewTool(ToolName,
		mcp.WithDescription("Check, and wait up to wait_seconds for, a human review of one of your calls that came back "+
			"pending. Once it is approved, retry the same call with the same arguments: it runs once."),
		mcp.WithString("review_id", mcp.Required(), mcp.Description("The review's id from the pending result.")),
		mcp.WithNumber("wait_seconds", mcp.Description(fmt.Sprintf("How long to wait for an answer, 0 to %d.", int(MaxWait.Seconds())))),
		mcp.WithReadOnlyHintAnnotation(true), mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return status(ctx, st, req, poll), nil
	})
	return s
}

func status(ctx context.Context, st Store, req mcp.CallToolRequest, poll time.Duration) *mcp.CallToolResult {
	id, err := req.RequireString("review_id")
	if err != nil {
		return mcp.NewToolResultError(err.Error())
	}
	wait := min(time.Duration(req.GetFloat("wait_seconds", 0)*float64(time.Second)), MaxWait)
	var session string
	if m := req.Params.Meta; m != nil {
		session, _ = m.AdditionalFields[tools.MetaSession].(string)
	}
	deadline := time.Now().Add(wait)
	for {
		r, err := st.Get(ctx, id)
		if errors.Is(err, audit.ErrNotFound) || err == nil && r.Session != session {
			return mcp.NewToolResultError(fmt.Sprintf("no review %s of this session", id))
		}
		if err != nil {
			return mcp.NewToolResultError("toolgate could not read the audit log: " + err.Error())
		}
		if r.Status != toolgate.StatusPending || r.Review != nil || !time.Now().Before(deadline) {
			return describe(ctx, st, r)
		}
		select {
		case <-ctx.Done():
			return mcp.NewToolResultError("cancelled while waiting")
		case <-time.After(min(poll, time.Until(deadline))):
		}
	}
}

func describe(ctx context.Context, st Store, r *audit.Record) *mcp.CallToolResult {
	v := r.Review
	switch {
	case r.Status == toolgate.StatusPending && v == nil:
		return mcp.NewToolResultText(fmt.Sprintf("pending: review %s of %s has no answer yet; ask again, or tell the user it waits", r.ID, r.Name))
	case v != nil && v.Approved:
		gs, err := st.GrantsOf(ctx, r.ID)
		if err == nil && len(gs) > 0 && gs[len(gs)-1].Active(time.Now()) {
			g := gs[len(gs)-1]
			return mcp.NewToolResultText(fmt.Sprintf("approved by %s: retry the same call with the same arguments now; it runs once (grant %s, until %s UTC)",
				v.Reviewer, g.ID, g.ExpiresAt.UTC().Format("15:04:05")))
		}
		return mcp.NewToolResultText(fmt.Sprintf("approved by %s (the call %s)", v.Reviewer, r.Status))
	case v != nil:
		why := v.Reason
		if why == "" {
			why = "no reason given"
		}
		return mcp.NewToolResultText(fmt.Sprintf("not approved (%s via %s): %s; do not retry the same call", v.Reviewer, v.Channel, why))
	}
	return mcp.NewToolResultText(fmt.Sprintf("review %s is %s", r.ID, r.Status))
}
