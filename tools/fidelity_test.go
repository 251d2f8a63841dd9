package tools

import (
	"encoding/json"
	"testing"
)

// parseTool notes whether the upstream listed annotations at all, which
// mcp.Tool cannot tell apart from empty ones.
func TestParseToolNotesMissingAnnotations(t *testing.T) {
	c, err := New(Options{Upstreams: []Upstream{{Name: "x", Command: "unused"}}})
	if err != nil {
		t.Fatal(err)
	}
	u := c.byNm["x"]
	for raw, want := range map[string]bool{
		`{"name":"a","inputSchema":{"type":"object"}}`:                                     true,
		`{"name":"a","inputSchema":{"type":"object"},"annotations":null}`:                  true,
		`{"name":"a","inputSchema":{"type":"object"},"annotations":{}}`:                    false,
		`{"name":"a","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`: false,
	} {
		tl, err := u.parseTool(json.RawMessage(raw), "1")
		if err != nil || tl.Unannotated != want {
			t.Errorf("%s: Unannotated = %v (%v), want %v", raw, tl.Unannotated, err, want)
		}
	}
}
