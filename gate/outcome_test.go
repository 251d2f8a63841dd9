package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
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
		o := outcome(res, nil, time.Millisecond, time.Now())
		if o.ResultSize != len(b) || o.ResultHash != hex.EncodeToString(sum[:]) {
			t.Errorf("result %s: size %d hash %s, want %d %x", b, o.ResultSize, o.ResultHash, len(b), sum)
		}
	}
}
