package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"

	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
)

// fakeStore is an in-memory Store with the audit store's first-answer-wins
// semantics.
type fakeStore struct {
	mu       sync.Mutex
	pending  map[string]*Pending
	order    []string
	verdicts map[string]Verdict
	closed   map[string]bool // expired by ExpireOrphanReviews
	failRead error
}

func newFakeStore() *fakeStore {
	return &fakeStore{pending: map[string]*Pending{}, verdicts: map[string]Verdict{}, closed: map[string]bool{}}
}

var errNotFound = errors.New("not found")

func (f *fakeStore) add(c tools.Call, d rules.Decision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[c.ID] = &Pending{Call: c, Decision: d, RequestedAt: c.Time}
	f.order = append(f.order, c.ID)
}

func (f *fakeStore) PendingReviews(ctx context.Context) ([]Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Pending
	for _, id := range f.order {
		if _, done := f.verdicts[id]; !done && !f.closed[id] {
			out = append(out, *f.pending[id])
		}
	}
	return out, nil
}

func (f *fakeStore) SubmitVerdict(ctx context.Context, id string, v Verdict) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pending[id]; !ok {
		return false, fmt.Errorf("%w: %s", errNotFound, id)
	}
	if _, done := f.verdicts[id]; done || f.closed[id] {
		return false, nil
	}
	f.verdicts[id] = v
	return true, nil
}

func (f *fakeStore) ReviewVerdict(ctx context.Context, id string) (Verdict, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRead != nil {
		return Verdict{}, false, f.failRead
	}
	if _, ok := f.pending[id]; !ok {
		return Verdict{}, false, fmt.Errorf("%w: %s", errNotFound, id)
	}
	v, ok := f.verdicts[id]
	return v, ok, nil
}

func (f *fakeStore) SetReviewMessage(ctx context.Context, id, channel, ts string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pending[id]
	if !ok {
		return fmt.Errorf("%w: %s", errNotFound, id)
	}
	p.SlackChannel, p.SlackTS = channel, ts
	return nil
}

func (f *fakeStore) ExpireOrphanReviews(ctx context.Context, now time.Time) ([]Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Pending
	for _, id := range f.order {
		if f.closed[id] {
			continue
		}
		if _, done := f.verdicts[id]; !done {
			f.verdicts[id] = Verdict{Channel: ChannelExpired, Reason: "toolgate restarted", DecidedAt: now}
		}
		f.closed[id] = true
		out = append(out, *f.pending[id])
	}
	return out, nil
}

func (f *fakeStore) verdict(id string) (Verdict, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.verdicts[id]
	return v, ok
}

func (f *fakeStore) message(id string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending[id]
	return p.SlackChannel, p.SlackTS
}

// fakeSlack is slacktest's server extended with the endpoints review uses
// and a Socket Mode endpoint speaking envelopes.
type fakeSlack struct {
	t  *testing.T
	ts *slacktest.Server

	mu         sync.Mutex
	posts      []url.Values
	updates    []url.Values
	ephemerals []url.Values
	groupCalls int
	groups     map[string][]string
	seq        int

	clicks chan []byte // envelopes to send over the socket
	acks   chan string // envelope ids acknowledged by the client
	conns  chan struct{}
	done   chan struct{}
}

const (
	fakeChannelID = "C0REVIEW"
	botToken      = "xoxb-test-bot"
	appToken      = "xapp-test-app"
	signingSecret = "test-signing-secret"
)

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{
		t:      t,
		groups: map[string][]string{"S0OPS": {"U0GROUPIE", "U0OTHER"}},
		clicks: make(chan []byte, 8),
		acks:   make(chan string, 8),
		conns:  make(chan struct{}, 8),
		done:   make(chan struct{}),
	}
	f.ts = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.record(&f.posts, func(v url.Values) any {
			return map[string]any{"ok": true, "channel": fakeChannelID, "ts": f.nextTS(), "text": v.Get("text")}
		}))
		c.Handle("/chat.update", f.record(&f.updates, func(v url.Values) any {
			return map[string]any{"ok": true, "channel": v.Get("channel"), "ts": v.Get("ts"), "text": v.Get("text")}
		}))
		c.Handle("/chat.postEphemeral", f.record(&f.ephemerals, func(v url.Values) any {
			return map[string]any{"ok": true, "message_ts": f.nextTS()}
		}))
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			f.mu.Lock()
			f.groupCalls++
			users, ok := f.groups[r.Form.Get("usergroup")]
			f.mu.Unlock()
			if !ok {
				writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "users": users})
		})
		c.Handle("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+appToken {
				writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "url": "ws://" + r.Host + "/socketmode"})
		})
		c.Handle("/socketmode", slacktest.Websocket(f.socket))
	})
	f.ts.Start()
	t.Cleanup(func() {
		close(f.done)
		f.ts.Stop()
	})
	return f
}

func (f *fakeSlack) apiURL() string { return f.ts.GetAPIURL() }

func (f *fakeSlack) nextTS() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprintf("1700000000.%06d", f.seq)
}

func (f *fakeSlack) record(into *[]url.Values, resp func(url.Values) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+botToken && r.Form.Get("token") != botToken {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		f.mu.Lock()
		*into = append(*into, r.Form)
		f.mu.Unlock()
		writeJSON(w, resp(r.Form))
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// socket speaks Socket Mode: hello, then each queued envelope; acks are
// reported on f.acks.
func (f *fakeSlack) socket(c *websocket.Conn) {
	if err := c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1}); err != nil {
		return
	}
	f.conns <- struct{}{}
	readErr := make(chan error, 1)
	go func() {
		for {
			var m map[string]any
			if err := c.ReadJSON(&m); err != nil {
				readErr <- err
				return
			}
			if id, ok := m["envelope_id"].(string); ok {
				f.acks <- id
			}
		}
	}()
	for {
		select {
		case env := <-f.clicks:
			if err := c.WriteMessage(websocket.TextMessage, env); err != nil {
				return
			}
		case <-readErr:
			return
		case <-f.done:
			return
		}
	}
}

// clickPayload is a block_actions payload as Slack sends it.
func clickPayload(user, action, callID, reason string) map[string]any {
	p := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": "someone"},
		"channel":      map[string]any{"id": fakeChannelID},
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": fakeChannelID},
		"response_url": "https://hooks.slack.invalid/actions/x",
		"trigger_id":   "123.456",
		"actions": []any{map[string]any{
			"type": "button", "action_id": action, "block_id": blockActionsPrefix + callID, "value": callID,
			"action_ts": "1700000001.000000",
		}},
		"state": map[string]any{"values": map[string]any{
			BlockReason: map[string]any{ActionReason: map[string]any{"type": "plain_text_input", "value": reason}},
		}},
	}
	return p
}

// click sends payload over the socket and waits for its ack.
func (f *fakeSlack) click(payload map[string]any) {
	f.t.Helper()
	f.mu.Lock()
	f.seq++
	env := fmt.Sprintf("env-%d", f.seq)
	f.mu.Unlock()
	b, err := json.Marshal(map[string]any{"type": "interactive", "envelope_id": env, "payload": payload, "accepts_response_payload": false})
	if err != nil {
		f.t.Fatal(err)
	}
	f.clicks <- b
	select {
	case got := <-f.acks:
		if got != env {
			f.t.Fatalf("ack for %q, want %q", got, env)
		}
	case <-time.After(5 * time.Second):
		f.t.Fatal("socket mode envelope was not acknowledged")
	}
}

func (f *fakeSlack) waitConnected() {
	f.t.Helper()
	select {
	case <-f.conns:
	case <-time.After(5 * time.Second):
		f.t.Fatal("socket mode client did not connect")
	}
}

func (f *fakeSlack) snapshot() (posts, updates, ephemerals []url.Values, groupCalls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.posts), slices.Clone(f.updates), slices.Clone(f.ephemerals), f.groupCalls
}

// closedURL returns an API URL nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blocksOf decodes a posted message's blocks into generic JSON.
func blocksOf(t *testing.T, v url.Values) []map[string]any {
	t.Helper()
	var bs []map[string]any
	if err := json.Unmarshal([]byte(v.Get("blocks")), &bs); err != nil {
		t.Fatalf("blocks: %v in %q", err, v.Get("blocks"))
	}
	return bs
}

func hasBlockType(bs []map[string]any, typ string) bool {
	return slices.ContainsFunc(bs, func(b map[string]any) bool { return b["type"] == typ })
}

// containsText reports whether a posted message's text or blocks contain s
// (blocks compared after undoing JSON's HTML escaping).
func containsText(v url.Values, s string) bool {
	blocks := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(v.Get("blocks"))
	return strings.Contains(blocks, s) || strings.Contains(v.Get("text"), s)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
