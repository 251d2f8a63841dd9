package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeResourceUpdateCarriesOnlyTheURI: an upstream that puts a
// resource's content into notifications/resources/updated (testdata
// upstream's touch) cannot pass a subscriber a resource the rules deny it
// as a read: the read is refused, the subscription (which no rule
// decides) is accepted, and the update the agent gets holds the URI alone.
func TestServeResourceUpdateCarriesOnlyTheURI(t *testing.T) {
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules:\n"+
		"  - {name: no-env, match: 'call.kind == \"resource\" && args.uri == \"secret://env\"', action: deny, reason: a secret}\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--resources, secret://env]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n", upstreamBin, rules, filepath.Join(dir, "audit.db")))
	c, n, _ := startStdio(t, cfg)

	if text, err := readResource(t, c, "secret://env"); err == nil || !strings.Contains(err.Error(), "no-env") {
		t.Fatalf("read secret://env: %q, %v; want a refusal by no-env", text, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "secret://env"}}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	mustCall(t, c, "up__touch", map[string]any{"uri": "secret://env"})
	toolgatetest.EventuallyWithin(t, "the update", 20*time.Second, func() bool { return n.count(string(mcp.MethodNotificationResourceUpdated)) > 0 })
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range n.all {
		if x.Method != string(mcp.MethodNotificationResourceUpdated) {
			continue
		}
		if p := x.Params; len(p.AdditionalFields) != 1 || p.AdditionalFields["uri"] != "secret://env" || len(p.Meta) != 0 {
			t.Errorf("update params %+v; want the URI alone", p)
		}
	}
}
