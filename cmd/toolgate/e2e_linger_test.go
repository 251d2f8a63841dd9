package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestServeQuestionOfATimedOutCallReachesNoOtherAgent: a team server, one
// upstream process for everyone, calls timing out after 500ms. Bob's agent
// keeps a call in flight back to back; alice's call times out while the
// upstream, ignoring the cancellation, goes on and then asks a question
// about it ("drop alice's database?"). Alice stopped waiting, so the
// question is refused; it must not reach bob, whose call is the only one
// toolgate still waits for.
func TestServeQuestionOfATimedOutCallReachesNoOtherAgent(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules: []\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, timeout: 500ms}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nhttp:\n  tokens: true\n", upstreamBin, rules, db))
	aliceTok, bobTok := createToken(t, db, "alice"), createToken(t, db, "bob")
	g := startHTTPProc(t, cfg)
	session := func(bearer string) (*client.Client, userAnswers) {
		user := userAnswers{asked: make(chan string, 16)}
		c, _ := bearerClient(t, g.base, bearer, true, client.WithElicitationHandler(user))
		return c, user
	}
	alice, aliceUser := session(aliceTok)
	bob, bobUser := session(bobTok)

	// Bob's calls, back to back, each within the timeout.
	defer backToBack(bob, 0.3)()
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := callTool(ctx, alice, "up__ask_as", map[string]any{"message": "Confirm: drop alice's database prod-alice?", "delay_ms": 800}, "")
	if err == nil && !strings.Contains(resultText(res), "timed out") {
		t.Fatalf("alice's call: %q, want a timeout", resultText(res))
	}
	// The upstream asks about 300ms after the timeout.
	toolgatetest.EventuallyWithin(t, "the upstream's question", 20*time.Second, func() bool {
		return strings.Contains(g.stderr.String(), "upstream elicitation")
	})
	select {
	case q := <-bobUser.asked:
		t.Fatalf("bob's user was asked alice's question: %q", q)
	case q := <-aliceUser.asked:
		t.Fatalf("alice's user was asked after her call had timed out: %q", q)
	default:
	}
	if log := g.stderr.String(); !strings.Contains(log, "upstream elicitation refused") || !strings.Contains(log, "given up") {
		t.Errorf("toolgate's log does not say the question was refused for a call given up on:\n%s", log)
	}
}

// TestServeLogMessagesOfAnAnsweredCallStayWithTheirPrincipal: the line an
// upstream logs while running alice's call may arrive just after its
// answer (mcp-go's stdio server writes notifications from a goroutine of
// its own), when bob's call is the only one in flight: it must not reach
// bob.
func TestServeLogMessagesOfAnAnsweredCallStayWithTheirPrincipal(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	rules := writeFile(t, dir, "rules.yaml", "version: 1\ndefault: allow\nrules: []\n")
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--logging]}\n"+
		"workspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\nhttp:\n  tokens: true\n", upstreamBin, rules, db))
	aliceTok, bobTok := createToken(t, db, "alice"), createToken(t, db, "bob")
	base := startHTTP(t, cfg)
	session := func(bearer string) (*client.Client, *notes) { return bearerClient(t, base, bearer, true) }
	alice, _ := session(aliceTok)
	bob, _ := session(bobTok)
	bobLog, bobLines := session(bobTok)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.SetLevelRequest{}
	req.Params.Level = mcp.LoggingLevelDebug
	if err := bobLog.SetLevel(ctx, req); err != nil {
		t.Fatalf("logging/setLevel: %v", err)
	}

	stopBob := backToBack(bob, 0.05)
	for i := range 40 {
		text := fmt.Sprintf("alice's secret %d", i)
		if out := mustCall(t, alice, "up__say", map[string]any{"text": text, "quick": true}); out != "said "+text {
			t.Fatalf("say %q: %s", text, out)
		}
	}
	stopBob()
	time.Sleep(500 * time.Millisecond) // lines still on their way
	n := 0
	for _, l := range bobLines.logLines() {
		if strings.Contains(l, "alice") {
			n++
		}
	}
	if n > 0 {
		t.Errorf("bob's log session got %d of alice's 40 lines", n)
	}
}

// backToBack makes c call up__slow for seconds, again and again, until
// the returned func is called (it returns once the last call ended).
func backToBack(c *client.Client, seconds float64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = callTool(ctx, c, "up__slow", map[string]any{"seconds": seconds, "steps": 1}, "")
			cancel()
		}
	})
	return func() { close(done); wg.Wait() }
}
