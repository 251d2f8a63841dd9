// Package slackfake is a fake Slack for tests of code that posts review
// messages and receives button clicks, in the spirit of net/http/httptest.
//
// A Server is slack-go's slacktest server extended with the Web API methods
// toolgate's review channel uses (chat.postMessage, chat.update,
// chat.postEphemeral, usergroups.users.list), each recorded, and a Socket
// Mode endpoint: apps.connections.open hands out a websocket URL on the same
// server, which says hello, pings like Slack does, and delivers interactive
// envelopes that the client must acknowledge.
//
//	fs := slackfake.New(t)
//	opts := review.SlackOptions{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken,
//		Channel: "#approvals", Approvers: []string{"U0APPROVER"}, APIURL: fs.APIURL()}
//	// ... start the code under test, then:
//	fs.WaitConnected()
//	post := fs.WaitPosts(1)
//	fs.Click(slackfake.Action{User: "U0APPROVER", ActionID: "approve", Value: callID})
//
// The server is reachable over plain HTTP on 127.0.0.1, so another process
// (a toolgate binary configured with review.slack.api_url) can use it too.
// It requires BotToken on Web API calls and AppToken on
// apps.connections.open and answers invalid_auth otherwise.
package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// Credentials and IDs the fake accepts and answers with.
const (
	// BotToken is the only bot token Web API methods accept.
	BotToken = "xoxb-test-bot"
	// AppToken is the only app-level token apps.connections.open accepts.
	AppToken = "xapp-test-app"
	// ChannelID is the channel every message is posted to, whatever name
	// the client asked for (Slack answers with the ID).
	ChannelID = "C0REVIEW"
	// FirstTS is the ts of the first message posted; each later message's
	// ts is one microsecond later.
	FirstTS = "1700000000.000001"
)

// Defaults for Server fields.
const (
	DefaultWaitTimeout  = 10 * time.Second
	DefaultPingInterval = 5 * time.Second
)

// Server is a running fake Slack. Its methods are safe for concurrent use;
// the Wait methods and Send/Click fail the test (t.Fatal) on timeout, so call
// them from the test's goroutine.
type Server struct {
	// WaitTimeout bounds every Wait method, Send and Click; set it before
	// use. Zero means DefaultWaitTimeout.
	WaitTimeout time.Duration
	// PostDelay makes chat.postMessage answer that long after it recorded
	// the post (a slow Slack); set it before use.
	PostDelay time.Duration

	t  testing.TB
	ts *slacktest.Server

	mu         sync.Mutex
	posts      []url.Values
	updates    []url.Values
	ephemerals []url.Values
	groupCalls int
	groups     map[string][]string
	seq        int
	envSeq     int
	conns      int                      // Socket Mode connections open now
	acks       map[string]chan struct{} // envelope id -> closed on ack

	outbox chan []byte // envelopes to deliver over whichever socket reads first
	done   chan struct{}
}

// New starts a fake Slack and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:      t,
		groups: map[string][]string{},
		acks:   map[string]chan struct{}{},
		outbox: make(chan []byte, 16),
		done:   make(chan struct{}),
	}
	s.ts = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.record(&s.posts, func(v url.Values) any {
			time.Sleep(s.PostDelay)
			return map[string]any{"ok": true, "channel": ChannelID, "ts": s.nextTS(), "text": v.Get("text")}
		}))
		c.Handle("/chat.update", s.record(&s.updates, func(v url.Values) any {
			return map[string]any{"ok": true, "channel": v.Get("channel"), "ts": v.Get("ts"), "text": v.Get("text")}
		}))
		c.Handle("/chat.postEphemeral", s.record(&s.ephemerals, func(url.Values) any {
			return map[string]any{"ok": true, "message_ts": s.nextTS()}
		}))
		c.Handle("/usergroups.users.list", s.groupMembers)
		c.Handle("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+AppToken {
				writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "url": "ws://" + r.Host + "/socketmode"})
		})
		c.Handle("/socketmode", slacktest.Websocket(s.socket))
	})
	s.ts.Start()
	t.Cleanup(func() {
		close(s.done)
		s.ts.Stop()
	})
	return s
}

// APIURL is the Web API base URL to give the client (it ends in "/").
func (s *Server) APIURL() string { return s.ts.GetAPIURL() }

// SetUserGroup makes usergroups.users.list answer users for group id;
// unknown groups get no_such_subteam.
func (s *Server) SetUserGroup(id string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(users)
}

// Posts returns the form of every chat.postMessage call so far, in order.
func (s *Server) Posts() []url.Values { return s.snapshot(&s.posts) }

// Updates returns the form of every chat.update call so far, in order.
func (s *Server) Updates() []url.Values { return s.snapshot(&s.updates) }

// Ephemerals returns the form of every chat.postEphemeral call so far.
func (s *Server) Ephemerals() []url.Values { return s.snapshot(&s.ephemerals) }

// GroupCalls returns how many times usergroups.users.list was called.
func (s *Server) GroupCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupCalls
}

// Connections returns how many Socket Mode connections are open now.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *Server) snapshot(from *[]url.Values) []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(*from)
}

// WaitConnected waits until a Socket Mode client is connected.
func (s *Server) WaitConnected() {
	s.t.Helper()
	s.waitFor("a Socket Mode connection", func() bool { return s.Connections() > 0 })
}

// WaitPosts waits until at least n messages were posted and returns the
// n-th (1-based).
func (s *Server) WaitPosts(n int) url.Values {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%d chat.postMessage calls", n), func() bool { return len(s.Posts()) >= n })
	return s.Posts()[n-1]
}

// WaitUpdates waits until at least n messages were updated and returns the
// n-th (1-based).
func (s *Server) WaitUpdates(n int) url.Values {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%d chat.update calls", n), func() bool { return len(s.Updates()) >= n })
	return s.Updates()[n-1]
}

// WaitEphemerals waits until at least n ephemeral messages were posted and
// returns the n-th (1-based).
func (s *Server) WaitEphemerals(n int) url.Values {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%d chat.postEphemeral calls", n), func() bool { return len(s.Ephemerals()) >= n })
	return s.Ephemerals()[n-1]
}

func (s *Server) timeout() time.Duration {
	if s.WaitTimeout > 0 {
		return s.WaitTimeout
	}
	return DefaultWaitTimeout
}

func (s *Server) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(s.timeout())
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("slackfake: timed out after %s waiting for %s", s.timeout(), what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Action is one button click, sent as a block_actions interaction.
type Action struct {
	// User is the clicker's Slack user ID.
	User string
	// ActionID and Value are the button's action_id and value.
	ActionID, Value string
	// BlockID is the actions block's block_id; optional.
	BlockID string
	// MessageTS is the clicked message's ts; empty means FirstTS.
	MessageTS string
	// Inputs is the message's input state: block_id -> action_id -> the
	// text typed into that plain_text_input.
	Inputs map[string]map[string]string
}

// Payload returns the block_actions payload Slack would send for a, in
// ChannelID; for Socket Mode (Send) or, form-encoded as "payload", for an
// HTTP interactivity endpoint.
func (a Action) Payload() map[string]any {
	ts := a.MessageTS
	if ts == "" {
		ts = FirstTS
	}
	values := map[string]any{}
	for block, actions := range a.Inputs {
		m := map[string]any{}
		for id, text := range actions {
			m[id] = map[string]any{"type": "plain_text_input", "value": text}
		}
		values[block] = m
	}
	return map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": a.User, "username": "user-" + strings.ToLower(a.User)},
		"channel":      map[string]any{"id": ChannelID},
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": ChannelID},
		"response_url": "https://hooks.slack.invalid/actions/x",
		"trigger_id":   "123.456",
		"actions": []any{map[string]any{
			"type": "button", "action_id": a.ActionID, "block_id": a.BlockID, "value": a.Value,
			"action_ts": "1700000001.000000",
		}},
		"state": map[string]any{"values": values},
	}
}

// Click sends a's block_actions payload over Socket Mode and waits for the
// client to acknowledge it.
func (s *Server) Click(a Action) {
	s.t.Helper()
	s.Send(a.Payload())
}

// Send delivers payload as an "interactive" Socket Mode envelope over an
// open connection and waits for the client to acknowledge it. Any JSON
// value will do, so malformed payloads can be sent too.
func (s *Server) Send(payload any) {
	s.t.Helper()
	s.mu.Lock()
	s.envSeq++
	id := fmt.Sprintf("env-%d", s.envSeq)
	acked := make(chan struct{})
	s.acks[id] = acked
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.acks, id)
		s.mu.Unlock()
	}()
	b, err := json.Marshal(map[string]any{"type": "interactive", "envelope_id": id, "payload": payload, "accepts_response_payload": false})
	if err != nil {
		s.t.Fatalf("slackfake: %v", err)
	}
	timer := time.NewTimer(s.timeout())
	defer timer.Stop()
	select {
	case s.outbox <- b:
	case <-timer.C:
		s.t.Fatalf("slackfake: envelope %s not delivered within %s (is a Socket Mode client connected?)", id, s.timeout())
	}
	select {
	case <-acked:
	case <-timer.C:
		s.t.Fatalf("slackfake: envelope %s was not acknowledged within %s", id, s.timeout())
	}
}

// ContainsText reports whether a recorded message's text or blocks contain
// str; the blocks are compared after undoing JSON's HTML escaping of <, >
// and &.
func ContainsText(v url.Values, str string) bool {
	blocks := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(v.Get("blocks"))
	return strings.Contains(blocks, str) || strings.Contains(v.Get("text"), str)
}

func (s *Server) nextTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("1700000000.%06d", s.seq)
}

// record stores each authorised request's form in *into and answers with
// resp's JSON.
func (s *Server) record(into *[]url.Values, resp func(url.Values) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+BotToken && r.Form.Get("token") != BotToken {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		s.mu.Lock()
		*into = append(*into, r.Form)
		s.mu.Unlock()
		writeJSON(w, resp(r.Form))
	}
}

func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	s.groupCalls++
	users, ok := s.groups[r.Form.Get("usergroup")]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "users": users})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// socket speaks Socket Mode on one connection: hello, pings, and queued
// envelopes; acknowledgements close the matching Send's wait.
func (s *Server) socket(c *websocket.Conn) {
	if err := c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1}); err != nil {
		return
	}
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conns--
		s.mu.Unlock()
	}()
	readErr := make(chan error, 1)
	go func() {
		for {
			var m map[string]any
			if err := c.ReadJSON(&m); err != nil {
				readErr <- err
				return
			}
			id, _ := m["envelope_id"].(string)
			s.mu.Lock()
			if ch, ok := s.acks[id]; ok {
				close(ch)
				delete(s.acks, id)
			}
			s.mu.Unlock()
		}
	}()
	// slack-go drops a connection that has not been pinged for 30 s.
	ping := time.NewTicker(DefaultPingInterval)
	defer ping.Stop()
	for {
		select {
		case env := <-s.outbox:
			if err := c.WriteMessage(websocket.TextMessage, env); err != nil {
				select {
				case s.outbox <- env: // another connection may deliver it
				default:
				}
				return
			}
		case <-ping.C:
			if err := c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
				return
			}
		case <-readErr:
			return
		case <-s.done:
			return
		}
	}
}
