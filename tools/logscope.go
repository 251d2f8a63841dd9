package tools

import (
	"context"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
)

// An upstream's log messages (notifications/message) come over the one
// connection every agent session shares, and the protocol (2025-11-25)
// does not tie them to a request. What a line says (a file name, a query,
// data) may be from any request the upstream has served, so a message goes
// only to the sessions of the principal it can be put down to
// (LogAudience), as an elicitation goes to the one agent in flight:
//
//   - the principal whose requests toolgate has in flight on the
//     connection when the message arrives, when they are all one
//     principal's; a request the upstream answered within AnsweredGrace,
//     or one given up on that lingers, counts as in flight (elicit.go);
//   - with none in flight, the principal the upstream has served, when it
//     has served only one (every agent request forwarded to it since
//     toolgate started, and every resource subscription);
//   - a request toolgate makes on its own (restoring subscriptions,
//     relaying a log level) is on behalf of whoever the upstream has
//     served, so it counts as all of them;
//   - no agent request has reached the upstream yet: the message is about
//     none of them, and any session may have it.
//
// Anything else (several principals in flight, or none in flight after
// several were served) is no one's: the message goes to no agent.

// LogAudience is which agents' sessions may get an upstream's log message.
// The zero value is no one's.
type LogAudience struct {
	// Anyone: no agent's request has reached the upstream, so every
	// session that set a log level may have the message.
	Anyone bool
	// One: only the sessions of Principal may have it.
	One       bool
	Principal toolgate.Principal
}

// served records which principals' requests an upstream has served, as
// far as LogAudience needs: the first, and whether there were others. It
// outlives reconnections (a remote upstream keeps what it was sent; a
// restarted process may have written it down). A request forwarded for an
// agent reads it without a lock and, once the principal is known, without
// allocating.
type served struct {
	p atomic.Pointer[servedState]
}

type servedState struct {
	first   toolgate.Principal
	several bool
}

// note records that p's request reached the upstream.
func (s *served) note(p toolgate.Principal) {
	if s == nil {
		return
	}
	for {
		old := s.p.Load()
		if old != nil && (old.several || old.first.Same(p)) {
			return
		}
		next := &servedState{first: p}
		if old != nil {
			next = &servedState{first: old.first, several: true}
		}
		if s.p.CompareAndSwap(old, next) {
			return
		}
	}
}

// noteAgent records the principal of ctx, an agent's request (toolgate's
// own, without a client session, are on behalf of those already served).
func (s *served) noteAgent(ctx context.Context) {
	if server.ClientSessionFromContext(ctx) != nil {
		s.note(toolgate.PrincipalFrom(ctx))
	}
}

// audience collects up to two distinct principals: enough to tell one
// from several.
type audience struct {
	n int // 0, 1, or 2 for several
	p toolgate.Principal
}

func (a *audience) add(p toolgate.Principal) {
	switch {
	case a.n == 0:
		a.n, a.p = 1, p
	case a.n == 1 && !a.p.Same(p):
		a.n = 2
	}
}

// addServed adds every principal s records.
func (a *audience) addServed(s *servedState) {
	if s == nil {
		return
	}
	a.add(s.first)
	if s.several {
		a.n = 2
	}
}

// agentPrincipal is the principal of request f when an agent made it;
// ok is false for toolgate's own (no client session).
func agentPrincipal(f inflight) (p toolgate.Principal, ok bool) {
	if server.ClientSessionFromContext(f.ctx) == nil {
		return toolgate.Principal{}, false
	}
	if f.call != nil {
		return f.call.Principal, true
	}
	return toolgate.PrincipalFrom(f.ctx), true
}

// logAudience is who may have a log message arriving on c now (see the
// rules above).
func (c *conn) logAudience() LogAudience {
	var (
		a   audience
		own bool
	)
	now := c.clock()
	c.flightMu.Lock()
	c.sweepLocked(now)
	for _, f := range c.flights { // active and lingering alike
		if p, ok := agentPrincipal(f); ok {
			a.add(p)
		} else {
			own = true
		}
	}
	for _, ans := range c.lastAnswer {
		switch {
		case !now.Before(ans.until):
		case ans.own:
			own = true
		default:
			a.add(ans.p)
		}
	}
	c.flightMu.Unlock()
	var st *servedState
	if c.served != nil {
		st = c.served.p.Load()
	}
	if own || a.n == 0 {
		a.addServed(st)
	}
	switch a.n {
	case 0:
		return LogAudience{Anyone: true}
	case 1:
		return LogAudience{One: true, Principal: a.p}
	}
	return LogAudience{}
}
