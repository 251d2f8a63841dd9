package tools

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
)

// TestLogAudience: whose sessions may have an upstream's log message, from
// what is in flight on the connection and whom the upstream has served.
func TestLogAudience(t *testing.T) {
	srv := server.NewMCPServer("x", "1")
	alice := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken, Groups: []string{"dev"}}
	alice2 := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken} // her other token: other groups, same principal
	bob := toolgate.Principal{User: "bob", Auth: toolgate.AuthToken}
	// as is a request of p's agent, in session id.
	as := func(id string, p toolgate.Principal) context.Context {
		return toolgate.WithPrincipal(srv.WithContext(context.Background(), &agentSession{id: id}), p)
	}
	own := context.Background() // toolgate's own request: no session
	call := func(ctx context.Context) func(*conn) {
		// The edge puts the principal into the call as into ctx.
		return func(c *conn) { c.track(ctx, &toolgate.Call{Tool: "t", Principal: toolgate.PrincipalFrom(ctx)}) }
	}
	read := func(ctx context.Context) func(*conn) {
		return func(c *conn) { c.trackRequest(ctx, "resources/read", "x://1") }
	}
	anyone, none := LogAudience{Anyone: true}, LogAudience{}
	only := func(p toolgate.Principal) LogAudience { return LogAudience{One: true, Principal: p} }
	for _, tc := range []struct {
		name string
		// earlier requests, answered before the message; then those in
		// flight when it arrives.
		before, during []func(*conn)
		want           LogAudience
	}{
		{name: "nothing ever served: the upstream's own line", want: anyone},
		{name: "toolgate's own request, nothing served", during: []func(*conn){read(own)}, want: anyone},
		{name: "one principal's call in flight", during: []func(*conn){call(as("a", alice))}, want: only(alice)},
		{name: "one principal's read in flight", during: []func(*conn){read(as("a", alice))}, want: only(alice)},
		{name: "one principal's two sessions", during: []func(*conn){call(as("a", alice)), read(as("a2", alice2))}, want: only(alice)},
		{name: "two principals in flight", during: []func(*conn){call(as("a", alice)), call(as("b", bob))}, want: none},
		{name: "a call and another principal's read", during: []func(*conn){call(as("a", alice)), read(as("b", bob))}, want: none},
		{name: "after both were served, one in flight", before: []func(*conn){call(as("b", bob))}, during: []func(*conn){call(as("a", alice))}, want: only(alice)},
		{name: "after both were served, none in flight", before: []func(*conn){call(as("a", alice)), read(as("b", bob))}, want: none},
		{name: "after one was served, none in flight", before: []func(*conn){call(as("a", alice)), read(as("a2", alice2))}, want: only(alice)},
		{name: "one in flight with toolgate's own, one served", during: []func(*conn){call(as("a", alice)), read(own)}, want: only(alice)},
		{name: "toolgate's own request on behalf of another", before: []func(*conn){call(as("b", bob))},
			during: []func(*conn){call(as("a", alice)), read(own)}, want: none},
		{name: "without credentials: all one (no) principal", before: []func(*conn){call(as("x", toolgate.Principal{}))},
			during: []func(*conn){call(as("y", toolgate.Principal{}))}, want: only(toolgate.Principal{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{served: &served{}}
			for _, f := range tc.before {
				c.flights = nil
				f(c)
			}
			c.flights = nil
			for _, f := range tc.during {
				f(c)
			}
			got := c.logAudience()
			if got.Anyone != tc.want.Anyone || got.One != tc.want.One || !got.Principal.Same(tc.want.Principal) {
				t.Errorf("logAudience() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestServedNoteAllocates nothing once the principal is known: it runs on
// every forwarded request.
func TestServedNoteAllocates(t *testing.T) {
	var s served
	p := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}
	s.note(p)
	if n := testing.AllocsPerRun(100, func() { s.note(p) }); n != 0 {
		t.Errorf("note of a known principal: %v allocations", n)
	}
	s.note(toolgate.Principal{User: "bob", Auth: toolgate.AuthToken})
	if n := testing.AllocsPerRun(100, func() { s.note(p) }); n != 0 {
		t.Errorf("note after several: %v allocations", n)
	}
}

// TestLogAudienceEnded: a request answered a moment ago still counts for
// its log lines (a stdio server may write them after its answer), and one
// given up on counts while it lingers; both stop counting when their time
// is up.
func TestLogAudienceEnded(t *testing.T) {
	srv := server.NewMCPServer("x", "1")
	alice := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}
	bob := toolgate.Principal{User: "bob", Auth: toolgate.AuthToken}
	as := func(id string, p toolgate.Principal) context.Context {
		return toolgate.WithPrincipal(srv.WithContext(context.Background(), &agentSession{id: id}), p)
	}
	call := func(c *conn, p toolgate.Principal) flight {
		return c.track(as(p.User, p), &toolgate.Call{Tool: "t", Principal: p})
	}
	check := func(t *testing.T, c *conn, when string, want LogAudience) {
		t.Helper()
		got := c.logAudience()
		if got.Anyone != want.Anyone || got.One != want.One || !got.Principal.Same(want.Principal) {
			t.Errorf("%s: logAudience() = %+v, want %+v", when, got, want)
		}
	}
	only := func(p toolgate.Principal) LogAudience { return LogAudience{One: true, Principal: p} }

	t.Run("alice's call answered, bob's in flight: no one's until the grace is over", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, 0)
		a := call(c, alice)
		call(c, bob)
		a.land(true)
		check(t, c, "just after alice's answer", LogAudience{})
		k.add(AnsweredGrace - time.Millisecond)
		check(t, c, "within the grace", LogAudience{})
		k.add(time.Millisecond)
		check(t, c, "after the grace", only(bob))
	})
	t.Run("alice's call answered, nothing else in flight: hers", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, 0)
		call(c, bob).land(true)
		k.add(AnsweredGrace)
		call(c, alice).land(true)
		check(t, c, "within the grace", only(alice))
		k.add(AnsweredGrace)
		check(t, c, "after the grace, both served", LogAudience{})
	})
	t.Run("alice's call given up on, bob's in flight: no one's while it lingers", func(t *testing.T) {
		k := newFakeClock()
		c := clocked(k, time.Second)
		call(c, alice).land(false)
		call(c, bob)
		k.add(minLinger - time.Millisecond)
		check(t, c, "while alice's call lingers", LogAudience{})
		k.add(time.Millisecond)
		check(t, c, "after the linger", only(bob))
	})
}

// TestTrackAllocates: tracking and ending a call, on every forwarded
// request, toolgate's own or an agent's, allocates nothing once the set
// has room.
func TestTrackAllocates(t *testing.T) {
	alice := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}
	agent := toolgate.WithPrincipal(server.NewMCPServer("x", "1").WithContext(context.Background(), &agentSession{id: "a"}), alice)
	for name, ctx := range map[string]context.Context{"own": context.Background(), "agent": agent} {
		k := newFakeClock()
		c := clocked(k, 0)
		call := &toolgate.Call{Tool: "t", Principal: alice}
		run := func() {
			c.track(ctx, call).land(true)
			k.add(AnsweredGrace)
		}
		for range 10 {
			run()
		}
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Errorf("%s: track and land: %v allocations, want 0", name, n)
		}
	}
}
