package main

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxConnsCeiling bounds the default connection cap: an idle connection
// costs toolgate about 19 KB of RSS (buffers, its goroutine), so 8192 of
// them about 150 MB. Legitimate use is far below: an agent holds
// one or two (its calls, and its session's GET stream), and the sessions of
// everyone together are capped at 4096 by default.
const maxConnsCeiling = 8192

// defaultMaxConns is the connection cap when http.max_connections is 0:
// 3/4 of the open file limit (the Go runtime raises the soft limit to the
// hard one at start), leaving the rest to the audit log, upstreams and
// sandboxed commands, which must not fail for want of descriptors however
// many peers connect; at most maxConnsCeiling.
func defaultMaxConns(fds int) int {
	if fds <= 0 {
		return maxConnsCeiling
	}
	return max(1, min(maxConnsCeiling, fds*3/4))
}

// connLimit caps the connections the HTTP servers hold open. At the cap,
// a new connection first closes the one that has been idle the longest (a
// keep-alive connection between requests; HTTP lets a server close those
// at any time), so peers holding idle connections cannot shut others out;
// with none idle, the new connection waits until one closes. Connections still sending their headers last
// at most ReadHeaderTimeout, bodies BodyTimeout.
type connLimit struct {
	slots chan struct{}
	log   *slog.Logger

	mu   sync.Mutex
	idle *list.List // of *limitedConn, longest idle first
	// Since the last warning: connections accepted at the cap, and idle
	// ones closed for them.
	atCap, closed int
	warned        time.Time
}

// capWarnEvery rate-limits the warning that the cap was reached.
const capWarnEvery = time.Minute

func newConnLimit(n int, log *slog.Logger) *connLimit {
	return &connLimit{slots: make(chan struct{}, n), log: log, idle: list.New()}
}

// listen returns ln limited by l; several listeners can share l.
func (l *connLimit) listen(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l, done: make(chan struct{})}
}

// connState is the servers' http.Server.ConnState: it keeps the list of
// idle connections.
func (l *connLimit) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.idleAt != nil {
		l.idle.Remove(lc.idleAt)
		lc.idleAt = nil
	}
	if s == http.StateIdle {
		lc.idleAt = l.idle.PushBack(lc)
	}
}

// full is called when every slot is taken: it closes the connection idle
// the longest, if any, and warns at most every capWarnEvery.
func (l *connLimit) full() {
	l.mu.Lock()
	var victim *limitedConn
	if e := l.idle.Front(); e != nil {
		victim = l.idle.Remove(e).(*limitedConn)
		victim.idleAt = nil
		l.closed++
	}
	l.atCap++
	var atCap, closed int
	if now := time.Now(); now.Sub(l.warned) >= capWarnEvery {
		atCap, closed = l.atCap, l.closed
		l.atCap, l.closed, l.warned = 0, 0, now
	}
	l.mu.Unlock()
	if victim != nil {
		_ = victim.Close()
	}
	if atCap > 0 {
		l.log.Warn("http connection cap reached: idle connections are closed for new ones, which wait when none is idle (http.max_connections)",
			"max", cap(l.slots), "accepted_at_cap", atCap, "idle_closed", closed, "per", capWarnEvery)
	}
}

// limitListener is a listener whose connections take slots of l.
type limitListener struct {
	net.Listener
	l         *connLimit
	done      chan struct{}
	closeOnce sync.Once
}

// Accept takes a slot for each connection once accepted, so that a full
// server closes an idle connection only for a peer actually waiting; the
// one connection waiting for a slot holds a descriptor meanwhile, later
// ones wait in the listen backlog.
func (ll *limitListener) Accept() (net.Conn, error) {
	c, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case ll.l.slots <- struct{}{}:
	default:
		ll.l.full()
		select {
		case ll.l.slots <- struct{}{}:
		case <-ll.done:
			_ = c.Close()
			return nil, net.ErrClosed
		}
	}
	return &limitedConn{Conn: c, l: ll.l}, nil
}

func (ll *limitListener) Close() error {
	ll.closeOnce.Do(func() { close(ll.done) })
	return ll.Listener.Close()
}

// limitedConn gives its slot back when closed (by the server, a handler
// that hijacked it, or full).
type limitedConn struct {
	net.Conn
	l         *connLimit
	idleAt    *list.Element // in l.idle while idle; guarded by l.mu
	closeOnce sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { <-c.l.slots })
	return err
}

// bodyDeadline gives each request's body d to arrive from when its handler
// starts (so right after its headers, which ReadHeaderTimeout bounds):
// reading it past that fails, and the handler answers (408 on /mcp)
// instead of waiting on a peer that stalls. net/http lifts the deadline
// when the body has been read to its end (it then reads on to see the peer
// go away), so a long call or stream is not cut: http.Server's ReadTimeout
// and WriteTimeout would cut SSE streams and calls waiting for review.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}
