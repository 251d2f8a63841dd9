package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/mcp/agent"
)

// Upstreams may ask the user for input while one of their tools runs (MCP
// elicitation: "which branch?", "confirm the deletion"). toolgate declares
// the capability to its upstreams and relays each question to the agent
// whose request is in flight on that upstream connection, each line of its
// message prefixed with the upstream's name so the user sees who asks (see
// attributed); the agent's client shows it and returns the answer. A URL
// to open (url mode) goes only to a client that declared that mode. The question and answer are not recorded (they
// may hold what the user typed); the log says that one was asked, by whom,
// during which request, and the answer's action.
//
// The protocol (2025-11-25) does not tie a server's request to the request
// it is made for, so the agent is inferred: the one whose requests are in
// flight on the connection. Every request toolgate forwards counts, not
// only tool calls: a question asked while one agent reads a resource must
// not reach another agent whose tool call happens to be running. When
// requests of several agents are in flight (an HTTP toolgate shared by
// agents, one upstream process), or one toolgate sends on no agent's behalf
// (a subscription restored after a reconnection), toolgate cannot tell
// whose user to ask and answers the upstream with an error.

// inflight is a request forwarded on a connection and not yet answered.
type inflight struct {
	ctx context.Context
	// call is the tool call, nil for any other request.
	call *toolgate.Call
	// what names a request that is not a tool call, for the log:
	// "resources/read <uri>".
	what string
}

// logAttrs are what the log says of the request a question was asked during.
func (f inflight) logAttrs() []any {
	if f.call == nil {
		return []any{"request", f.what}
	}
	return []any{"call_id", f.call.ID, "tool", f.call.Tool}
}

// track records a tool call in flight on c until the returned func is
// called.
func (c *conn) track(ctx context.Context, call *toolgate.Call) (untrack func()) {
	return c.fly(inflight{ctx: ctx, call: call})
}

// trackRequest records a request other than a tool call (method and its
// target, for the log) in flight on c until the returned func is called.
// ctx is the agent's request; one without a client session is toolgate's
// own.
func (c *conn) trackRequest(ctx context.Context, method, target string) (untrack func()) {
	return c.fly(inflight{ctx: ctx, what: method + " " + target})
}

func (c *conn) fly(f inflight) (untrack func()) {
	if p, ok := agentPrincipal(f); ok {
		c.served.note(p)
	}
	c.flightMu.Lock()
	c.flightSeq++
	seq := c.flightSeq
	if c.flights == nil {
		c.flights = map[uint64]inflight{}
	}
	c.flights[seq] = f
	c.flightMu.Unlock()
	return func() {
		c.flightMu.Lock()
		delete(c.flights, seq)
		c.flightMu.Unlock()
	}
}

// asker returns the request whose agent an upstream's question goes to:
// the latest in flight, provided all in flight are one agent's session. A
// request without a session is no agent's, so it is never the same asker
// as another request. tool is the upstream tool the question is put down
// to (elicitMarks): the latest's, when every request in flight is a tool
// call; "" otherwise, as the question may be a read's or a prompt's.
func (c *conn) asker() (f inflight, tool string, err error) {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	var (
		maxSeq    uint64
		session   string
		onlyCalls = true
	)
	for seq, g := range c.flights {
		id := ""
		if s := server.ClientSessionFromContext(g.ctx); s != nil {
			id = s.SessionID()
		}
		if id == "" {
			id = fmt.Sprintf("\x00toolgate-%d", seq) // no agent's: equal to no other
		}
		if maxSeq != 0 && id != session {
			return inflight{}, "", errors.New("requests of several agents are in flight on this upstream, so toolgate cannot tell whose user to ask")
		}
		session = id
		onlyCalls = onlyCalls && g.call != nil
		if seq > maxSeq {
			f, maxSeq = g, seq
		}
	}
	if maxSeq == 0 {
		return inflight{}, "", errors.New("no request to this upstream is in flight, so there is no user to ask")
	}
	if onlyCalls {
		tool = f.call.Tool
	}
	return f, tool, nil
}

// elicitRelay is an upstream connection's elicitation handler.
type elicitRelay struct {
	u *upstream
	c *conn
}

func (r elicitRelay) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	f, tool, err := r.c.asker()
	if err == nil {
		// Whether or not this agent can answer, the tool elicits: from
		// now on it is not listed to agents that cannot.
		if tool != "" && r.u.elicits.note(tool) {
			r.u.log.Info("tool asks the user questions; hidden from clients without elicitation", "tool", tool)
			go r.u.cat.rebuild()
		}
		err = agent.CanElicitMode(f.ctx, req.Params.Mode)
	}
	if err == nil {
		err = plainForm(req.Params.RequestedSchema, 0)
	}
	if err != nil {
		r.u.log.Warn("upstream elicitation refused", "err", err)
		return nil, fmt.Errorf("toolgate: %w", err)
	}
	log := r.u.log.With(f.logAttrs()...)
	req.Params.Message = r.u.attributed(req.Params.Message)
	// The form's fields in the upstream's order, not mcp-go's sorted map.
	req.Params.RequestedSchema = r.u.schemas.original(req.Params.RequestedSchema)
	// The answer is the request's: it ends when the request does, or when
	// the upstream withdraws the question.
	ask, cancel := context.WithCancel(f.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	res, err := agent.Elicit(ask, req)
	if err != nil {
		log.Warn("upstream elicitation failed", "err", err)
		return nil, fmt.Errorf("toolgate: asking the agent's user: %w", err)
	}
	log.Info("upstream elicitation answered", "action", res.Action)
	return res, nil
}

// elicitMarks are the upstream tools seen asking the user something during
// a call: the tool of the call an elicitation was relayed for (or refused
// for want of a client that can answer), when only tool calls were in
// flight (a question asked while a read or prompt is in flight may be
// that request's, and marking a tool for it would hide the tool). toolgate cannot know it sooner:
// nothing in a tool's definition says it elicits, and an upstream that
// lists some tools only to clients that can elicit sees toolgate, which
// declares the capability to every upstream, as one. The zero value is
// ready to use.
type elicitMarks struct {
	mu    sync.Mutex
	tools map[string]bool // upstream tool names
}

// note marks tool; it reports whether the mark is new.
func (m *elicitMarks) note(tool string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tools[tool] {
		return false
	}
	if m.tools == nil {
		m.tools = map[string]bool{}
	}
	m.tools[tool] = true
	return true
}

// mark returns ts with Elicits set on the marked tools (a copy when any is).
func (m *elicitMarks) mark(ts []Tool) []Tool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.tools) == 0 {
		return ts
	}
	out := slices.Clone(ts)
	for i := range out {
		if m.tools[out[i].Def.Name] {
			out[i].Elicits = true
		}
	}
	return out
}
