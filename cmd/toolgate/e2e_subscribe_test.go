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

// TestServeResourceUpdateCarriesOnlyTheURI: a subscription is decided as
// a read of the resource (the rules deny secret://env, whose updates
// would tell when it changed; the decision is audited), and an upstream
// that puts a resource's content into notifications/resources/updated
// (testdata upstream's touch) passes the subscriber the URI alone.
func TestServeResourceUpdateCarriesOnlyTheURI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules:\n"+
		"  - {name: no-env, match: 'call.kind == \"resource\" && args.uri == \"secret://env\"', action: deny, reason: a secret}\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--resources, \"secret://env,notes://a\"]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n", upstreamBin, rules, db))
	c, n, _ := startStdio(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "secret://env"}}); err == nil || !strings.Contains(err.Error(), "no-env") {
		t.Fatalf("subscribe to secret://env: %v; want a refusal by no-env", err)
	}
	if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "notes://a"}}); err != nil {
		t.Fatalf("subscribe to notes://a: %v", err)
	}
	if out := rvCLI(t, nil, "audit", "list", "--db", db, "--kind", "resource"); !strings.Contains(out, "no-env") || !strings.Contains(out, "notes://a") {
		t.Errorf("audit list --kind resource: the subscriptions' decisions missing:\n%s", out)
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
