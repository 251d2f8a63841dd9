package tools

import (
	"bytes"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
)

// Decoded returns res as a Result (the zero Result for nil).
func Decoded(res *mcp.CallToolResult) toolgate.Result {
	if res == nil {
		return toolgate.Result{}
	}
	return toolgate.Result{Value: res, IsError: res.IsError}
}

// Decode returns r as mcp-go's result: a refusal as a tool error, a raw
// result decoded. It returns nil for a zero Result.
func Decode(r toolgate.Result) (*mcp.CallToolResult, error) {
	switch v := r.Value.(type) {
	case *mcp.CallToolResult:
		return v, nil
	case nil:
	default:
		b, err := v.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return decodeCallToolResult(b)
	}
	switch {
	case r.Refusal != "":
		return mcp.NewToolResultError(r.Refusal), nil
	case r.Raw != nil:
		return decodeCallToolResult(r.Raw)
	}
	return nil, nil
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
func passThrough(raw json.RawMessage) (toolgate.Result, bool) {
	var h resultHead
	if json.Unmarshal(raw, &h) != nil || h.Content != '[' || h.ResultType == mcp.ResultTypeInputRequired {
		return toolgate.Result{}, false
	}
	// A result from an HTTP upstream may be pretty-printed; a stdio agent
	// reads one message a line.
	if bytes.ContainsAny(raw, "\r\n") {
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return toolgate.Result{}, false
		}
		raw = b.Bytes()
	}
	return toolgate.Result{Raw: raw, IsError: h.IsError}, true
}
