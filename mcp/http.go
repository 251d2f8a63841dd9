package mcp

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Paths served by the HTTP handler.
const (
	PathMCP    = "/mcp"
	PathHealth = "/healthz"
)

// DefaultMaxRequestBytes limits request bodies when HTTPOptions leaves it 0.
const DefaultMaxRequestBytes = 4 << 20

// HTTPOptions configures the streamable HTTP transport.
type HTTPOptions struct {
	// AuthToken, when set, is required as "Authorization: Bearer <token>"
	// on /mcp. Compared in constant time.
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
	mux := http.NewServeMux()
	mux.Handle(PathMCP, guard(o, s.log, st))
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
		if o.AuthToken != "" && !bearerOK(r.Header.Get("Authorization"), o.AuthToken) {
			log.Warn("http request refused: bad or missing bearer token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="toolgate"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
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

func bearerOK(header, token string) bool {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(header[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

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
