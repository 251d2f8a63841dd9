package mcp

import (
	"context"
	"encoding/json"
	"fmt"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/mcp/agent"
)

// The stdio fast path for tools/call. It pays for itself (docs/operating.md,
// "What toolgate costs per call"): mcp-go's HandleMessage decodes a
// tools/call line five times before the handler runs and goes through the
// server's per-call tool filtering and request bookkeeping.
//
// Invariant: for every line callFast serves, the gate gets the Call and
// the agent the response that HandleMessage would give
// (TestCallFastLikeMCPGo, FuzzCallFast). callFast decodes the line once
// into what the handler needs, and serves the call itself only in the
// plain case: JSON-RPC 2.0, a tool that is
// exposed, no task augmentation, no multi round-trip answers, and a legacy
// protocol (toolgate pins 2025-11-25; a request whose _meta names a
// protocol of 2026-07-28 or later carries its session state in _meta,
// which mcp-go applies). Anything else, including every malformed
// request, goes to HandleMessage, which answers it as it always has.
//
// What it keeps from HandleMessage for the calls it serves: the handler
// (Server.call), the session in the context (client info, elicitation,
// progress notifications), cancellation by notifications/cancelled, panic
// recovery (in handle), and the response: a JSON-RPC result with the
// request's id.

// callRequest is what callFast decodes of a tools/call line: the fields of
// mcp.CallToolRequest that mcp-go's decoding fills, with the arguments
// decoded straight into any (mcp-go also keeps their raw bytes, which
// toolgate never uses).
type callRequest struct {
	JSONRPC string      `json:"jsonrpc"`
	Params  *callParams `json:"params"`
}

type callParams struct {
	Name      string            `json:"name"`
	Arguments any               `json:"arguments"`
	Meta      *mcpgo.Meta       `json:"_meta"`
	Task      *mcpgo.TaskParams `json:"task"`
	mcpgo.MultiRoundTripParams
}

// callFast serves the tools/call request line with the given id, or
// reports false without having done anything (HandleMessage serves it).
func (c *stdioConn) callFast(id any, line []byte) (mcpgo.JSONRPCMessage, bool) {
	var req callRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, false
	}
	p := req.Params
	if req.JSONRPC != mcpgo.JSONRPC_VERSION || p == nil || p.Task != nil ||
		len(p.InputResponses) > 0 || p.RequestState != "" ||
		mcpgo.IsModernProtocol(p.Meta.ProtocolVersion()) {
		return nil, false
	}
	e := c.srv.lookup(p.Name)
	if e == nil || e.tool.Elicits && agent.CanElicit(c.ctx) != nil {
		// mcp-go refuses a tool hidden from this agent (hideEliciting).
		return nil, false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	key := fmt.Sprint(id)
	c.cancelMu.Lock()
	c.cancels[key] = cancel
	c.cancelMu.Unlock()
	defer func() {
		c.cancelMu.Lock()
		delete(c.cancels, key)
		c.cancelMu.Unlock()
		cancel()
	}()
	res := c.srv.call(ctx, e, p.Arguments, p.Meta, "", true)
	if r := res.RPCError; r != nil {
		// The upstream's JSON-RPC error, code, message and data as sent.
		return mcpgo.NewJSONRPCError(mcpgo.NewRequestId(id), r.Code, r.Message, r.Data), true
	}
	if res.Raw == nil {
		return mcpgo.NewJSONRPCResultResponse(mcpgo.NewRequestId(id), res.Value), true
	}
	// The upstream's result, passed on as it came (tools.Result.Raw holds
	// no newline).
	idJSON, err := json.Marshal(mcpgo.NewRequestId(id))
	if err != nil {
		// Unreachable: id came from decoding JSON. The call has run, so
		// it must not go to HandleMessage.
		return mcpgo.NewJSONRPCError(mcpgo.NewRequestId(id), mcpgo.INTERNAL_ERROR, "encoding the response id: "+err.Error(), nil), true
	}
	b := make([]byte, 0, len(`{"jsonrpc":"2.0","id":,"result":}`)+len(idJSON)+len(res.Raw)+1)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, idJSON...)
	b = append(b, `,"result":`...)
	b = append(b, res.Raw...)
	b = append(b, "}\n"...)
	return rawLine(b), true
}

// rawLine is a response already encoded, newline included.
type rawLine []byte

// cancelCall cancels the fast-path call a notifications/cancelled line
// names, if it is running. (mcp-go's handling of the line, which follows,
// cancels the requests it serves itself.)
func (c *stdioConn) cancelCall(line []byte) {
	var n struct {
		Params struct {
			RequestID any `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &n) != nil || n.Params.RequestID == nil {
		return
	}
	key := fmt.Sprint(n.Params.RequestID)
	c.cancelMu.Lock()
	cancel := c.cancels[key]
	delete(c.cancels, key)
	c.cancelMu.Unlock()
	if cancel != nil {
		cancel()
	}
}
