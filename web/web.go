package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/auth"
	"github.com/toolgate/toolgate/redact"
)

// Prefix is where the UI is served; every path of it starts so.
const Prefix = "/ui/"

//go:embed assets
var assetFS embed.FS

//go:embed templates/*.html
var templateFS embed.FS

// Defaults for Options.
const (
	DefaultSessionTTL   = 8 * time.Hour
	DefaultPollInterval = 500 * time.Millisecond
	// maxStreams bounds the live queue streams (each polls the store).
	maxStreams = 64
)

// Options configures a Handler. Store is required.
type Options struct {
	// Store is the audit log the UI shows and records verdicts in.
	Store *audit.Store
	// Auth checks the credential a reviewer signs in with (a per-user
	// token, an OIDC access token, or the shared token), again on every
	// request of the session, so a revoked token or an expired access
	// token ends it. Nil: nobody can sign in.
	Auth auth.Authenticator
	// Decide evaluates a call under the rules in force (the gate's
	// Decider). A stored review does not keep its rule's session_grant, so
	// the UI offers an approval for the session only when Decide, on the
	// recorded call, gives the same rules version and rule and a
	// session_grant; nil never offers one.
	Decide func(ctx context.Context, c toolgate.Call) toolgate.Decision
	// MayReview says whether a signed-in principal may answer reviews;
	// the others only look. Nil lets every signed-in principal answer.
	MayReview func(toolgate.Principal) bool
	// ReadOnly serves the pages without sign-in and without any way to
	// act (toolgate ui: a local view of an audit log file).
	ReadOnly bool
	// ViewKey, on the read-only UI, is the secret every request carries:
	// in the address toolgate ui prints (?key=), which the browser swaps
	// for a cookie. Loopback is not one person: another local account, or
	// a sandboxed command with the host's network, would read the log.
	// "" lets whoever connects see it.
	ViewKey string
	// SessionTTL bounds a sign-in (DefaultSessionTTL when zero).
	SessionTTL time.Duration
	// PollInterval is how often the live queue looks for changes
	// (DefaultPollInterval when zero).
	PollInterval time.Duration
	// Redactor masks secrets in the arguments shown, with the reviewers'
	// marks (Redactor.ForReviewers is applied to it, as the Slack
	// messages and `review list` do); redact's default rules when nil.
	Redactor *redact.Redactor
	Logger   *slog.Logger
	Now      func() time.Time
}

// Handler serves the UI under Prefix.
type Handler struct {
	o        Options
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	cop      *http.CrossOriginProtection

	streamMu sync.Mutex
	streams  int

	verifyMu  sync.Mutex
	verified  time.Time
	verifyRep audit.VerifyReport
	verifyErr error

	shownMu sync.Mutex
	shown   map[string]shownCall // by call ID, for the reviews pending at the last look
}

// New returns the UI handler.
func New(o Options) (*Handler, error) {
	if o.Store == nil {
		return nil, errors.New("web: Options.Store is required")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	o.Redactor = o.Redactor.ForReviewers()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{o: o, mux: http.NewServeMux(), pages: map[string]*template.Template{}, cop: http.NewCrossOriginProtection()}
	var err error
	if h.sessions, err = newSessions(o.SessionTTL, o.Now); err != nil {
		return nil, err
	}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h.mux.Handle("GET "+Prefix+"assets/", http.StripPrefix(Prefix+"assets/", http.FileServerFS(assets)))
	h.mux.HandleFunc("GET "+Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"reviews", http.StatusSeeOther)
	})
	h.mux.HandleFunc("GET "+Prefix+"signin", h.signinPage)
	h.mux.HandleFunc("POST "+Prefix+"signin", h.signin)
	h.mux.HandleFunc("POST "+Prefix+"signout", h.viewer(h.signout))
	h.mux.HandleFunc("GET "+Prefix+"reviews", h.viewer(h.reviewsPage))
	h.mux.HandleFunc("GET "+Prefix+"reviews/queue", h.viewer(h.queueFragment))
	h.mux.HandleFunc("GET "+Prefix+"events", h.viewer(h.events))
	h.mux.HandleFunc("POST "+Prefix+"reviews/{id}", h.viewer(h.verdict))
	h.mux.HandleFunc("GET "+Prefix+"dashboard", h.viewer(h.dashboardPage))
	h.mux.HandleFunc("GET "+Prefix+"api/stats", h.viewer(h.statsJSON))
	h.mux.HandleFunc("GET "+Prefix+"audit", h.viewer(h.auditPage))
	h.mux.HandleFunc("GET "+Prefix+"audit/{id}", h.viewer(h.callPage))
	h.mux.HandleFunc("GET "+Prefix+"rules", h.viewer(h.rulesPage))
	return h, nil
}

// ServeHTTP sets the security headers on every response and refuses
// cross-origin state changes (Sec-Fetch-Site / Origin against Host)
// before any handler runs; each POST handler checks its CSRF token too.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"assets/") {
		hd.Set("Cache-Control", "no-store")
	}
	if err := h.cop.Check(r); err != nil {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// Close ends the sign-ins (they live in memory only).
func (h *Handler) Close() { h.sessions.clear() }

// verifyStatus runs Verify at most once per 30 s (it reads the whole log)
// and returns the last report.
func (h *Handler) verifyStatus(ctx context.Context) (audit.VerifyReport, time.Time, error) {
	h.verifyMu.Lock()
	defer h.verifyMu.Unlock()
	now := h.o.Now()
	if h.verified.IsZero() || now.Sub(h.verified) > 30*time.Second {
		h.verifyRep, h.verifyErr = h.o.Store.Verify(ctx)
		h.verified = now
	}
	return h.verifyRep, h.verified, h.verifyErr
}

func (h *Handler) serverError(w http.ResponseWriter, what string, err error) {
	h.o.Logger.Error("web: "+what, "err", err)
	http.Error(w, what+" failed; see toolgate's log", http.StatusInternalServerError)
}
