package mcp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestSurfaceLimits: a session's resource URIs and subscriptions are
// bounded, and what is refused for that reason is refused before the gate
// (it is not a read to decide or audit); an unsubscribe makes room.
func TestSurfaceLimits(t *testing.T) {
	f, levels := newSurfaceFixture(t, nil)
	go func() { // the upstream reports each unsubscribe, 257 at the session's end
		for range levels {
		}
	}()
	toolgatetest.Eventually(t, "the upstream's resources", func() bool { return len(f.cat.Surface().Resources) == 1 })
	f.srv.Sync()
	a, _, _ := f.initialize(t)
	gated := func() int {
		f.gate.mu.Lock()
		defer f.gate.mu.Unlock()
		return len(f.gate.calls)
	}

	long := "up://t/" + strings.Repeat("x", maxURIBytes)
	before := gated()
	req := mcpgo.ReadResourceRequest{}
	req.Params.URI = long
	if _, err := a.ReadResource(context.Background(), req); err == nil || !strings.Contains(err.Error(), "more than the 8192") {
		t.Errorf("reading a %d-byte URI: %v", len(long), err)
	}
	if err := rawRequest(t, a, "sub-long", "resources/subscribe", map[string]any{"uri": long}); err == nil || !strings.Contains(err.Error(), "more than the 8192") {
		t.Errorf("subscribing to a %d-byte URI: %v", len(long), err)
	}
	if n := gated() - before; n != 0 {
		t.Errorf("the over-long URI made %d gated calls", n)
	}

	uri := func(i int) string { return fmt.Sprintf("up://t/%d", i) }
	subscribe := func(i int) error {
		return rawRequest(t, a, fmt.Sprint("sub-", i), "resources/subscribe", map[string]any{"uri": uri(i)})
	}
	for i := range maxSubscriptions {
		if err := subscribe(i); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	before = gated()
	if err := subscribe(maxSubscriptions); err == nil || !strings.Contains(err.Error(), "unsubscribe from one first") {
		t.Errorf("subscription %d: %v, want a refusal", maxSubscriptions+1, err)
	}
	if n := gated() - before; n != 0 {
		t.Errorf("the refused subscription made %d gated calls", n)
	}
	if err := subscribe(0); err != nil {
		t.Errorf("subscribing again to %s: %v", uri(0), err)
	}
	if err := rawRequest(t, a, "unsub-0", "resources/unsubscribe", map[string]any{"uri": uri(0)}); err != nil {
		t.Fatal(err)
	}
	if err := subscribe(maxSubscriptions); err != nil {
		t.Errorf("subscribing after an unsubscribe: %v", err)
	}
}
