package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
)

// Cookie names. The session cookie is the only credential the browser
// holds; the reviewer's token stays on the server.
const (
	cookieSession = "toolgate_ui"
	// cookieSignin carries the nonce the sign-in form's CSRF token is an
	// HMAC of (there is no session yet to hold one).
	cookieSignin = "toolgate_ui_signin"
	// cookieView carries the read-only UI's Options.ViewKey.
	cookieView = "toolgate_ui_view"
	// maxSessions bounds the sign-ins held; the oldest is dropped past it.
	maxSessions = 10000
)

// session is one sign-in, held server-side only.
type session struct {
	id      string
	cred    string // re-checked on every request: revocation ends the session
	who     toolgate.Principal
	csrf    string
	expires time.Time
	flash   flash // one message for the next page
}

// flash is a message for the next page, and the review an answer closed
// ("" for none), by which the page's script closes that review in place.
type flash struct{ text, closed string }

type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	ttl time.Duration
	now func() time.Time
	key []byte // HMAC key of sign-in CSRF tokens
}

func newSessions(ttl time.Duration, now func() time.Time) (*sessions, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("web: session key: %w", err)
	}
	return &sessions{m: map[string]*session{}, ttl: ttl, now: now, key: key}, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(cred string, who toolgate.Principal) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, x := range s.m {
			if !x.expires.After(now) {
				delete(s.m, x.id)
				continue
			}
			if oldest == nil || x.expires.Before(oldest.expires) {
				oldest = x
			}
		}
		if len(s.m) >= maxSessions && oldest != nil {
			delete(s.m, oldest.id)
		}
	}
	ss := &session{id: randomToken(), cred: cred, who: who, csrf: randomToken(), expires: now.Add(s.ttl)}
	s.m[ss.id] = ss
	return ss
}

func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil {
		return nil
	}
	if !ss.expires.After(s.now()) {
		delete(s.m, id)
		return nil
	}
	return ss
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

func (s *sessions) clear() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}

// setFlash and takeFlash pass one message to the next page of a session.
func (s *sessions) setFlash(ss *session, f flash) {
	s.mu.Lock()
	ss.flash = f
	s.mu.Unlock()
}

func (s *sessions) takeFlash(ss *session) flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := ss.flash
	ss.flash = flash{}
	return f
}

// signinCSRF is the sign-in form's CSRF token for the nonce in the
// browser's sign-in cookie.
func (s *sessions) signinCSRF(nonce string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("signin\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secure reports whether the browser reached toolgate over TLS (directly,
// or through a proxy saying so): cookies are then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// viewer is who is looking at a page.
type viewer struct {
	s *session // nil when not signed in (read-only UI)
	// reviewer: s's principal may answer reviews (Options.MayReview).
	reviewer bool
}

// canAct reports whether the viewer may answer reviews.
func (v viewer) canAct() bool { return v.s != nil && v.reviewer }

type viewerHandler func(w http.ResponseWriter, r *http.Request, v viewer)

// viewer wraps a page that needs a signed-in reviewer (or the read-only
// UI, where nobody signs in). The session's credential is checked again
// on every request: a revoked or expired token, or an access token past
// its expiry, ends the session at once.
func (h *Handler) viewer(next viewerHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.o.ReadOnly {
			if r.Method != http.MethodGet {
				http.Error(w, "this UI is read-only", http.StatusForbidden)
				return
			}
			if h.o.ViewKey != "" && !h.viewKeyOK(w, r) {
				return
			}
			next(w, r, viewer{})
			return
		}
		var ss *session
		if c, err := r.Cookie(cookieSession); err == nil {
			ss = h.sessions.get(c.Value)
		}
		if ss != nil && h.o.Auth != nil {
			if _, err := h.o.Auth.Authenticate(r.Context(), ss.cred); err != nil {
				h.o.Logger.Info("web: session ended: its credential is no longer accepted", "user", ss.who.User, "err", err)
				h.sessions.drop(ss.id)
				ss = nil
			}
		}
		if ss == nil {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, Prefix+"api/") && r.URL.Path != Prefix+"events" &&
				r.Header.Get("HX-Request") == "" {
				http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !sameToken(r.PostForm.Get("csrf"), ss.csrf) {
				h.o.Logger.Warn("web: POST refused: missing or wrong CSRF token", "path", r.URL.Path, "user", ss.who.User)
				http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
				return
			}
		}
		next(w, r, viewer{s: ss, reviewer: h.o.MayReview == nil || h.o.MayReview(ss.who)})
	}
}

// viewKeyOK reports whether r carries the read-only UI's view key, in its
// cookie; else it has answered r. A key in the address sets the cookie,
// and the page is reloaded without it, so that the key stays out of the
// history and of what links send as Referer.
func (h *Handler) viewKeyOK(w http.ResponseWriter, r *http.Request) bool {
	if k := r.URL.Query().Get("key"); k != "" && sameToken(k, h.o.ViewKey) {
		setCookie(w, r, cookieView, h.o.ViewKey, 0)
		q := r.URL.Query()
		q.Del("key")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	if c, err := r.Cookie(cookieView); err == nil && sameToken(c.Value, h.o.ViewKey) {
		return true
	}
	http.Error(w, "open the address `toolgate ui` printed: it carries the key to this log", http.StatusUnauthorized)
	return false
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	if h.o.ReadOnly {
		http.Redirect(w, r, Prefix+"reviews", http.StatusSeeOther)
		return
	}
	nonce := randomToken()
	setCookie(w, r, cookieSignin, nonce, 600)
	h.render(w, r, "signin", viewer{}, map[string]any{
		"CSRF": h.sessions.signinCSRF(nonce), "Error": r.URL.Query().Get("error") != "", "NoAuth": h.o.Auth == nil,
	})
}

// signin exchanges a credential (a per-user token, an OIDC access token,
// or the shared token) for a session cookie. The form is CSRF-protected
// by an HMAC of a nonce in a SameSite=Strict cookie, so another site
// cannot sign a browser in as someone else.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	if h.o.ReadOnly || h.o.Auth == nil {
		http.Error(w, "sign-in is not available here", http.StatusForbidden)
		return
	}
	c, err := r.Cookie(cookieSignin)
	if err != nil || r.ParseForm() != nil || !sameToken(r.PostForm.Get("csrf"), h.sessions.signinCSRF(c.Value)) {
		http.Error(w, "missing or wrong CSRF token (reload the sign-in page)", http.StatusForbidden)
		return
	}
	cred := strings.TrimSpace(r.PostForm.Get("token"))
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && cred == "" {
		cred = strings.TrimSpace(b)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	who, err := h.o.Auth.Authenticate(ctx, cred)
	if cred == "" || err != nil {
		h.o.Logger.Warn("web: sign-in refused", "err", err, "remote", r.RemoteAddr)
		http.Redirect(w, r, Prefix+"signin?error=1", http.StatusSeeOther)
		return
	}
	ss := h.sessions.create(cred, who)
	setCookie(w, r, cookieSignin, "", -1)
	setCookie(w, r, cookieSession, ss.id, int(h.o.SessionTTL.Seconds()))
	h.o.Logger.Info("web: signed in", "user", who.User, "auth", who.Auth)
	http.Redirect(w, r, Prefix+"reviews", http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, v viewer) {
	h.sessions.drop(v.s.id)
	setCookie(w, r, cookieSession, "", -1)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}
