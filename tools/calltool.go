package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// This file forwards tools/call without mcp-go's (*client.Client).CallTool,
// which turns an upstream's JSON-RPC error into a Go error without its
// data: callTool sends the request through the client's transport, as list
// does, so that an *RPCError keeps the upstream's code and data, and
// decodes the result with mcp.ParseCallToolResult, as CallTool does.
//
// What it keeps from CallTool, for the clients connect builds (a legacy
// protocol version, no tracer or meta propagator, no elicitation, sampling
// or roots handler):
//   - request ids: strings "toolgate-call-N", which cannot collide with the
//     client's numeric ids nor with list's "toolgate-list-N";
//   - a context that has ended before sending sends nothing, and fails with
//     a *transport.Error;
//   - a context that ends while waiting sends notifications/cancelled for
//     the request (except over HTTP, where mcp-go sends none either), and
//     fails with a *transport.Error, like any other transport failure;
//   - a JSON-RPC error response becomes an *RPCError, which keeps the
//     code and data and unwraps to mcp.JSONRPCErrorDetails.AsError's error;
//   - the multi round-trip loop of protocol 2026-07-28 (SEP-2322): a result
//     of type input_required with no input requests is retried with its
//     request state, at most three times in all; one with input requests
//     fails, since toolgate answers none of them. (toolgate pins protocol
//     2025-11-25, so upstreams should never send one.)
//
// A client that negotiated protocol 2026-07-28 or later, or is not
// initialized, goes through CallTool unchanged: that protocol adds _meta
// and HTTP headers to every request, which this file does not reproduce.

// cancelNotificationTimeout bounds the sending of notifications/cancelled,
// as in mcp-go.
const cancelNotificationTimeout = 5 * time.Second

// maxLoadShedding is how many input_required results without input requests
// (a server shedding load) mcp-go's client accepts in a row.
const maxLoadShedding = 3

// callTool forwards params as one tools/call.
func (c *conn) callTool(ctx context.Context, params mcp.CallToolParams) (*mcp.CallToolResult, error) {
	if !c.client.IsInitialized() || mcp.IsModernProtocol(c.client.ProtocolVersion()) {
		req := mcp.CallToolRequest{Params: params}
		return c.client.CallTool(ctx, req)
	}
	shed := 0
	for {
		b, err := c.sendCall(ctx, params)
		if err != nil {
			return nil, err
		}
		res, err := mcp.ParseCallToolResult(&b)
		if err != nil {
			return nil, err
		}
		if !res.NeedsInput() {
			return res, nil
		}
		if len(res.InputRequests) > 0 {
			return nil, unanswerable(res.InputRequests)
		}
		shed++
		if shed >= maxLoadShedding {
			return nil, fmt.Errorf("%w: server asked to retry %d times without requesting input",
				client.ErrMaxInputRoundTripsExceeded, shed)
		}
		params.MultiRoundTripParams = mcp.MultiRoundTripParams{RequestState: res.RequestState}
	}
}

// unanswerable is the error mcp-go's client returns for input requests when
// it has no handler for them. (mcp-go reports whichever request failed
// first; this reports the first by id.)
func unanswerable(reqs mcp.InputRequests) error {
	ids := make([]string, 0, len(reqs))
	for id := range reqs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	id := ids[0]
	var err error
	switch m := reqs[id].Method; m {
	case mcp.MethodElicitationCreate:
		err = fmt.Errorf("no elicitation handler configured")
	case mcp.MethodSamplingCreateMessage:
		err = fmt.Errorf("no sampling handler configured")
	case mcp.MethodListRoots:
		err = fmt.Errorf("no roots handler configured")
	default:
		err = fmt.Errorf("unsupported input request method %q", m)
	}
	return fmt.Errorf("multi round-trip: %w", fmt.Errorf("fulfilling input request %q: %w", id, err))
}

// sendCall sends one tools/call request and returns its result's JSON.
func (c *conn) sendCall(ctx context.Context, params mcp.CallToolParams) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, transport.NewError(err)
	}
	tr := c.client.GetTransport()
	req := transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId("toolgate-call-" + strconv.FormatInt(c.callSeq.Add(1), 10)),
		Method:  string(mcp.MethodToolsCall),
		Params:  params,
	}
	resp, err := tr.SendRequest(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			sendCancelled(ctx, tr, req.ID)
		}
		return nil, transport.NewError(err)
	}
	if resp.Error != nil {
		return nil, newRPCError(resp.Error)
	}
	return resp.Result, nil
}

// sendCancelled tells the upstream to stop working on request id, whose
// context has ended, as mcp-go's client does: best effort, off the caller's
// path, and not over HTTP.
func sendCancelled(ctx context.Context, tr transport.Interface, id mcp.RequestId) {
	if _, ok := tr.(transport.HTTPConnection); ok {
		return
	}
	n := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: string(mcp.MethodNotificationCancelled),
			Params: mcp.NotificationParams{
				AdditionalFields: map[string]any{"requestId": id, "reason": ctx.Err().Error()},
			},
		},
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, cancelNotificationTimeout)
		defer cancel()
		_ = tr.SendNotification(ctx, n)
	}()
}
