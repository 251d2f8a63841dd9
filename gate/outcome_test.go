package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/tools"
)

// TestOutcomeHashesTheResultJSON: the recorded size and hash are those of
// json.Marshal(result), what the agent receives as "result".
func TestOutcomeHashesTheResultJSON(t *testing.T) {
	structured := mcp.NewToolResultStructured(map[string]any{"html": "<a href=\"x\">&</a>", "n": 1.5, "list": []any{"é", nil, true}}, "<b>fallback</b> \u2028")
	structured.Meta = mcp.NewMetaFromMap(map[string]any{"k": "v"})
	for _, res := range []*mcp.CallToolResult{
		mcp.NewToolResultText("hello, toolgate"),
		mcp.NewToolResultError("went <wrong> & failed"),
		structured,
		{Content: []mcp.Content{}},
	} {
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		o := outcome(tools.Decoded(res), nil, time.Millisecond, time.Now())
		if o.ResultSize != len(b) || o.ResultHash != hex.EncodeToString(sum[:]) {
			t.Errorf("result %s: size %d hash %s, want %d %x", b, o.ResultSize, o.ResultHash, len(b), sum)
		}
	}
}

// TestOutcomeOfRawResult: a result passed on undecoded is recorded by its
// own bytes, what the agent receives; its status by its isError.
func TestOutcomeOfRawResult(t *testing.T) {
	raw := json.RawMessage(`{ "content": [{"type":"text","text":"<x>"}], "isError": true }`)
	sum := sha256.Sum256(raw)
	o := outcome(tools.Result{Raw: raw, IsError: true}, nil, time.Millisecond, time.Now())
	if o.Status != audit.StatusToolError || o.ResultSize != len(raw) || o.ResultHash != hex.EncodeToString(sum[:]) {
		t.Errorf("outcome %+v, want tool_error, size %d, hash %x", o, len(raw), sum)
	}
	if o := outcome(tools.Result{}, nil, 0, time.Now()); o.Status != audit.StatusFailed {
		t.Errorf("no result: %+v", o)
	}
}
