package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools"
)

// TestServeLogMessagesStayWithTheirPrincipal: a team server, one upstream
// process for everyone. Bob's agent sets the log level to debug, as a
// prompt-injected agent would to harvest what the upstream logs; the line
// the upstream logs while running alice's call (testdata upstream's say)
// reaches alice's session and not bob's, and bob's own line reaches him.
func TestServeLogMessagesStayWithTheirPrincipal(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules: []\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--logging]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nhttp:\n  tokens: true\n", upstreamBin, rules, db))
	alice, bob := createToken(t, db, "alice"), createToken(t, db, "bob")
	base := startHTTP(t, cfg)

	session := func(bearer string) (*client.Client, *notes) { return bearerClient(t, base, bearer, true) }
	// Each person calls in one session and reads the log in another, as
	// a client whose log view has a connection of its own does.
	callA, _ := session(alice)
	logA, inA := session(alice)
	callB, _ := session(bob)
	logB, inB := session(bob)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []*client.Client{logA, logB} {
		req := mcp.SetLevelRequest{}
		req.Params.Level = mcp.LoggingLevelDebug
		if err := c.SetLevel(ctx, req); err != nil {
			t.Fatalf("logging/setLevel: %v", err)
		}
	}
	say := func(c *client.Client, n *notes, text string) {
		t.Helper()
		if out := mustCall(t, c, "up__say", map[string]any{"text": text}); out != "said "+text {
			t.Fatalf("say %q: %s", text, out)
		}
		toolgatetest.EventuallyWithin(t, "the line of "+text, 20*time.Second, func() bool { return slices.Contains(n.logLines(), "working on "+text) })
	}

	say(callA, inA, "alice's ledger.xlsx")
	// Until tools.AnsweredGrace after alice's answer, a line may still be
	// hers: bob's would go to no one.
	time.Sleep(tools.AnsweredGrace)
	// bob's own line comes over the stream alice's would have.
	say(callB, inB, "bob's query")
	if got := inB.logLines(); !slices.Equal(got, []string{"working on bob's query"}) {
		t.Errorf("bob's log session got %q; want his own line alone", got)
	}
	if got := inA.logLines(); !slices.Equal(got, []string{"working on alice's ledger.xlsx"}) {
		t.Errorf("alice's log session got %q; want her own line alone", got)
	}
}
