package mcp

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/toolgate/toolgate"
)

// Limits on what one request, and one principal's requests together, may
// cost, applied when HTTPOptions leaves them 0. Every POST holds a
// connection from its headers to its answer (a body sent slowly, a call
// waiting for its tool or its reviewer) and its decoded body meanwhile.
// Without a cap per principal one credential could hold every connection
// the gateway allows, and the memory of as many multi-MB bodies, so that
// every other user's agent waits or toolgate runs out of memory. Decoding
// costs per value (object member or array element), not per byte: a 4 MB
// body of 300,000 short keys costs seconds of CPU and hundreds of MB while
// it is decoded, checked, recorded and forwarded, a 4 MB string almost
// nothing.
const (
	DefaultMaxRequestsPerPrincipal = 32
	DefaultMaxRequestValues        = 20000
)

// requestLoad counts the POSTs each principal has in flight.
type requestLoad struct {
	max int

	mu sync.Mutex
	n  map[string]int
	// warned: principals refused since they were last below the cap, so
	// a client retrying in a loop is logged once.
	warned map[string]bool
}

func newRequestLoad(max int) *requestLoad {
	return &requestLoad{max: max, n: map[string]int{}, warned: map[string]bool{}}
}

// enter takes one of key's request slots; first says the refusal is the
// first since key was last below its cap.
func (l *requestLoad) enter(key string) (ok, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		first = !l.warned[key]
		l.warned[key] = true
		return false, first
	}
	l.n[key]++
	return true, false
}

// leave frees the slot enter took.
func (l *requestLoad) leave(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key)
	}
	delete(l.warned, key)
}

// refuseBusy answers a POST over p's cap: 429, after which the connection
// closes, so the refused peer holds no connection slot either.
func (l *requestLoad) refuseBusy(log *slog.Logger, w http.ResponseWriter, r *http.Request, p toolgate.Principal, first bool) {
	who := p.User
	if who == "" {
		who = "clients without credentials"
	}
	if first {
		log.Warn("http request refused: the principal's requests in flight are at the cap (http.max_requests_per_principal)",
			"user", p.User, "auth", p.Auth, "remote", r.RemoteAddr, "max", l.max)
	}
	w.Header().Set("Connection", "close")
	w.Header().Set("Retry-After", "1")
	http.Error(w, fmt.Sprintf("too many requests in flight for %s (%d): wait for one to be answered, then send again", who, l.max),
		http.StatusTooManyRequests)
}

// countValues counts the object members and array elements in a JSON
// text, and stops once the count passes limit (over). data need not be
// valid JSON: mcp-go refuses what is not, after this cheap count.
func countValues(data []byte, limit int) (n int, over bool) {
	var arrays []bool // per open container: whether it is an array
	inString, escaped := false, false
	firstPending := false // an array just opened, its first element not seen
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if firstPending && c != ']' && c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			firstPending = false
			n++
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			arrays = append(arrays, c == '[')
			firstPending = c == '['
		case '}', ']':
			if len(arrays) > 0 {
				arrays = arrays[:len(arrays)-1]
			}
			firstPending = false
		case ':':
			n++
		case ',':
			if len(arrays) > 0 && arrays[len(arrays)-1] {
				n++
			}
		}
		if n > limit {
			return n, true
		}
	}
	return n, false
}
