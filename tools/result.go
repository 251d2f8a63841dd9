package tools

import (
	"bytes"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// Result is a tool call's result on its way back to the agent: decoded,
// or, from an upstream, the result object's JSON as the upstream sent it,
// which toolgate passes on without decoding (see ForwardResult).
type Result struct {
	// Decoded is the result; nil when only Raw is set.
	Decoded *mcp.CallToolResult
	// Raw is the result object's JSON, compact enough to sit in one stdio
	// line (it holds no raw newline); nil when only Decoded is set.
	Raw json.RawMessage
	// IsError is the result's isError, in both cases.
	IsError bool
	// RPCError, when set, is the upstream's JSON-RPC error response to the
	// call: an edge that can answer with a JSON-RPC error passes it on as
	// the upstream sent it; Decoded is then a tool error saying the same,
	// for one that cannot.
	RPCError *RPCError
}

// Decoded returns res as a Result.
func Decoded(res *mcp.CallToolResult) Result {
	return Result{Decoded: res, IsError: res != nil && res.IsError}
}

// Decode returns the decoded result (nil for a zero Result).
func (r Result) Decode() (*mcp.CallToolResult, error) {
	if r.Decoded != nil || r.Raw == nil {
		return r.Decoded, nil
	}
	return decodeCallToolResult(r.Raw)
}

// jsonShape records the first byte of a JSON value without copying it.
type jsonShape byte

func (s *jsonShape) UnmarshalJSON(b []byte) error {
	*s = jsonShape(b[0])
	return nil
}

// resultHead is what toolgate reads of a result it passes through.
type resultHead struct {
	ResultType mcp.ResultType `json:"resultType"`
	IsError    bool           `json:"isError"`
	Content    jsonShape      `json:"content"`
}

// passThrough returns raw as a Result to pass on undecoded, or false when
// raw needs the decoding path: anything but an object whose content is an
// array, whose isError (if any) is a boolean, and that asks for no further
// input (resultType input_required). The decoding path then answers as it
// always has, including with its errors.
func passThrough(raw json.RawMessage) (Result, bool) {
	var h resultHead
	if json.Unmarshal(raw, &h) != nil || h.Content != '[' || h.ResultType == mcp.ResultTypeInputRequired {
		return Result{}, false
	}
	// A result from an HTTP upstream may be pretty-printed; a stdio agent
	// reads one message a line.
	if bytes.ContainsAny(raw, "\r\n") {
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return Result{}, false
		}
		raw = b.Bytes()
	}
	return Result{Raw: raw, IsError: h.IsError}, true
}
