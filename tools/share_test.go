package tools

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

var (
	alice = toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}
	bob   = toolgate.Principal{User: "bob", Auth: toolgate.AuthToken}
	carol = toolgate.Principal{User: "carol", Auth: toolgate.AuthToken}
)

// queue starts a request of p's that waits in s, and returns the channel
// its release function comes on once admitted.
func queue(t *testing.T, s *share, p toolgate.Principal) chan func() {
	t.Helper()
	k := shareKey{p.Auth, p.User}
	s.mu.Lock()
	before := len(s.waiting[k])
	s.mu.Unlock()
	got := make(chan func(), 1)
	go func() {
		release, err := s.acquire(context.Background(), p)
		if err != nil {
			t.Error(err)
			return
		}
		got <- release
	}()
	toolgatetest.Eventually(t, p.User+"'s request waiting", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiting[k]) == before+1
	})
	return got
}

func admitted(t *testing.T, who string, c chan func()) func() {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s's request was not admitted", who)
		return nil
	}
}

func notAdmitted(t *testing.T, who string, c chan func()) {
	t.Helper()
	select {
	case <-c:
		t.Fatalf("%s's request was admitted out of turn", who)
	default:
	}
}

// One place: alice holds it and queues two more; bob and carol queue one
// each after her. Places go round: bob, carol, then alice's in order.
func TestShareTakesTurns(t *testing.T) {
	s := newShare(1, 0)
	first, err := s.acquire(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	a2, a3 := queue(t, s, alice), queue(t, s, alice)
	b1 := queue(t, s, bob)
	c1 := queue(t, s, carol)
	if places, busy, waiting := s.state(); places != 1 || busy != 1 || waiting != 4 {
		t.Fatalf("state = %d places, %d busy, %d waiting; want 1, 1, 4", places, busy, waiting)
	}

	first()
	first() // freeing twice frees once
	rel := admitted(t, "alice's second", a2)
	notAdmitted(t, "bob", b1)
	rel()
	rel = admitted(t, "bob", b1)
	notAdmitted(t, "alice's third", a3)
	rel()
	rel = admitted(t, "carol", c1)
	notAdmitted(t, "alice's third", a3)
	rel()
	admitted(t, "alice's third", a3)()
	if s.busy != 0 || len(s.held) != 0 || len(s.waiting) != 0 || len(s.turn) != 0 {
		t.Fatalf("share not empty after all freed: busy %d held %v waiting %v turn %v", s.busy, s.held, s.waiting, s.turn)
	}
}

// With a per-principal limit, a principal at it waits even with places
// free, and the others are admitted past it.
func TestSharePerPrincipal(t *testing.T) {
	s := newShare(3, 2)
	var mine []func()
	for range 2 {
		r, err := s.acquire(context.Background(), alice)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, r)
	}
	a3 := queue(t, s, alice)
	r, err := s.acquire(context.Background(), bob) // the free place is bob's
	if err != nil {
		t.Fatal(err)
	}
	notAdmitted(t, "alice's third", a3)
	r()
	notAdmitted(t, "alice's third", a3) // a place is free, but she is at her limit
	mine[0]()
	admitted(t, "alice's third", a3)()
	mine[1]()
}

// A waiter that gives up leaves no trace, and one given up as it was
// admitted hands its place on.
func TestShareGiveUp(t *testing.T) {
	s := newShare(1, 0)
	hold, _ := s.acquire(context.Background(), alice)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.acquire(ctx, bob); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	s.mu.Lock()
	left := len(s.waiting) + len(s.turn)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("a waiter that gave up is still queued: %v %v", s.waiting, s.turn)
	}
	c1 := queue(t, s, carol)
	hold()
	admitted(t, "carol", c1)()

}

// Through the catalog: with one place, a call that waits past the
// upstream's timeout fails with a message saying why, another principal's
// call gets the place as soon as it frees, and a resource read waits its
// turn like a call.
func TestShareUpstream(t *testing.T) {
	srv, started, unblock := blockServer()
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "u", Server: srv, MaxRequests: 1}}})
	call := func(ctx context.Context, p toolgate.Principal, who string) (toolgate.Result, error) {
		return c.ForwardResult(ctx, blockCall(p, who))
	}
	busy := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), `upstream "u" is busy`) || !strings.Contains(err.Error(), "(max_requests)") {
			t.Fatalf("%s: %v, want the upstream busy", what, err)
		}
	}
	soon := func() context.Context {
		ctx, cancel := context.WithTimeout(toolgate.WithPrincipal(context.Background(), bob), 200*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}

	first := make(chan error, 1)
	go func() { _, err := call(context.Background(), alice, "alice"); first <- err }()
	if who := <-started; who != "alice" {
		t.Fatalf("started %q", who)
	}
	// The place is alice's until her call ends: bob's call and read wait,
	// and end with the reason when his time runs out.
	_, err := call(soon(), bob, "bob")
	busy("bob's call", err)
	_, err = c.ReadResource(soon(), "u", "mem://r", nil)
	busy("bob's read", err)
	select {
	case who := <-started:
		t.Fatalf("%s's call reached the upstream while the only place was taken", who)
	default:
	}
	// Freed: bob's call gets the place.
	second := make(chan error, 1)
	go func() { _, err := call(context.Background(), bob, "bob"); second <- err }()
	close(unblock)
	if err := <-first; err != nil {
		t.Fatalf("alice's call: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("bob's call after the place freed: %v", err)
	}
	if who := <-started; who != "bob" {
		t.Fatalf("started %q", who)
	}
	if _, err := c.ReadResource(toolgate.WithPrincipal(context.Background(), bob), "u", "mem://r", nil); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// blockServer is an upstream whose tool "block" says who called on
// started, then waits for unblock to close (unless who is "held") or its
// call to end; and with a resource, mem://r.
func blockServer() (srv *server.MCPServer, started chan string, unblock chan struct{}) {
	srv = server.NewMCPServer("inproc", "1", server.WithToolCapabilities(true), server.WithResourceCapabilities(false, false))
	started, unblock = make(chan string, 8), make(chan struct{})
	srv.AddTool(mcp.NewTool("block", mcp.WithString("who")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		who := req.GetString("who", "")
		started <- who
		wait := unblock
		if who == "held" {
			wait = nil // until the call ends
		}
		select {
		case <-wait:
			return mcp.NewToolResultText("done"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	srv.AddResource(mcp.NewResource("mem://r", "r"), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "mem://r", Text: "r"}}, nil
	})
	return srv, started, unblock
}

func blockCall(p toolgate.Principal, who string) toolgate.Call {
	return toolgate.Call{Server: "u", Tool: "block", Name: "u__block", Principal: p, Args: map[string]any{"who": who}}
}

// A call admitted late gets the rest of the upstream's timeout, and a
// timeout says how much of it went to waiting.
func TestShareTimeoutCountsTheWait(t *testing.T) {
	srv, started, unblock := blockServer()
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "u", Server: srv, MaxRequests: 1, Timeout: 2 * time.Second}}})
	first := make(chan error, 1)
	go func() { _, err := c.ForwardResult(context.Background(), blockCall(alice, "alice")); first <- err }()
	<-started
	second := make(chan error, 1)
	go func() { _, err := c.ForwardResult(context.Background(), blockCall(bob, "held")); second <- err }()
	s := c.byNm["u"].share
	toolgatetest.Eventually(t, "bob's call waiting", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.turn) == 1
	})
	time.Sleep(10 * time.Millisecond) // so the wait is long enough to be told
	close(unblock)
	if err := <-first; err != nil {
		t.Fatalf("alice's call: %v", err)
	}
	err := <-second
	if err == nil || !strings.Contains(err.Error(), "timed out after 2s, ") || !strings.Contains(err.Error(), "of it waiting for a place (max_requests)") {
		t.Fatalf("bob's call: %v, want a timeout that says it waited", err)
	}
}
