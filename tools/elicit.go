package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
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
// whose user to ask and answers the upstream with an error. A request
// toolgate gave up on (cancelled, timed out) may still be at work on the
// upstream, so it lingers, counting as its agent's without ever being
// asked (see below): the question of alice's timed-out call is refused,
// not put to bob, whose call is still in flight.

// A request does not leave the connection's flights the moment toolgate
// is done with it:
//
//   - answered by the upstream (a result, or an error of its own), it
//     leaves, but its principal counts for log attribution for
//     AnsweredGrace (conn.lastAnswer, one entry per principal, so a busy
//     connection keeps no entry per call): mcp-go's stdio server, for one,
//     writes a request's log lines from another goroutine than its
//     response, so a line logged during the request may arrive just after
//     the answer;
//   - given up on without the upstream's answer (its context ended: the
//     agent cancelled, or the call timed out; or the connection failed), it
//     lingers for the upstream's call timeout again (at least minLinger),
//     as the upstream may still be working on it and ask a question about
//     it or log about it meanwhile. A lingering request counts as its
//     agent's request in flight for everything (another agent's question
//     is then refused, a log line no other principal's), but its agent is
//     never asked: it stopped waiting.
//
// Ended requests leave the set lazily, when it is next written or read
// (sweepLocked): no timer per request.

// flightState is where a request stands on its connection.
type flightState uint8

const (
	flightActive    flightState = iota // toolgate waits for the upstream's answer
	flightLingering                    // given up on without an answer, within the linger
)

// answeredBy is whose request the upstream answered last, until when it
// counts for log attribution: an agent's principal, or toolgate (own).
type answeredBy struct {
	p     toolgate.Principal
	own   bool
	until time.Time
}

// answerKey keys conn.lastAnswer: one entry per principal (Principal.Same)
// and one for toolgate's own requests.
type answerKey struct {
	auth, user string
	own        bool
}

// maxAnswered is how many principals' answers a connection remembers
// before it drops those whose grace is over.
const maxAnswered = 64

// AnsweredGrace is how long a request the upstream answered still counts
// for log attribution: a log line of another principal's request that
// arrives meanwhile goes to no one. minLinger is the least a request given
// up on lingers (see conn.lingerTime).
const (
	AnsweredGrace = time.Second
	minLinger     = 10 * time.Second
)

// inflight is a request forwarded on a connection: in flight, or ended
// and not yet gone (see above).
type inflight struct {
	ctx context.Context
	// call is the tool call, nil for any other request.
	call *toolgate.Call
	// what names a request that is not a tool call, for the log:
	// "resources/read <uri>".
	what string
	// state, and until when an ended request counts.
	state flightState
	until time.Time
}

// logAttrs are what the log says of the request a question was asked during.
func (f inflight) logAttrs() []any {
	if f.call == nil {
		return []any{"request", f.what}
	}
	return []any{"call_id", f.call.ID, "tool", f.call.Tool}
}

// flight is a request tracked on a connection, until end.
type flight struct {
	c   *conn
	seq uint64
}

// track records a tool call in flight on c until the returned flight ends.
func (c *conn) track(ctx context.Context, call *toolgate.Call) flight {
	return c.fly(inflight{ctx: ctx, call: call})
}

// trackRequest records a request other than a tool call (method and its
// target, for the log) in flight on c until the returned flight ends.
// ctx is the agent's request; one without a client session is toolgate's
// own.
func (c *conn) trackRequest(ctx context.Context, method, target string) flight {
	return c.fly(inflight{ctx: ctx, what: method + " " + target})
}

func (c *conn) fly(f inflight) flight {
	if p, ok := agentPrincipal(f); ok {
		c.served.note(p)
	}
	c.flightMu.Lock()
	if c.flightEnded > 0 {
		c.sweepLocked(c.clock())
	}
	c.flightSeq++
	seq := c.flightSeq
	if c.flights == nil {
		c.flights = map[uint64]inflight{}
	}
	c.flights[seq] = f
	c.flightMu.Unlock()
	return flight{c: c, seq: seq}
}

// end ends f, sent with ctx, which came back with err (nil for a result):
// answered when the upstream answered, lingering when toolgate gave up on
// it (upstreamAnswered).
func (f flight) end(ctx context.Context, err error) {
	f.land(upstreamAnswered(ctx, err))
}

// land ends f: answered says whether the upstream answered it.
func (f flight) land(answered bool) {
	c := f.c
	now := c.clock()
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	g, ok := c.flights[f.seq]
	if !ok || g.state != flightActive {
		return
	}
	if answered {
		delete(c.flights, f.seq)
		c.noteAnswered(g, now)
		return
	}
	g.state, g.until = flightLingering, now.Add(c.lingerTime())
	c.flights[f.seq] = g
	if c.flightEnded == 0 || g.until.Before(c.flightSweep) {
		c.flightSweep = g.until
	}
	c.flightEnded++
	c.sweepLocked(now)
}

// noteAnswered records that the upstream answered request g at now.
// c.flightMu is held.
func (c *conn) noteAnswered(g inflight, now time.Time) {
	p, agent := agentPrincipal(g)
	key := answerKey{own: true}
	if agent {
		key = answerKey{auth: p.Auth, user: p.User}
	}
	if c.lastAnswer == nil {
		c.lastAnswer = map[answerKey]answeredBy{}
	}
	if len(c.lastAnswer) >= maxAnswered {
		for k, a := range c.lastAnswer {
			if !now.Before(a.until) {
				delete(c.lastAnswer, k)
			}
		}
	}
	c.lastAnswer[key] = answeredBy{p: p, own: !agent, until: now.Add(AnsweredGrace)}
}

// upstreamAnswered reports whether a request sent with ctx that came back
// with err (nil for a result) was answered by the upstream: a result, or
// an error of the upstream's (a JSON-RPC error, a result that does not
// decode), as opposed to toolgate giving up on it: its context ended (the
// agent cancelled, the call timed out) or the connection failed
// (*transport.Error, which is also how a call whose context ends fails),
// with the upstream perhaps still working on it.
func upstreamAnswered(ctx context.Context, err error) bool {
	if err == nil {
		return true
	}
	if _, ok := errors.AsType[*toolgate.RPCError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*transport.Error](err); ok {
		return false
	}
	return ctx.Err() == nil
}

// lingerTime is how long a request given up on lingers: the upstream's
// call timeout again, at least minLinger. A call given up on at any point
// was allowed to run until its timeout, so an upstream that ignores the
// cancellation is covered for the whole time the call was allowed, and
// for as long again after a timeout; minLinger covers short timeouts.
func (c *conn) lingerTime() time.Duration {
	return max(c.linger, minLinger)
}

func (c *conn) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// sweepLocked drops the ended requests whose time is up, when one may be.
// c.flightMu is held.
func (c *conn) sweepLocked(now time.Time) {
	if c.flightEnded == 0 || now.Before(c.flightSweep) {
		return
	}
	ended, next := 0, time.Time{}
	for seq, f := range c.flights {
		switch {
		case f.state == flightActive:
		case !now.Before(f.until):
			delete(c.flights, seq)
		default:
			ended++
			if ended == 1 || f.until.Before(next) {
				next = f.until
			}
		}
	}
	c.flightEnded, c.flightSweep = ended, next
}

// sessionOf is the agent session of request f (seq): its client session's
// id; a request without a session is no agent's, so its "session" is equal
// to no other.
func sessionOf(f inflight, seq uint64) string {
	if s := server.ClientSessionFromContext(f.ctx); s != nil {
		if id := s.SessionID(); id != "" {
			return id
		}
	}
	return fmt.Sprintf("\x00toolgate-%d", seq)
}

// asker returns the request whose agent an upstream's question goes to:
// the latest active one, provided all active and lingering ones are one
// agent's session. A request without a session is no agent's, so it is
// never the same asker as another request. A lingering request is never
// the asker (its agent stopped waiting).
// tool is the upstream tool the question is put down to (elicitMarks): the
// latest's, when every request in flight is a tool call and none lingers;
// "" otherwise, as the question may be a read's or a prompt's, or the
// lingering call's.
func (c *conn) asker() (f inflight, tool string, err error) {
	now := c.clock()
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	c.sweepLocked(now)
	var (
		maxSeq    uint64
		session   string
		counted   bool
		several   bool
		lingering bool
		onlyCalls = true
	)
	for seq, g := range c.flights {
		id := sessionOf(g, seq)
		if counted && id != session {
			several = true
		}
		session, counted = id, true
		onlyCalls = onlyCalls && g.call != nil
		if g.state == flightLingering {
			lingering = true
			continue
		}
		if seq > maxSeq {
			f, maxSeq = g, seq
		}
	}
	switch {
	case several && lingering:
		return inflight{}, "", errors.New("requests of several agents are in flight on this upstream (one of them given up on by its agent, which the upstream may still be working on), so toolgate cannot tell whose user to ask")
	case several:
		return inflight{}, "", errors.New("requests of several agents are in flight on this upstream, so toolgate cannot tell whose user to ask")
	case maxSeq == 0 && lingering:
		return inflight{}, "", errors.New("the only request to this upstream the question can be about was given up on by its agent (cancelled or timed out) while the upstream may still be working on it, so there is no user to ask")
	case maxSeq == 0:
		return inflight{}, "", errors.New("no request to this upstream is in flight, so there is no user to ask")
	}
	if onlyCalls && !lingering {
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
