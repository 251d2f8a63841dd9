package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/toolgate/toolgate"
)

// This file forwards tools/call without mcp-go's (*client.Client).CallTool:
// callTool sends the request through the client's transport, as list does,
// so that an upstream's JSON-RPC error keeps its code and data (RPCError),
// and a plain result can be passed on undecoded (passThrough). When it is
// decoded, it is in two passes over the bytes that matter (the result,
// then each content item once) where mcp.ParseCallToolResult makes four;
// both pay for themselves with results of a few KB (docs/operating.md).
// Invariant: decodeCallToolResult returns what mcp.ParseCallToolResult
// returns, on any input (TestDecodeCallToolResultMatchesMCPGo,
// FuzzDecodeCallToolResult), falling back to it for anything unusual.
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

// callTool forwards params as one tools/call. A plain result comes back
// undecoded (see passThrough) when raw is set, else decoded.
func (c *conn) callTool(ctx context.Context, params mcp.CallToolParams, raw bool) (toolgate.Result, error) {
	if !c.client.IsInitialized() || mcp.IsModernProtocol(c.client.ProtocolVersion()) {
		req := mcp.CallToolRequest{Params: params}
		res, err := c.client.CallTool(ctx, req)
		if err != nil {
			return toolgate.Result{}, err
		}
		return Decoded(res), nil
	}
	shed := 0
	for {
		b, err := c.sendCall(ctx, params)
		if err != nil {
			return toolgate.Result{}, err
		}
		if raw {
			if r, ok := passThrough(b); ok {
				return r, nil
			}
		}
		res, err := decodeCallToolResult(b)
		if err != nil {
			return toolgate.Result{}, err
		}
		if !res.NeedsInput() {
			return Decoded(res), nil
		}
		if len(res.InputRequests) > 0 {
			return toolgate.Result{}, unanswerable(res.InputRequests)
		}
		shed++
		if shed >= maxLoadShedding {
			return toolgate.Result{}, fmt.Errorf("%w: server asked to retry %d times without requesting input",
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
		if isTooLarge(resp.Error) {
			return nil, errors.New(resp.Error.Message)
		}
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

// wireResult is the shape mcp.CallToolResult's UnmarshalJSON decodes.
type wireResult struct {
	Meta              *mcp.Meta         `json:"_meta,omitempty"`
	ResultType        mcp.ResultType    `json:"resultType,omitempty"`
	Content           []json.RawMessage `json:"content"`
	StructuredContent json.RawMessage   `json:"structuredContent,omitempty"`
	IsError           bool              `json:"isError,omitempty"`
	InputRequests     mcp.InputRequests `json:"inputRequests,omitempty"`
	RequestState      string            `json:"requestState,omitempty"`
}

// wireContent holds the fields of the plain content types (text, image,
// audio, resource_link), each with the JSON name and Go type it has in its
// mcp type, so that decoding an item into it fills those fields exactly as
// decoding it into its own type would.
type wireContent struct {
	mcp.Annotated
	Meta        *mcp.Meta `json:"_meta,omitempty"`
	Type        string    `json:"type"`
	Text        string    `json:"text"`
	Data        string    `json:"data"`
	MIMEType    string    `json:"mimeType"`
	URI         string    `json:"uri"`
	Name        string    `json:"name"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description"`
	Size        *int64    `json:"size,omitempty"`
}

// decodeCallToolResult returns what mcp.ParseCallToolResult returns for raw,
// decoding it fewer times where it can.
func decodeCallToolResult(raw json.RawMessage) (*mcp.CallToolResult, error) {
	if res, ok := decodeResultFast(raw); ok {
		return res, nil
	}
	return mcp.ParseCallToolResult(&raw)
}

// decodeResultFast decodes raw, or reports false if raw is one of the cases
// it leaves to mcp.ParseCallToolResult: any error, and content missing or
// null (which that tells apart).
func decodeResultFast(raw json.RawMessage) (*mcp.CallToolResult, bool) {
	var w wireResult
	if err := json.Unmarshal(raw, &w); err != nil || w.Content == nil {
		return nil, false
	}
	r := &mcp.CallToolResult{}
	r.Meta = w.Meta
	r.ResultType = w.ResultType
	r.IsError = w.IsError
	r.InputRequests = w.InputRequests
	r.RequestState = w.RequestState
	if len(w.Content) > 0 {
		r.Content = make([]mcp.Content, len(w.Content))
		for i, item := range w.Content {
			c, err := decodeContent(item)
			if err != nil {
				return nil, false
			}
			r.Content[i] = c
		}
	}
	if len(w.StructuredContent) > 0 {
		// w.StructuredContent is already a copy, not a slice of raw.
		r.RawStructuredContent = w.StructuredContent
		if err := json.Unmarshal(w.StructuredContent, &r.StructuredContent); err != nil {
			return nil, false
		}
	}
	return r, true
}

// decodeContent returns what mcp.UnmarshalContent returns for item, in one
// decode for the plain content types.
func decodeContent(item json.RawMessage) (mcp.Content, error) {
	var w wireContent
	if err := json.Unmarshal(item, &w); err != nil {
		return mcp.UnmarshalContent(item)
	}
	switch w.Type {
	case mcp.ContentTypeText:
		return mcp.TextContent{Annotated: w.Annotated, Meta: w.Meta, Type: w.Type, Text: w.Text}, nil
	case mcp.ContentTypeImage:
		return mcp.ImageContent{Annotated: w.Annotated, Meta: w.Meta, Type: w.Type, Data: w.Data, MIMEType: w.MIMEType}, nil
	case mcp.ContentTypeAudio:
		return mcp.AudioContent{Annotated: w.Annotated, Meta: w.Meta, Type: w.Type, Data: w.Data, MIMEType: w.MIMEType}, nil
	case mcp.ContentTypeLink:
		return mcp.ResourceLink{Annotated: w.Annotated, Meta: w.Meta, Type: w.Type, URI: w.URI, Name: w.Name,
			Title: w.Title, Description: w.Description, MIMEType: w.MIMEType, Size: w.Size}, nil
	default:
		// Embedded resources, tool_use, tool_result, and errors.
		return mcp.UnmarshalContent(item)
	}
}
