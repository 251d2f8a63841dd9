package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
)

// Paths served by the HTTP handler.
const (
	PathMCP    = "/mcp"
	PathHealth = "/healthz"
)

// DefaultMaxRequestBytes limits request bodies when HTTPOptions leaves it 0.
const DefaultMaxRequestBytes = 4 << 20

// Authenticator tells who presented a bearer credential on /mcp. An
// error refuses the request (401), whatever it says: a revoked, expired,
// unknown or unverifiable credential, or a store that cannot be read.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (toolgate.Principal, error)
}

// DefaultSessionIdle is how long an HTTP session may go without a request
// before it ends, when HTTPOptions leaves SessionIdle 0.
const DefaultSessionIdle = 30 * time.Minute

// headerSessionID carries the session on every request after initialize.
const headerSessionID = "Mcp-Session-Id"

// Session caps applied when HTTPOptions leaves them 0. A session costs
// about 11 KB and lives until DELETE or SessionIdle after its last request,
// so without a cap one credential could open sessions until the gateway
// runs out of memory, for every other user too.
const (
	DefaultMaxSessions             = 4096
	DefaultMaxSessionsPerPrincipal = 64
)

// HTTPOptions configures the streamable HTTP transport.
type HTTPOptions struct {
	// Auth, when set, must accept the request's "Authorization: Bearer
	// <credential>" on /mcp; the principal it returns is every call's
	// Principal. nil with AuthToken "" serves /mcp without credentials
	// (calls have no principal).
	Auth Authenticator
	// AuthToken, when set and Auth is nil, is the one shared token
	// required on /mcp (compared in constant time); its calls' principal
	// is user "shared", auth shared-token.
	AuthToken string
	// AllowedOrigins are the browser origins accepted on /mcp
	// (scheme://host[:port]; an entry without a port matches any port).
	// Requests without an Origin header (non-browser clients) are accepted;
	// any other Origin gets 403, as MCP's DNS-rebinding guidance asks.
	AllowedOrigins []string
	// MaxRequestBytes limits a request body (413 beyond); 0 means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// SessionIdle ends a session that has had no request for this long
	// (none in progress either: an open GET stream or a call waiting for
	// review keeps it alive); 0 means DefaultSessionIdle. Clients that end
	// without DELETE would otherwise hold their session's state forever.
	// A request naming an ended session gets 404, and the client must
	// initialize a new one, as the MCP transport specifies.
	SessionIdle time.Duration
	// MaxSessions caps the live sessions of all principals together; an
	// initialize beyond it gets 503. 0 means DefaultMaxSessions.
	MaxSessions int
	// MaxSessionsPerPrincipal caps one principal's live sessions (all
	// clients without credentials are one principal); an initialize
	// beyond it gets 429, saying to end a session (DELETE) or wait for one
	// to idle out. 0 means DefaultMaxSessionsPerPrincipal.
	MaxSessionsPerPrincipal int
	// MaxRequestsPerPrincipal caps the POSTs one principal has in flight,
	// from their headers to their answer; one beyond gets 429 and its
	// connection is closed. 0 means DefaultMaxRequestsPerPrincipal.
	MaxRequestsPerPrincipal int
	// MaxRequestValues caps the object members and array elements of a
	// request body (413 beyond). 0 means DefaultMaxRequestValues.
	MaxRequestValues int
	// Now is the clock for SessionIdle; nil means time.Now.
	Now func() time.Time
}

// HTTPHandler serves MCP at /mcp (streamable HTTP, stateful sessions,
// protocol versions 2024-11-05 to 2025-11-25) and a liveness probe at
// /healthz.
type HTTPHandler struct {
	mux        *http.ServeMux
	streamable *server.StreamableHTTPServer
	sessions   *sessionTable
	owners     *sessionOwners
	log        *slog.Logger
	stop       chan struct{}
	stopOnce   sync.Once
}

// HTTPHandler returns the handler for o. Close it on shutdown.
func (s *Server) HTTPHandler(o HTTPOptions) *HTTPHandler {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxSessionsPerPrincipal <= 0 {
		o.MaxSessionsPerPrincipal = DefaultMaxSessionsPerPrincipal
	}
	if o.MaxRequestsPerPrincipal <= 0 {
		o.MaxRequestsPerPrincipal = DefaultMaxRequestsPerPrincipal
	}
	if o.MaxRequestValues <= 0 {
		o.MaxRequestValues = DefaultMaxRequestValues
	}
	h := &HTTPHandler{
		sessions: &sessionTable{idle: o.SessionIdle, now: o.Now, live: map[string]*sessionUse{}},
		owners: &sessionOwners{max: o.MaxSessions, maxPer: o.MaxSessionsPerPrincipal, idle: o.SessionIdle,
			m: map[string]string{}, count: map[string]int{}, streaming: map[string]bool{}, warned: map[string]bool{}},
		log:  s.log,
		stop: make(chan struct{}),
	}
	h.streamable = server.NewStreamableHTTPServer(s.mcp,
		server.WithStreamableHTTPProtocolVersions(mcpgo.LegacyProtocolVersions()...),
		// The table is the stateful session manager: it knows which
		// sessions are live and when each was last used.
		server.WithSessionIdManager(h.sessions),
		server.WithStreamableHTTPLogger(s.log),
	)
	if o.Auth == nil && o.AuthToken != "" {
		o.Auth = SharedToken{Token: o.AuthToken}
	}
	h.mux = http.NewServeMux()
	h.mux.Handle(PathMCP, guard(o, s.log, h.owners.bind(s.log, h.track(s.unannotatedHTTP(h.streamable)))))
	h.mux.HandleFunc(PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	go h.sweepEvery(sweepInterval(o.SessionIdle))
	return h
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends every MCP session (open SSE streams included) and stops the
// idle sweep.
func (h *HTTPHandler) Close(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	h.streamable.CloseSessions(ctx)
	return nil
}

// track keeps the session table's view of which sessions are in use. A
// GET or DELETE naming a session that is not live gets 404 here (mcp-go
// would open a listening stream for any id); a POST goes on to mcp-go,
// which answers 404 itself unless it is an initialize.
func (h *HTTPHandler) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(headerSessionID)
		if id == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !h.sessions.begin(id) {
			if r.Method != http.MethodPost {
				http.Error(w, "session not found or expired; initialize a new session", http.StatusNotFound)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		defer h.sessions.end(id)
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		p := &postStream{w: w}
		defer p.end()
		next.ServeHTTP(p, r.WithContext(context.WithValue(r.Context(), postStreamKey{}, p)))
	})
}

// A call's progress notifications must reach the agent on the call's own
// stream, before its result: clients stop listening for a request's
// progress once it is answered. mcp-go v1.2.1 queues every notification on
// the session's one channel, which the session's GET stream and every POST
// in progress all read, so a call's progress can leave on another stream
// and arrive after the result; and a POST that is finishing can take one
// off the channel and drop it (mark3labs/mcp-go#969). The conformance
// suite's tools-call-with-progress lost the last of 3 in about one run in
// four. So over HTTP toolgate writes a call's progress notifications to
// the call's response itself (postStream.notify), in order and before the
// handler returns; the stdio transport is ordered already.

// postStream is the response writer of one request of a session, through
// which toolgate can write notifications of that request. Every write,
// mcp-go's and toolgate's, holds mu; mcp-go writes an SSE event in one
// Write, so events never interleave.
type postStream struct {
	w  http.ResponseWriter
	mu sync.Mutex
	// sse: the response is an SSE stream whose headers toolgate sent;
	// mcp-go, unaware, may still write its answer as a JSON body, which is
	// then sent as one more event.
	sse bool
	// sent: headers are out (whoever sent them).
	sent bool
	// ended: the request is over and w must not be used (a notification
	// of an HTTP upstream can come after its call's result).
	ended bool
}

func (p *postStream) end() {
	p.mu.Lock()
	p.ended = true
	p.mu.Unlock()
}

type postStreamKey struct{}

func (p *postStream) Header() http.Header { return p.w.Header() }

func (p *postStream) WriteHeader(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent {
		return
	}
	p.sent = true
	p.w.WriteHeader(status)
}

func (p *postStream) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sse && strings.HasPrefix(p.w.Header().Get("Content-Type"), "application/json") {
		if err := writeEvent(p.w, bytes.TrimRight(b, "\n")); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	p.sent = true
	return p.w.Write(b)
}

func (p *postStream) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flush()
}

func (p *postStream) flush() {
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController (write deadlines) reach the
// connection.
func (p *postStream) Unwrap() http.ResponseWriter { return p.w }

// notify writes msg (a JSON-RPC notification) to the stream, making the
// response an SSE stream first if nothing has been sent. It reports false
// when the response has already gone out as something else, or the request
// is over.
func (p *postStream) notify(msg []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return false
	}
	if !p.sent {
		h := p.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		p.w.WriteHeader(http.StatusOK)
		p.sent, p.sse = true, true
	}
	if !p.sse && !strings.HasPrefix(p.w.Header().Get("Content-Type"), "text/event-stream") {
		return false
	}
	if err := writeEvent(p.w, msg); err != nil {
		return false
	}
	p.flush()
	return true
}

func writeEvent(w io.Writer, data []byte) error {
	_, err := fmt.Fprintf(w, "event: message\ndata: %s\n\n", data)
	return err
}

// notifyRequest writes a notification to the HTTP response of the request
// of ctx; false when that is not possible (not an HTTP request of a
// session, or its response already gone out as JSON), and the caller
// should queue it through mcp-go instead.
func notifyRequest(ctx context.Context, method string, params map[string]any) bool {
	p, _ := ctx.Value(postStreamKey{}).(*postStream)
	if p == nil {
		return false
	}
	msg, err := json.Marshal(mcpgo.JSONRPCNotification{
		JSONRPC:      mcpgo.JSONRPC_VERSION,
		Notification: mcpgo.Notification{Method: method, Params: mcpgo.NotificationParams{AdditionalFields: params}},
	})
	if err != nil {
		return false
	}
	return p.notify(msg)
}

// sweepInterval is how often idle sessions are looked for: a tenth of the
// idle time, within 1s..1m, so a session outlives its idle time by at most
// a tenth (and a minute).
func sweepInterval(idle time.Duration) time.Duration {
	return min(max(idle/10, time.Second), time.Minute)
}

func (h *HTTPHandler) sweepEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.sweep()
		}
	}
}

// sweep ends every session idle past the limit and returns how many.
// Ending one runs mcp-go's own DELETE handling, the only public way to free
// all it keeps per session (the registered session and its queues, log
// level, session tools and resources) and to run the unregister hooks that
// free toolgate's per-session state (subscriptions, log levels).
func (h *HTTPHandler) sweep() int {
	ids := h.sessions.expire()
	for _, id := range ids {
		h.owners.drop(id)
		req, err := http.NewRequestWithContext(context.Background(), http.MethodDelete, PathMCP, nil)
		if err != nil {
			h.log.Error("http session expiry: building the request", "err", err)
			continue
		}
		req.Header.Set(headerSessionID, id)
		w := &discardResponse{header: http.Header{}}
		h.streamable.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			h.log.Warn("http session expiry: mcp-go did not end the session", "session", id, "status", w.status)
			continue
		}
		h.log.Info("http session expired", "session", id, "idle", h.sessions.idle)
	}
	return len(ids)
}

// discardResponse is the response writer of a request toolgate makes to
// mcp-go itself; only the status is kept.
type discardResponse struct {
	header http.Header
	status int
}

func (d *discardResponse) Header() http.Header { return d.header }
func (d *discardResponse) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
func (d *discardResponse) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

// errNoSession is mcp-go's cue to answer 404 (it does for any Validate
// error).
var errNoSession = errors.New("no such session")

// sessionTable is the HTTP sessions that are live: mcp-go's SessionIdManager
// (ids, their validity, termination) plus when each was last used. A
// session that is not in the table is unknown to toolgate; there is no
// record of ended ones, which would grow without bound.
type sessionTable struct {
	idle time.Duration
	now  func() time.Time

	mu   sync.Mutex
	live map[string]*sessionUse
}

// sessionUse is one live session's use: requests in progress, and when the
// last one began or ended.
type sessionUse struct {
	active   int
	lastSeen time.Time
}

// Generate implements server.SessionIdManager: a new live session.
func (t *sessionTable) Generate() string {
	id := "mcp-session-" + rand.Text()
	t.mu.Lock()
	t.live[id] = &sessionUse{lastSeen: t.now()}
	t.mu.Unlock()
	return id
}

// Validate implements server.SessionIdManager: a session not in the table
// (never issued, deleted or expired) is an error, which mcp-go answers
// with 404.
func (t *sessionTable) Validate(id string) (isTerminated bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live[id] == nil {
		return false, errNoSession
	}
	return false, nil
}

// Terminate implements server.SessionIdManager (DELETE, and expiry):
// the session leaves the table. Clients may always end their session.
func (t *sessionTable) Terminate(id string) (isNotAllowed bool, err error) {
	t.mu.Lock()
	delete(t.live, id)
	t.mu.Unlock()
	return false, nil
}

// begin records a request of session id starting; false if id is not live.
func (t *sessionTable) begin(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.live[id]
	if u == nil {
		return false
	}
	u.active++
	u.lastSeen = t.now()
	return true
}

// end records a request of session id ending (the session may have ended
// meanwhile, by DELETE).
func (t *sessionTable) end(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u := t.live[id]; u != nil {
		u.active--
		u.lastSeen = t.now()
	}
}

// expire removes from the table, and returns, the sessions with no request
// in progress whose last one is at least the idle time ago. A request that
// begins after this finds its session gone (404); one that began before
// keeps the session live.
func (t *sessionTable) expire() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var ids []string
	for id, u := range t.live {
		if u.active == 0 && now.Sub(u.lastSeen) >= t.idle {
			ids = append(ids, id)
			delete(t.live, id)
		}
	}
	return ids
}

// guard wraps next with, in order: Origin check (cheapest, and a browser
// attack must not learn whether a token is right), bearer auth, the
// principal's requests in flight (before the body, which a peer may send
// slowly), body limits.
func guard(o HTTPOptions, log *slog.Logger, next http.Handler) http.Handler {
	load := newRequestLoad(o.MaxRequestsPerPrincipal)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(origin, o.AllowedOrigins) {
			log.Warn("http request refused: origin not allowed", "origin", origin, "remote", r.RemoteAddr)
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if o.Auth != nil {
			p, err := authenticate(r.Context(), o.Auth, r.Header.Get("Authorization"))
			if err != nil {
				log.Warn("http request refused: bad or missing bearer credential", "remote", r.RemoteAddr, "err", err)
				w.Header().Set("WWW-Authenticate", `Bearer realm="toolgate"`)
				w.Header().Set("Connection", "close")
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			r = r.WithContext(toolgate.WithPrincipal(r.Context(), p))
		}
		if r.Method == http.MethodPost {
			p := toolgate.PrincipalFrom(r.Context())
			key := ownerKey(p)
			ok, first := load.enter(key)
			if !ok {
				load.refuseBusy(log, w, r, p, first)
				return
			}
			defer load.leave(key)
		}
		if r.Body != nil && r.Method == http.MethodPost {
			if r.ContentLength > o.MaxRequestBytes {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, o.MaxRequestBytes+1))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The server's body timeout: the peer sends too slowly.
				log.Warn("http request refused: body not received in time", "remote", r.RemoteAddr, "read", len(body))
				http.Error(w, "request body not received in time", http.StatusRequestTimeout)
				return
			}
			if err != nil {
				http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if int64(len(body)) > o.MaxRequestBytes {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			if _, over := countValues(body, o.MaxRequestValues); over {
				http.Error(w, fmt.Sprintf("request body has more than %d object members and array elements", o.MaxRequestValues),
					http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = requestBody{Reader: bytes.NewReader(body), data: body}
		}
		next.ServeHTTP(w, r)
	})
}

// requestBody is a request body guard has read in full, so that handlers
// after it can look at it without consuming it.
type requestBody struct {
	*bytes.Reader
	data []byte
}

func (requestBody) Close() error { return nil }

// requestBytes returns r's body without consuming it.
func requestBytes(r *http.Request) []byte {
	if b, ok := r.Body.(requestBody); ok {
		return b.data
	}
	if r.Body == nil {
		return nil
	}
	// Not read by guard (a handler served without it): read it here.
	data, _ := io.ReadAll(r.Body)
	r.Body = requestBody{Reader: bytes.NewReader(data), data: data}
	return data
}

// errNoBearer: the request has no "Authorization: Bearer" credential.
var errNoBearer = errors.New("no bearer credential")

// authenticate reads the bearer credential of an Authorization header and
// asks a who it belongs to.
func authenticate(ctx context.Context, a Authenticator, header string) (toolgate.Principal, error) {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return toolgate.Principal{}, errNoBearer
	}
	cred := strings.TrimSpace(header[len(prefix):])
	if cred == "" {
		return toolgate.Principal{}, errNoBearer
	}
	return a.Authenticate(ctx, cred)
}

// SharedUser is the principal's user of calls made with the shared token.
const SharedUser = "shared"

// SharedToken authenticates the one shared token of a one-person setup.
type SharedToken struct {
	Token string
	// User names the principal; "" means SharedUser.
	User string
}

// errBadToken: the credential is not the shared token.
var errBadToken = errors.New("not the shared token")

// Authenticate implements Authenticator, comparing in constant time.
func (t SharedToken) Authenticate(_ context.Context, cred string) (toolgate.Principal, error) {
	if t.Token == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(t.Token)) != 1 {
		return toolgate.Principal{}, errBadToken
	}
	user := t.User
	if user == "" {
		user = SharedUser
	}
	return toolgate.Principal{User: user, Auth: toolgate.AuthShared}, nil
}

// sessionOwners binds each MCP session to the principal that opened it:
// a request naming a session (Mcp-Session-Id) must come from the same
// principal, so a session id seen in a log or a proxy is no credential.
// It also caps the sessions open at once, per principal and overall. Every
// session mcp-go creates comes from an initialize that passed the caps
// here: the only other way, a GET without a session id, is refused.
type sessionOwners struct {
	max, maxPer int
	// idle is how long an unused session lives, for the refusal's message.
	idle time.Duration

	mu    sync.Mutex
	m     map[string]string // session id -> owner key
	count map[string]int    // owner key -> its sessions, bound or being opened
	// streaming: sessions whose GET stream is open. One each, as the
	// TypeScript SDK's server allows: the stream's connection is busy for
	// as long as it lasts, so streams without a cap would let one principal
	// hold every connection the gateway may open.
	streaming map[string]bool
	total     int // all sessions, bound or being opened
	// warned: owner keys refused at their cap since they were last below
	// it, and warnedAll: the overall cap refused since the total was last
	// below it; so a client retrying in a loop is logged once, not per
	// attempt.
	warned    map[string]bool
	warnedAll bool
}

// ownerKey identifies a principal for session binding.
func ownerKey(p toolgate.Principal) string { return p.Auth + "\x00" + p.User }

// Why an initialize is refused; they stop at bind, which answers 429 or
// 503.
var (
	errPrincipalSessions = errors.New("the principal's session cap is reached")
	errAllSessions       = errors.New("the gateway's session cap is reached")
)

// bind wraps next: requests carrying Mcp-Session-Id are checked against
// the session's owner (404 for a session toolgate never handed out, 403
// for another principal's); an initialize takes one of its principal's
// session slots, and the session id its response hands out is bound to the
// requester; a DELETE that ends a session unbinds it and frees its slot.
func (so *sessionOwners) bind(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := toolgate.PrincipalFrom(r.Context())
		key := ownerKey(p)
		msg := jsonrpcMessage{}
		if r.Method == http.MethodPost {
			msg = parseMessage(requestBytes(r))
		}
		id := r.Header.Get(headerSessionID)
		if msg.Method == mcpgo.MethodInitialize && id != "" {
			// mcp-go ignores the id and opens a new session, which must
			// go through the caps and be bound like any other.
			r = r.Clone(r.Context())
			r.Header.Del(headerSessionID)
			id = ""
		}
		switch {
		case id != "":
			so.mu.Lock()
			owner, known := so.m[id]
			so.mu.Unlock()
			switch {
			case !known:
				http.Error(w, "unknown session", http.StatusNotFound)
				return
			case subtle.ConstantTimeCompare([]byte(owner), []byte(key)) != 1:
				log.Warn("http request refused: session belongs to another principal", "remote", r.RemoteAddr,
					"user", p.User)
				http.Error(w, "this session belongs to another principal", http.StatusForbidden)
				return
			}
			if r.Method == http.MethodGet {
				if !so.startStream(id) {
					http.Error(w, "this session's GET stream is already open: one per session", http.StatusConflict)
					return
				}
				defer so.endStream(id)
			}
			next.ServeHTTP(w, r)
			if r.Method == http.MethodDelete {
				so.drop(id)
			}
		case r.Method == http.MethodGet:
			// mcp-go would open a listening stream on a session of its
			// own, bound to no principal and outside the caps. A server
			// that requires sessions answers 400 to requests without one
			// (MCP streamable HTTP transport, session management).
			http.Error(w, "GET needs the Mcp-Session-Id of a session opened with initialize", http.StatusBadRequest)
		case msg.Method == mcpgo.MethodInitialize:
			if err := so.reserve(key); err != nil {
				so.refuse(log, w, r, p, msg.ID, err)
				return
			}
			b := &sessionBinder{ResponseWriter: w, so: so, key: key}
			next.ServeHTTP(b, r)
			if !b.took {
				so.release(key)
			}
		default:
			// Not a session's request and opens none (mcp-go answers 404,
			// or serves a protocol version without sessions).
			next.ServeHTTP(w, r)
		}
	})
}

// startStream marks session id's GET stream open, unless it already is.
func (so *sessionOwners) startStream(id string) bool {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.streaming[id] {
		return false
	}
	so.streaming[id] = true
	return true
}

// endStream marks session id's GET stream closed.
func (so *sessionOwners) endStream(id string) {
	so.mu.Lock()
	delete(so.streaming, id)
	so.mu.Unlock()
}

// reserve takes a session slot for key, or says which cap is reached.
func (so *sessionOwners) reserve(key string) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	switch {
	case so.count[key] >= so.maxPer:
		return errPrincipalSessions
	case so.total >= so.max:
		return errAllSessions
	}
	so.count[key]++
	so.total++
	return nil
}

// release frees a slot of key: its session ended, or the initialize that
// reserved it opened none.
func (so *sessionOwners) release(key string) {
	so.mu.Lock()
	defer so.mu.Unlock()
	so.total--
	if so.count[key]--; so.count[key] <= 0 {
		delete(so.count, key)
	}
	delete(so.warned, key)
	so.warnedAll = false
}

// take binds session id to key, in the slot key reserved for it.
func (so *sessionOwners) take(id, key string) {
	so.mu.Lock()
	so.m[id] = key
	so.mu.Unlock()
}

// drop unbinds a session that ended (DELETE or idle expiry) and frees its
// slot.
func (so *sessionOwners) drop(id string) {
	so.mu.Lock()
	key, ok := so.m[id]
	delete(so.m, id)
	so.mu.Unlock()
	if ok {
		so.release(key)
	}
}

// refuse answers an initialize refused by a cap: a JSON-RPC error (for the
// agent, and the person reading its client's error) with 429 for the
// principal's cap, 503 for the gateway's.
func (so *sessionOwners) refuse(log *slog.Logger, w http.ResponseWriter, r *http.Request, p toolgate.Principal, id json.RawMessage, err error) {
	who := p.User
	if who == "" {
		who = "clients without credentials"
	}
	status := http.StatusTooManyRequests
	text := fmt.Sprintf("too many open MCP sessions for %s (%d): end one (DELETE %s with its Mcp-Session-Id), or wait until one has been unused for %s",
		who, so.maxPer, PathMCP, so.idle)
	if errors.Is(err, errAllSessions) {
		status = http.StatusServiceUnavailable
		text = fmt.Sprintf("too many open MCP sessions on this gateway (%d): try again once some have ended", so.max)
	}
	so.mu.Lock()
	var first bool
	if errors.Is(err, errAllSessions) {
		first, so.warnedAll = !so.warnedAll, true
	} else {
		key := ownerKey(p)
		first, so.warned[key] = !so.warned[key], true
	}
	so.mu.Unlock()
	if first {
		log.Warn("http initialize refused: "+err.Error(), "user", p.User, "auth", p.Auth, "remote", r.RemoteAddr,
			"per_principal", so.maxPer, "max", so.max)
	}
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	body, _ := json.Marshal(struct {
		JSONRPC string                    `json:"jsonrpc"`
		ID      json.RawMessage           `json:"id"`
		Error   mcpgo.JSONRPCErrorDetails `json:"error"`
	}{mcpgo.JSONRPC_VERSION, id, mcpgo.JSONRPCErrorDetails{Code: codeTooManySessions, Message: text}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// codeTooManySessions is the JSON-RPC error code of a refused initialize
// (implementation-defined server errors are -32000 to -32099).
const codeTooManySessions = -32000

// jsonrpcMessage is what bind needs of a request body: whether it is an
// initialize, and its id for an error answer.
type jsonrpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method mcpgo.MCPMethod `json:"method"`
}

// parseMessage reads a body as mcp-go v1.2.1 does (encoding/json into a
// struct with these field types), so both agree on what is an initialize;
// a body that is no JSON object is none, and mcp-go refuses it.
func parseMessage(body []byte) jsonrpcMessage {
	var m jsonrpcMessage
	if json.Unmarshal(body, &m) != nil {
		return jsonrpcMessage{}
	}
	return m
}

// sessionBinder binds the session id a response hands out, before its
// headers are sent (so the client cannot use the id before it is bound).
type sessionBinder struct {
	http.ResponseWriter
	so  *sessionOwners
	key string
	// bound: the response's headers were looked at; took: they handed out
	// a session, now bound in the slot key reserved.
	bound, took bool
}

func (b *sessionBinder) bindNow() {
	if b.bound {
		return
	}
	b.bound = true
	if id := b.Header().Get(server.HeaderKeySessionID); id != "" {
		b.so.take(id, b.key)
		b.took = true
	}
}

func (b *sessionBinder) WriteHeader(code int) {
	b.bindNow()
	b.ResponseWriter.WriteHeader(code)
}

func (b *sessionBinder) Write(p []byte) (int, error) {
	b.bindNow()
	return b.ResponseWriter.Write(p)
}

// Flush keeps streaming responses (SSE) working through the wrapper.
func (b *sessionBinder) Flush() {
	b.bindNow()
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (b *sessionBinder) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// originAllowed matches an Origin header against the allow-list: scheme and
// host must match; an entry's port, when given, must match too.
func originAllowed(origin string, allowed []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return false
	}
	for _, a := range allowed {
		au, err := url.Parse(a)
		if err != nil {
			continue
		}
		if !strings.EqualFold(au.Scheme, u.Scheme) || !strings.EqualFold(au.Hostname(), u.Hostname()) {
			continue
		}
		if au.Port() == "" || au.Port() == u.Port() {
			return true
		}
	}
	return false
}
