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

// TestServeResourceUpdateCarriesOnlyTheURI: a session subscribes only to
// a resource it has read, so the rules decide who learns when a resource
// changes as they decide its reads; and an upstream that puts a
// resource's content into notifications/resources/updated (testdata
// upstream's touch) passes the subscriber the URI alone.
func TestServeResourceUpdateCarriesOnlyTheURI(t *testing.T) {
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules:\n"+
		"  - {name: no-env, match: 'call.kind == \"resource\" && args.uri == \"secret://env\"', action: deny, reason: a secret}\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--resources, \"secret://env,notes://a\"]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n", upstreamBin, rules, filepath.Join(dir, "audit.db")))
	c, n, _ := startStdio(t, cfg)

	if text, err := readResource(t, c, "secret://env"); err == nil || !strings.Contains(err.Error(), "no-env") {
		t.Fatalf("read secret://env: %q, %v; want a refusal by no-env", text, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, uri := range []string{"secret://env", "notes://a"} { // read and refused; not read yet
		if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}}); err == nil || !strings.Contains(err.Error(), "read it first") {
			t.Fatalf("subscribe to %s: %v; want a refusal", uri, err)
		}
	}
	if _, err := readResource(t, c, "notes://a"); err != nil {
		t.Fatalf("read notes://a: %v", err)
	}
	if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "notes://a"}}); err != nil {
		t.Fatalf("subscribe to notes://a once read: %v", err)
	}
	mustCall(t, c, "up__touch", map[string]any{"uri": "notes://a"})
	toolgatetest.EventuallyWithin(t, "the update", 20*time.Second, func() bool { return n.count(string(mcp.MethodNotificationResourceUpdated)) > 0 })
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range n.all {
		if x.Method != string(mcp.MethodNotificationResourceUpdated) {
			continue
		}
		if p := x.Params; len(p.AdditionalFields) != 1 || p.AdditionalFields["uri"] != "notes://a" || len(p.Meta) != 0 {
			t.Errorf("update params %+v; want the URI alone", p)
		}
	}
}
