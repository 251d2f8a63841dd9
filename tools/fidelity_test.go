package tools

import (
	"context"
	"encoding/json"
	"github.com/toolgate/toolgate/toolgatetest"
	"strings"
	"testing"
	"time"
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

// A tool whose upstream asks the user something during a call is marked
// Elicits from then on, even when this caller could not be asked.
func TestElicitingToolMarked(t *testing.T) {
	changed := make(chan struct{}, 8)
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "up", Command: upstreamBin}}, OnChange: func() { changed <- struct{}{} }})
	if tl, ok := c.Lookup("up__ask"); !ok || tl.Elicits {
		t.Fatalf("up__ask before any call: %+v", tl)
	}
	drain(changed)
	res, err := c.Forward(context.Background(), call(c, "up__ask", nil))
	if err != nil || !strings.Contains(text(res), "no answer") {
		t.Fatalf("ask without an agent to ask: %v %v", text(res), err)
	}
	toolgatetest.Eventually(t, "up__ask marked", func() bool { tl, _ := c.Lookup("up__ask"); return tl.Elicits })
	if tl, _ := c.Lookup("up__echo"); tl.Elicits {
		t.Error("up__echo marked too")
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("OnChange not called when the mark changed what agents are shown")
	}
}
