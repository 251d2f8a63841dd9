package mcp

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate/tools"
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
	Authenticate(ctx context.Context, bearer string) (tools.Principal, error)
}

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
}

// HTTPHandler serves MCP at /mcp (streamable HTTP, stateful sessions,
// protocol versions 2024-11-05 to 2025-11-25) and a liveness probe at
// /healthz.
type HTTPHandler struct {
	mux        *http.ServeMux
	streamable *server.StreamableHTTPServer
}

// HTTPHandler returns the handler for o. Close it on shutdown.
func (s *Server) HTTPHandler(o HTTPOptions) *HTTPHandler {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	st := server.NewStreamableHTTPServer(s.mcp,
		server.WithStreamableHTTPProtocolVersions(mcpgo.LegacyProtocolVersions()...),
		server.WithStateful(true),
		server.WithStreamableHTTPLogger(s.log),
	)
	if o.Auth == nil && o.AuthToken != "" {
		o.Auth = SharedToken{Token: o.AuthToken}
	}
	owners := &sessionOwners{m: map[string]string{}}
	mux := http.NewServeMux()
	mux.Handle(PathMCP, guard(o, s.log, owners.bind(s.log, st)))
	mux.HandleFunc(PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	return &HTTPHandler{mux: mux, streamable: st}
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends every MCP session (open SSE streams included).
func (h *HTTPHandler) Close(ctx context.Context) error {
	h.streamable.CloseSessions(ctx)
	return nil
}

// guard wraps next with, in order: Origin check (cheapest, and a browser
// attack must not learn whether a token is right), bearer auth, body limit.
func guard(o HTTPOptions, log *slog.Logger, next http.Handler) http.Handler {
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
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			r = r.WithContext(withPrincipal(r.Context(), p))
		}
		if r.Body != nil && r.Method == http.MethodPost {
			if r.ContentLength > o.MaxRequestBytes {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, o.MaxRequestBytes+1))
			if err != nil {
				http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if int64(len(body)) > o.MaxRequestBytes {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// errNoBearer: the request has no "Authorization: Bearer" credential.
var errNoBearer = errors.New("no bearer credential")

// authenticate reads the bearer credential of an Authorization header and
// asks a who it belongs to.
func authenticate(ctx context.Context, a Authenticator, header string) (tools.Principal, error) {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return tools.Principal{}, errNoBearer
	}
	cred := strings.TrimSpace(header[len(prefix):])
	if cred == "" {
		return tools.Principal{}, errNoBearer
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
func (t SharedToken) Authenticate(_ context.Context, cred string) (tools.Principal, error) {
	if t.Token == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(t.Token)) != 1 {
		return tools.Principal{}, errBadToken
	}
	user := t.User
	if user == "" {
		user = SharedUser
	}
	return tools.Principal{User: user, Auth: tools.AuthShared}, nil
}

type principalKey struct{}

// withPrincipal returns ctx carrying the principal the edge authenticated.
func withPrincipal(ctx context.Context, p tools.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the principal ctx carries, zero for none (stdio,
// or HTTP without credentials).
func principalFrom(ctx context.Context) tools.Principal {
	p, _ := ctx.Value(principalKey{}).(tools.Principal)
	return p
}

// sessionOwners binds each MCP session to the principal that opened it:
// a request naming a session (Mcp-Session-Id) must come from the same
// principal, so a session id seen in a log or a proxy is no credential.
type sessionOwners struct {
	mu sync.Mutex
	m  map[string]string // session id -> owner key
}

// ownerKey identifies a principal for session binding.
func ownerKey(p tools.Principal) string { return p.Auth + "\x00" + p.User }

// bind wraps next: requests carrying Mcp-Session-Id are checked against
// the session's owner (404 for a session toolgate never handed out, 403
// for another principal's); a response that hands out a new session id
// binds it to the requester; a DELETE that ends a session unbinds it.
func (so *sessionOwners) bind(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := ownerKey(principalFrom(r.Context()))
		if id := r.Header.Get(server.HeaderKeySessionID); id != "" {
			so.mu.Lock()
			owner, known := so.m[id]
			so.mu.Unlock()
			switch {
			case !known:
				http.Error(w, "unknown session", http.StatusNotFound)
				return
			case subtle.ConstantTimeCompare([]byte(owner), []byte(key)) != 1:
				log.Warn("http request refused: session belongs to another principal", "remote", r.RemoteAddr,
					"user", principalFrom(r.Context()).User)
				http.Error(w, "this session belongs to another principal", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			if r.Method == http.MethodDelete {
				so.mu.Lock()
				delete(so.m, id)
				so.mu.Unlock()
			}
			return
		}
		next.ServeHTTP(&sessionBinder{ResponseWriter: w, so: so, key: key}, r)
	})
}

// sessionBinder binds the session id a response hands out, before its
// headers are sent (so the client cannot use the id before it is bound).
type sessionBinder struct {
	http.ResponseWriter
	so    *sessionOwners
	key   string
	bound bool
}

func (b *sessionBinder) bindNow() {
	if b.bound {
		return
	}
	b.bound = true
	if id := b.Header().Get(server.HeaderKeySessionID); id != "" {
		b.so.mu.Lock()
		b.so.m[id] = b.key
		b.so.mu.Unlock()
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
