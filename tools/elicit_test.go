package tools

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// agentSession is an agent's MCP session as the mcp package puts it in a
// call's context; its user answers elicitations with answer.
type agentSession struct {
	id     string
	caps   mcp.ClientCapabilities
	answer func(mcp.ElicitationRequest) *mcp.ElicitationResult
	asked  chan string
}

func (s *agentSession) SessionID() string                                   { return s.id }
func (s *agentSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return nil }
func (s *agentSession) Initialize()                                         {}
func (s *agentSession) Initialized() bool                                   { return true }
func (s *agentSession) GetClientInfo() mcp.Implementation                   { return mcp.Implementation{Name: s.id} }
func (s *agentSession) SetClientInfo(mcp.Implementation)                    {}
func (s *agentSession) GetClientCapabilities() mcp.ClientCapabilities       { return s.caps }
func (s *agentSession) SetClientCapabilities(mcp.ClientCapabilities)        {}
func (s *agentSession) RequestElicitation(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	s.asked <- req.Params.Message
	return s.answer(req), nil
}

// servedAsR adds to up the tool "wait", which answers once release is
// closed, and returns a catalog with up as its upstream "r", up.
func servedAsR(t *testing.T, up *server.MCPServer) (c *Catalog, release chan struct{}) {
	release = make(chan struct{})
	up.AddTool(mcp.NewTool("wait"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-release
		return mcp.NewToolResultText("released"), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(srv.Close)
	c = startCatalog(t, Options{Upstreams: []Upstream{{Name: "r", URL: srv.URL + "/mcp"}}})
	toolgatetest.Eventually(t, "the upstream up", func() bool { return c.Status()[0].Up })
	return c, release
}

// TestElicitationRelayed: an upstream's question during a call reaches the
// user of the agent that made the call, named as the upstream's, and the
// answer goes back to the upstream; it is refused when the agent cannot be
// asked, or when calls of several agents are in flight.
func TestElicitationRelayed(t *testing.T) {
	up := server.NewMCPServer("asker", "1", server.WithToolCapabilities(true), server.WithElicitation())
	up.AddTool(mcp.NewTool("ask"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := up.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message:         "which branch?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"branch": map[string]any{"type": "string"}}},
		}})
		if err != nil {
			return mcp.NewToolResultError("no answer: " + err.Error()), nil
		}
		return mcp.NewToolResultText(fmt.Sprintf("%s %v", res.Action, res.Content)), nil
	})
	c, release := servedAsR(t, up)

	agent := func(id string, elicits bool) *agentSession {
		a := &agentSession{id: id, asked: make(chan string, 1), answer: func(mcp.ElicitationRequest) *mcp.ElicitationResult {
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"branch": "main"}}}
		}}
		if elicits {
			a.caps.Elicitation = &mcp.ElicitationCapability{}
		}
		return a
	}
	ask := func(a *agentSession) string {
		ctx := up.WithContext(context.Background(), a) // any server's WithContext puts the session in the context
		res, err := c.Forward(ctx, call(c, "r__ask", nil))
		if err != nil {
			t.Fatal(err)
		}
		return text(res)
	}

	a := agent("agent-a", true)
	if got := ask(a); got != "accept map[branch:main]" {
		t.Errorf("answer reaching the upstream: %q", got)
	}
	if q := <-a.asked; q != "[r] which branch?" {
		t.Errorf("question shown to the user: %q", q)
	}

	if got := ask(agent("no-elicitation", false)); !strings.Contains(got, "did not declare the elicitation capability") {
		t.Errorf("agent without the capability: %q", got)
	}

	// Another agent's call in flight: whose user to ask is unknown.
	other := agent("agent-b", true)
	waiting := make(chan string, 1)
	go func() {
		ctx := up.WithContext(context.Background(), other)
		res, err := c.Forward(ctx, call(c, "r__wait", nil))
		if err != nil {
			waiting <- err.Error()
			return
		}
		waiting <- text(res)
	}()
	toolgatetest.Eventually(t, "the other agent's call in flight", func() bool {
		cn := c.byNm["r"].conn
		return activeFlights(cn) == 1
	})
	if got := ask(a); !strings.Contains(got, "several agents") {
		t.Errorf("with two agents' calls in flight: %q", got)
	}
	close(release)
	if got := <-waiting; got != "released" {
		t.Errorf("the other call: %q", got)
	}
	select {
	case q := <-other.asked:
		t.Errorf("the other agent's user was asked %q", q)
	case q := <-a.asked:
		t.Errorf("the user was asked %q although the agent could not be told apart", q)
	default:
	}
}

// askingCompleter completes a prompt argument with the answer to a question.
type askingCompleter func(context.Context) string

func (q askingCompleter) CompletePromptArgument(ctx context.Context, _ string, _ mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{q(ctx)}}, nil
}

// TestElicitationDuringOtherRequests: a question an upstream asks while it
// answers a resource read, a prompt get or a completion goes to the agent that made that
// request, never to another agent whose tool call is in flight on the same
// connection: with both in flight it is refused, and neither user is asked.
// Nor is a tool marked as asking for a question it did not ask.
func TestElicitationDuringOtherRequests(t *testing.T) {
	var question askingCompleter
	up := server.NewMCPServer("asker", "1", server.WithToolCapabilities(true), server.WithResourceCapabilities(false, false),
		server.WithPromptCapabilities(false), server.WithElicitation(), server.WithCompletions(), server.WithPromptCompletionProvider(&question))
	question = func(ctx context.Context) string {
		res, err := up.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message:         "your password?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"branch": map[string]any{"type": "string"}}},
		}})
		if err != nil {
			return "no answer: " + err.Error()
		}
		return fmt.Sprintf("%s %v", res.Action, res.Content)
	}
	up.AddResourceTemplate(mcp.NewResourceTemplate("ask://{x}", "ask"), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: question(ctx)}}, nil
	})
	up.AddPrompt(mcp.NewPrompt("ask"), func(ctx context.Context, _ mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(question(ctx)))}), nil
	})
	c, release := servedAsR(t, up)
	toolgatetest.Eventually(t, "the upstream's prompt", func() bool { _, ok := c.LookupPrompt("r__ask"); return ok })
	prompt, _ := c.LookupPrompt("r__ask")

	agent := func(id string) *agentSession {
		return &agentSession{id: id, caps: mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{}}, asked: make(chan string, 1),
			answer: func(mcp.ElicitationRequest) *mcp.ElicitationResult {
				return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"branch": id}}}
			}}
	}
	alice, bob := agent("alice"), agent("bob")
	read := func(a *agentSession) string {
		res, err := c.ReadResource(up.WithContext(context.Background(), a), "r", "ask://1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Contents[0].(mcp.TextResourceContents).Text
	}
	get := func(a *agentSession) string {
		res, err := c.GetPrompt(up.WithContext(context.Background(), a), prompt, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Messages[0].Content.(mcp.TextContent).Text
	}
	complete := func(a *agentSession) string {
		res, err := c.Complete(up.WithContext(context.Background(), a), "r", mcp.PromptReference{Type: "ref/prompt", Name: "ask"}, mcp.CompleteArgument{Name: "x"}, mcp.CompleteContext{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Values[0]
	}
	noneAsked := func(when string) {
		t.Helper()
		for _, a := range []*agentSession{alice, bob} {
			select {
			case q := <-a.asked:
				t.Errorf("%s: %s's user was asked %q", when, a.id, q)
			default:
			}
		}
	}

	// Alone, the reader's own user is asked.
	if got := read(bob); got != "accept map[branch:bob]" {
		t.Errorf("bob's read alone: %q", got)
	}
	select {
	case q := <-bob.asked:
		if q != "[r] your password?" {
			t.Errorf("question shown to bob: %q", q)
		}
	default:
		t.Error("bob's user was not asked during his read") // the question is answered before the read is
	}

	// Alice's tool call in flight: bob's read and prompt may not reach her.
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Forward(up.WithContext(context.Background(), alice), call(c, "r__wait", nil))
		waiting <- err
	}()
	toolgatetest.Eventually(t, "alice's call in flight", func() bool {
		cn := c.byNm["r"].conn
		return activeFlights(cn) == 1
	})
	if got := read(bob); !strings.Contains(got, "no answer") || !strings.Contains(got, "several agents") {
		t.Errorf("bob's read with alice's call in flight: %q", got)
	}
	if got := get(bob); !strings.Contains(got, "no answer") || !strings.Contains(got, "several agents") {
		t.Errorf("bob's prompt with alice's call in flight: %q", got)
	}
	if got := complete(bob); !strings.Contains(got, "no answer") || !strings.Contains(got, "several agents") {
		t.Errorf("bob's completion with alice's call in flight: %q", got)
	}
	noneAsked("with alice's call in flight")
	close(release)
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	if c.byNm["r"].elicits.mark([]Tool{{Def: mcp.Tool{Name: "wait"}}})[0].Elicits {
		t.Error("the tool in flight was marked as asking the user for a read's question")
	}
}

// TestAsker: whose user an upstream's question goes to, from what is in
// flight on the connection, and which tool it is put down to.
func TestAsker(t *testing.T) {
	srv := server.NewMCPServer("x", "1")
	sess := func(id string) context.Context { return srv.WithContext(context.Background(), &agentSession{id: id}) }
	tool := func(ctx context.Context, name string) func(*conn) {
		return func(c *conn) { c.track(ctx, &toolgate.Call{Tool: name}) }
	}
	req := func(ctx context.Context) func(*conn) {
		return func(c *conn) { c.trackRequest(ctx, "resources/read", "x://1") }
	}
	for _, tc := range []struct {
		name      string
		flights   []func(*conn)
		wantWhat  string // the asker's request; "" for a tool call
		wantTool  string
		wantError string
	}{
		{name: "nothing in flight", wantError: "no request"},
		{name: "one call", flights: []func(*conn){tool(sess("a"), "t1")}, wantTool: "t1"},
		{name: "one agent's calls: the latest", flights: []func(*conn){tool(sess("a"), "t1"), tool(sess("a"), "t2")}, wantTool: "t2"},
		{name: "one agent's call and read: no tool to mark", flights: []func(*conn){tool(sess("a"), "t1"), req(sess("a"))}, wantWhat: "resources/read x://1"},
		{name: "one agent's read and, later, call: no tool to mark", flights: []func(*conn){req(sess("a")), tool(sess("a"), "t1")}},
		{name: "a read alone", flights: []func(*conn){req(sess("b"))}, wantWhat: "resources/read x://1"},
		{name: "two agents' calls", flights: []func(*conn){tool(sess("a"), "t1"), tool(sess("b"), "t2")}, wantError: "several agents"},
		{name: "one agent's call, another's read", flights: []func(*conn){tool(sess("a"), "t1"), req(sess("b"))}, wantError: "several agents"},
		{name: "an agent's call and toolgate's own request", flights: []func(*conn){tool(sess("a"), "t1"), req(context.Background())}, wantError: "several agents"},
		{name: "two of toolgate's own requests", flights: []func(*conn){req(context.Background()), req(context.Background())}, wantError: "several agents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{}
			for _, fly := range tc.flights {
				fly(c)
			}
			f, tool, err := c.asker()
			switch {
			case tc.wantError != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Errorf("asker() error = %v, want %q", err, tc.wantError)
				}
			case err != nil:
				t.Errorf("asker() = %v", err)
			case tool != tc.wantTool || f.what != tc.wantWhat:
				t.Errorf("asker() = request %q, tool %q; want %q, %q", f.what, tool, tc.wantWhat, tc.wantTool)
			}
		})
	}
}

// activeFlights is how many requests toolgate waits for on c.
func activeFlights(c *conn) int {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	n := 0
	for _, f := range c.flights {
		if f.state == flightActive {
			n++
		}
	}
	return n
}

// fakeClock is a conn's clock in tests.
type fakeClock struct{ t time.Time }

func (k *fakeClock) now() time.Time      { return k.t }
func (k *fakeClock) add(d time.Duration) { k.t = k.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_000_000, 0)} }
func clocked(k *fakeClock, linger time.Duration) *conn {
	return &conn{served: &served{}, now: k.now, linger: linger}
}

// TestAskerLingering: a request its agent gave up on (cancelled, timed
// out) while the upstream may still be working on it lingers: the
// upstream's question then reaches no other agent, and not its own either
// (it stopped waiting), until the linger is over; an answered request does
// not count.
func TestAskerLingering(t *testing.T) {
	srv := server.NewMCPServer("x", "1")
	sess := func(id string) context.Context { return srv.WithContext(context.Background(), &agentSession{id: id}) }
	alice, alice2, bob := sess("alice"), sess("alice"), sess("bob")
	call := func(c *conn, ctx context.Context, tool string) flight {
		return c.track(ctx, &toolgate.Call{Tool: tool})
	}
	gaveUp := func(f flight) { f.land(false) }
	answered := func(f flight) { f.land(true) }

	t.Run("alice's call lingers, bob's is in flight: refused, not bob's", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, 500*time.Millisecond)
		a := call(c, alice, "drop")
		call(c, bob, "slow")
		gaveUp(a)
		if f, _, err := c.asker(); err == nil || !strings.Contains(err.Error(), "several agents") || !strings.Contains(err.Error(), "given up") {
			t.Fatalf("asker() = %v, %v; want refused", f.logAttrs(), err)
		}
		k.add(minLinger - time.Millisecond)
		if _, _, err := c.asker(); err == nil {
			t.Fatal("asker() routed the question before the linger was over")
		}
		k.add(time.Millisecond)
		f, tool, err := c.asker()
		if err != nil || tool != "slow" {
			t.Fatalf("after the linger: asker() = %v, %q, %v; want bob's call", f.logAttrs(), tool, err)
		}
		if len(c.flights) != 1 {
			t.Errorf("flights after the linger: %d, want 1", len(c.flights))
		}
	})
	t.Run("bob's call in flight, then alice's lingers: refused", func(t *testing.T) {
		c := clocked(newFakeClock(), 0)
		call(c, bob, "slow")
		gaveUp(call(c, alice, "drop"))
		if _, _, err := c.asker(); err == nil || !strings.Contains(err.Error(), "several agents") {
			t.Fatalf("asker() = %v, want refused", err)
		}
	})
	t.Run("alice's call lingers alone: refused, she stopped waiting", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, 0)
		gaveUp(call(c, alice, "drop"))
		if _, _, err := c.asker(); err == nil || !strings.Contains(err.Error(), "given up") {
			t.Fatalf("asker() = %v, want refused", err)
		}
		k.add(minLinger)
		if _, _, err := c.asker(); err == nil || !strings.Contains(err.Error(), "no request") {
			t.Fatalf("after the linger: asker() = %v, want nothing in flight", err)
		}
	})
	t.Run("alice's call lingers, her next one is in flight: hers, no tool marked", func(t *testing.T) {
		c := clocked(newFakeClock(), 0)
		gaveUp(call(c, alice, "drop"))
		call(c, alice2, "list")
		f, tool, err := c.asker()
		if err != nil || f.call == nil || f.call.Tool != "list" || tool != "" {
			t.Fatalf("asker() = %v, %q, %v; want alice's call in flight, no tool", f.logAttrs(), tool, err)
		}
	})
	t.Run("a read given up on lingers too", func(t *testing.T) {
		c := clocked(newFakeClock(), 0)
		c.trackRequest(alice, "resources/read", "x://1").end(context.Background(), transport.NewError(context.DeadlineExceeded))
		call(c, bob, "slow")
		if _, _, err := c.asker(); err == nil {
			t.Fatal("asker() routed the question to bob")
		}
	})
	t.Run("alice's call answered, bob's in flight: bob's", func(t *testing.T) {
		c := clocked(newFakeClock(), 0)
		a := call(c, alice, "drop")
		call(c, bob, "slow")
		answered(a)
		f, tool, err := c.asker()
		if err != nil || tool != "slow" {
			t.Fatalf("asker() = %v, %q, %v; want bob's call", f.logAttrs(), tool, err)
		}
	})
	t.Run("the linger is the upstream's timeout again, at least minLinger", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, 3*minLinger)
		gaveUp(call(c, alice, "drop"))
		call(c, bob, "slow")
		k.add(3*minLinger - time.Millisecond)
		if _, _, err := c.asker(); err == nil {
			t.Fatal("asker() routed the question before the upstream's timeout passed again")
		}
		k.add(time.Millisecond)
		if _, _, err := c.asker(); err != nil {
			t.Fatalf("after the linger: asker() = %v", err)
		}
	})
	t.Run("ended requests go when the set is next written", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, 0)
		for range 5 {
			answered(call(c, alice, "a"))
		}
		gaveUp(call(c, alice, "b"))
		k.add(AnsweredGrace)
		call(c, bob, "c")
		if len(c.flights) != 2 || c.flightEnded != 1 {
			t.Fatalf("flights = %d, %d ended; want the lingering one and bob's", len(c.flights), c.flightEnded)
		}
		k.add(minLinger)
		call(c, bob, "d")
		if len(c.flights) != 2 || c.flightEnded != 0 {
			t.Fatalf("flights = %d, %d ended; want bob's two", len(c.flights), c.flightEnded)
		}
	})
}

// TestUpstreamAnswered: which ends of a request mean the upstream answered
// it, and which that toolgate gave up on it with the upstream perhaps still
// at work.
func TestUpstreamAnswered(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	rpc := newRPCError(&mcp.JSONRPCErrorDetails{Code: mcp.INVALID_PARAMS, Message: "bad"})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"a result", live, nil, true},
		{"a result as the context ends", ended, nil, true},
		{"the upstream's JSON-RPC error", live, fmt.Errorf("upstream: %w", rpc), true},
		{"the upstream's JSON-RPC error as the context ends", ended, rpc, true},
		{"mcp-go's error for a JSON-RPC error", live, mcp.ErrMethodNotFound, true},
		{"a result that does not decode", live, fmt.Errorf("bad result"), true},
		{"cancelled or timed out", ended, transport.NewError(context.Canceled), false},
		{"an error as the context ends", ended, fmt.Errorf("task: %w", context.Canceled), false},
		{"the connection failed", live, fmt.Errorf("x: %w", transport.NewError(fmt.Errorf("broken pipe"))), false},
	} {
		if got := upstreamAnswered(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: upstreamAnswered = %v, want %v", tc.name, got, tc.want)
		}
	}
}
