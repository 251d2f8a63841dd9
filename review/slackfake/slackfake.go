// Package slackfake is a fake Slack for tests of code that posts review
// messages and receives button clicks, in the spirit of net/http/httptest.
//
// A Server is slack-go's slacktest server extended with the Web API methods
// toolgate's review channel uses (auth.test, conversations.list,
// conversations.info, chat.postMessage, chat.update, chat.postEphemeral,
// usergroups.users.list), each a form post answered with JSON and recorded,
// and a Socket Mode endpoint: apps.connections.open hands out a websocket URL
// on the same server, which says hello, pings like Slack does, and delivers
// interactive envelopes that the client must acknowledge.
//
// Modals: views.open (a JSON post, as slack-go sends it, or a form) checks
// the view the way Slack does where it matters (a modal, a title and
// buttons of at most 24 characters, unique input block IDs, a submit
// button with inputs, private_metadata of at most 3000 characters),
// records it and answers with it and a view ID; [Server.Views] lists them
// and [Server.Submit] sends a person's submission of one as a
// view_submission interaction carrying its private_metadata and
// state.values, as Click does for block_actions ([Server.SubmitVia] to a
// chosen connection).
//
//	fs := slackfake.New(t)
//	opts := review.SlackOptions{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken,
//		Channel: "#approvals", Approvers: []string{"U0APPROVER"}, APIURL: fs.APIURL()}
//	// ... start the code under test, then:
//	fs.WaitConnected()
//	post := fs.WaitPosts(1)
//	fs.Click(slackfake.Action{User: "U0APPROVER", ActionID: "approve", Value: callID})
//
// Trouble is served the way Slack serves it: [Server.Fail] makes a method
// answer HTTP 429 with a Retry-After header, a 5xx with an HTML body, or
// {"ok":false,"error":...}; [Server.DropConnections] kills the open Socket
// Mode websockets, after which the client must reconnect through
// apps.connections.open (make that fail too to keep it out);
// [Server.Disconnect] sends Slack's "disconnect" request;
// [Server.SetBotMember] takes the bot out of the review channel, and
// [Server.RevokeScope] makes the methods needing a scope answer
// missing_scope.
//
// Like Slack, Click delivers an interaction over one of the open Socket
// Mode connections, whichever reads it first; with several clients (several
// instances on one Slack app), [Server.ClickVia] picks the connection.
//
// The server is reachable over plain HTTP on 127.0.0.1, so another process
// (a toolgate binary configured with review.slack.api_url) can use it too.
// It requires BotToken on Web API calls and AppToken on
// apps.connections.open and answers invalid_auth otherwise.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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
	// ChannelName is ChannelID's name, as conversations.list and
	// conversations.info show it.
	ChannelName = "approvals"
	// FirstTS is the ts of the first message posted; each later message's
	// ts is one microsecond later.
	FirstTS = "1700000000.000001"
	// BotUserID and BotName are the bot user auth.test names.
	BotUserID = "U0TOOLGATE"
	BotName   = "toolgate"
)

// Defaults for Server fields.
const (
	DefaultWaitTimeout  = 10 * time.Second
	DefaultPingInterval = 5 * time.Second
)

// channels are the workspace's channels as conversations.list shows them,
// in order; the bot's membership of ChannelID is SetBotMember's.
var channels = []struct {
	id, name string
	member   bool
}{
	{"C0GENERAL", "general", true},
	{"C0RANDOM", "random", false},
	{ChannelID, ChannelName, true},
}

// scopeOf is the bot scope each method needs, where RevokeScope can take it
// away.
var scopeOf = map[string]string{
	"conversations.list":    "channels:read",
	"conversations.info":    "channels:read",
	"usergroups.users.list": "usergroups:read",
}

// Fault is how a Web API call fails instead of being served (see
// Server.Fail).
type Fault struct {
	// Status is the HTTP status to answer with, such as 429 or 503; zero
	// means 200 with Error in the JSON body.
	Status int
	// RetryAfter is the Retry-After header's value in seconds; Slack sends
	// it with every 429. Zero sends no header.
	RetryAfter int
	// Error, with Status zero, is the body's "error" ({"ok":false,...}).
	Error string
}

type fault struct {
	left int // calls still to fail; negative means until cleared
	f    Fault
}

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
	views      []OpenedView
	messages   map[string]url.Values // ts -> the message as last posted or updated
	calls      map[string]int
	faults     map[string]fault
	groups     map[string][]string
	notMember  bool
	revoked    map[string]bool
	seq        int
	envSeq     int
	sockets    map[*websocket.Conn]chan []byte // open Socket Mode connections -> their control queue
	acks       map[string]chan struct{}        // envelope id -> closed on ack
	// connID numbers the open Socket Mode connections in the order they
	// opened, from 1 (see ConnectionIDs); connSeq is the last number given.
	connID  map[*websocket.Conn]int
	connSeq int

	outbox chan []byte // envelopes to deliver over whichever socket reads first
	done   chan struct{}
}

// New starts a fake Slack and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:        t,
		messages: map[string]url.Values{},
		calls:    map[string]int{},
		faults:   map[string]fault{},
		groups:   map[string][]string{},
		revoked:  map[string]bool{},
		sockets:  map[*websocket.Conn]chan []byte{},
		acks:     map[string]chan struct{}{},
		outbox:   make(chan []byte, 16),
		done:     make(chan struct{}),
	}
	s.ts = slacktest.NewTestServer(func(c slacktest.Customize) {
		bot := func(name string, h func(url.Values) any) {
			c.Handle("/"+name, s.method(name, BotToken, h))
		}
		bot("auth.test", func(url.Values) any {
			return map[string]any{"ok": true, "url": "https://toolgate-test.slack.com/", "team": "toolgate test",
				"user": BotName, "team_id": "T0TEST", "user_id": BotUserID, "bot_id": "B0TOOLGATE"}
		})
		bot("conversations.list", s.conversationsList)
		bot("conversations.info", s.conversationsInfo)
		bot("chat.postMessage", s.postMessage)
		bot("chat.update", func(v url.Values) any {
			s.mu.Lock()
			s.updates = append(s.updates, v)
			s.messages[v.Get("ts")] = v
			s.mu.Unlock()
			return map[string]any{"ok": true, "channel": v.Get("channel"), "ts": v.Get("ts"), "text": v.Get("text")}
		})
		bot("chat.postEphemeral", func(v url.Values) any {
			s.mu.Lock()
			s.ephemerals = append(s.ephemerals, v)
			s.mu.Unlock()
			return map[string]any{"ok": true, "message_ts": s.nextTS()}
		})
		bot("usergroups.users.list", func(v url.Values) any {
			s.mu.Lock()
			defer s.mu.Unlock()
			users, ok := s.groups[v.Get("usergroup")]
			if !ok {
				return slackError("no_such_subteam")
			}
			return map[string]any{"ok": true, "users": slices.Clone(users)}
		})
		bot("views.open", s.viewsOpen)
		c.Handle("/apps.connections.open", s.method("apps.connections.open", AppToken, func(v url.Values) any {
			return map[string]any{"ok": true, "url": "ws://" + v.Get("_host") + "/socketmode"}
		}))
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

// SetBotMember puts the bot in the review channel (the default) or takes
// it out: conversations.list and conversations.info then say is_member
// false, and chat.postMessage answers not_in_channel.
func (s *Server) SetBotMember(member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notMember = !member
}

// RevokeScope makes the methods needing bot scope (channels:read for
// conversations.list and conversations.info, usergroups:read for
// usergroups.users.list) answer missing_scope, as Slack does for an app
// installed without it.
func (s *Server) RevokeScope(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[scope] = true
}

// Fail makes the next n calls of Web API method (such as
// "chat.postMessage" or "apps.connections.open") fail with f, without
// acting on them; n < 0 fails every call until Fail is called again with
// n == 0, which clears it. A 429 carries f.RetryAfter in a Retry-After
// header, a 5xx an HTML body (both as Slack sends them).
func (s *Server) Fail(method string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 {
		delete(s.faults, method)
		return
	}
	s.faults[method] = fault{left: n, f: f}
}

// Calls returns how many times Web API method was called, failed calls
// included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Posts returns the form of every chat.postMessage call served so far, in
// order (thread replies included).
func (s *Server) Posts() []url.Values { return s.snapshot(&s.posts) }

// Replies returns the posts in the thread of the message at ts.
func (s *Server) Replies(ts string) []url.Values {
	return slices.DeleteFunc(s.Posts(), func(v url.Values) bool { return v.Get("thread_ts") != ts })
}

// Updates returns the form of every chat.update call served so far, in
// order.
func (s *Server) Updates() []url.Values { return s.snapshot(&s.updates) }

// Ephemerals returns the form of every chat.postEphemeral call so far.
func (s *Server) Ephemerals() []url.Values { return s.snapshot(&s.ephemerals) }

// Message returns the message at ts as last posted or updated; nil if none.
func (s *Server) Message(ts string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages[ts]
}

// GroupCalls returns how many times usergroups.users.list was called.
func (s *Server) GroupCalls() int { return s.Calls("usergroups.users.list") }

// Connections returns how many Socket Mode connections are open now.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// DropConnections cuts every open Socket Mode connection, as a network
// failure would (no close frame). The client has to notice and reconnect
// through apps.connections.open; make that Fail to keep it out.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.sockets {
		_ = c.UnderlyingConn().Close()
	}
}

// Disconnect sends Slack's "disconnect" request (reason "warning",
// "refresh_requested", ...) over every open Socket Mode connection; the
// client is expected to open a new one.
func (s *Server) Disconnect(reason string) {
	b, err := json.Marshal(map[string]any{"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "slackfake"}})
	if err != nil {
		s.t.Fatalf("slackfake: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ctl := range s.sockets {
		select {
		case ctl <- b:
		default:
		}
	}
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

// WaitReplies waits until the thread of the message at ts has at least n
// replies and returns the n-th (1-based).
func (s *Server) WaitReplies(ts string, n int) url.Values {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%d replies to %s", n, ts), func() bool { return len(s.Replies(ts)) >= n })
	return s.Replies(ts)[n-1]
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

func (a Action) ts() string {
	if a.MessageTS == "" {
		return FirstTS
	}
	return a.MessageTS
}

// Payload returns the block_actions payload Slack would send for a, in
// ChannelID; for Socket Mode (Send) or, form-encoded as "payload", for an
// HTTP interactivity endpoint. It carries no "message"; Click adds the
// clicked message as the fake last saw it.
func (a Action) Payload() map[string]any {
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
		"container":    map[string]any{"type": "message", "message_ts": a.ts(), "channel_id": ChannelID},
		"response_url": "https://hooks.slack.invalid/actions/x",
		"trigger_id":   "123.456",
		"actions": []any{map[string]any{
			"type": "button", "action_id": a.ActionID, "block_id": a.BlockID, "value": a.Value,
			"action_ts": "1700000001.000000",
		}},
		"state": map[string]any{"values": values},
	}
}

// Click sends a's block_actions payload over Socket Mode, with the clicked
// message as last posted or updated (as Slack includes it), and waits for
// the client to acknowledge it.
func (s *Server) Click(a Action) {
	s.t.Helper()
	s.Send(s.clickPayload(a))
}

// clickPayload is a's payload with the clicked message, for Click.
func (s *Server) clickPayload(a Action) map[string]any {
	p := a.Payload()
	if m := s.Message(a.ts()); m != nil {
		var blocks []any
		_ = json.Unmarshal([]byte(m.Get("blocks")), &blocks)
		p["message"] = map[string]any{"type": "message", "ts": a.ts(), "text": m.Get("text"), "blocks": blocks}
	}
	return p
}

// Send delivers payload as an "interactive" Socket Mode envelope over an
// open connection and waits for the client to acknowledge it. Any JSON
// value will do, so malformed payloads can be sent too.
func (s *Server) Send(payload any) {
	s.t.Helper()
	s.send(payload, s.outbox)
}

// send delivers payload as Send does, through queue: the outbox, which
// whichever connection reads first takes, or one connection's own queue.
func (s *Server) send(payload any, queue chan<- []byte) {
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
	case queue <- b:
	case <-timer.C:
		s.t.Fatalf("slackfake: envelope %s not delivered within %s (is a Socket Mode client connected?)", id, s.timeout())
	}
	select {
	case <-acked:
	case <-timer.C:
		s.t.Fatalf("slackfake: envelope %s was not acknowledged within %s", id, s.timeout())
	}
}

// Delivery to a chosen connection. Slack delivers each interaction to one
// of an app's Socket Mode connections; with several clients (several
// instances of the code under test on one Slack app), a test picks which.

// ConnectionIDs returns the numbers of the open Socket Mode connections,
// oldest first. Connections are numbered from 1 in the order they opened;
// a reconnection gets a new number.
func (s *Server) ConnectionIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.connID))
	for _, id := range s.connID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ClickVia is Click delivered over Socket Mode connection conn (a number
// from ConnectionIDs) only.
func (s *Server) ClickVia(conn int, a Action) {
	s.t.Helper()
	s.SendVia(conn, s.clickPayload(a))
}

// SendVia is Send delivered over Socket Mode connection conn (a number
// from ConnectionIDs) only; the test fails if it is not open.
func (s *Server) SendVia(conn int, payload any) {
	s.t.Helper()
	var queue chan []byte
	s.mu.Lock()
	for c, id := range s.connID {
		if id == conn {
			queue = s.sockets[c]
		}
	}
	s.mu.Unlock()
	if queue == nil {
		s.t.Fatalf("slackfake: no open Socket Mode connection %d (open: %v)", conn, s.ConnectionIDs())
	}
	s.send(payload, queue)
}

// ContainsText reports whether a recorded message's text or blocks contain
// str; the blocks are compared after undoing JSON's HTML escaping of <, >
// and &.
func ContainsText(v url.Values, str string) bool {
	blocks := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(v.Get("blocks"))
	return strings.Contains(blocks, str) || strings.Contains(v.Get("text"), str)
}

// Readable returns what a person reads in a recorded message: its text and
// every text in its blocks, JSON-decoded (so a `\u0026` left in it is one
// the reader sees), one per line. Slack's own mrkdwn escapes (&amp; &lt;
// &gt;) are left as they are.
func Readable(v url.Values) string {
	var blocks any
	_ = json.Unmarshal([]byte(v.Get("blocks")), &blocks)
	texts := []string{v.Get("text")}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "text" {
					texts = append(texts, s)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(blocks)
	return strings.Join(texts, "\n")
}

func (s *Server) nextTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("1700000000.%06d", s.seq)
}

// method serves Web API method name: it counts the call, fails it if a
// Fault is pending, checks the token and the method's scope, and answers
// with serve's JSON. serve gets the form, plus "_host" (the Host header)
// and, for a JSON body (views.open), "_json" (the body).
func (s *Server) method(name, token string, serve func(url.Values) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.calls[name]++
		f, failing := s.faults[name]
		if failing && f.left > 0 {
			if f.left--; f.left == 0 {
				delete(s.faults, name)
			} else {
				s.faults[name] = f
			}
		}
		scope := scopeOf[name]
		revoked := s.revoked[scope]
		s.mu.Unlock()
		switch {
		case failing:
			writeFault(w, f.f)
		case r.Header.Get("Authorization") != "Bearer "+token && r.Form.Get("token") != token:
			writeJSON(w, slackError("invalid_auth"))
		case revoked:
			writeJSON(w, map[string]any{"ok": false, "error": "missing_scope", "needed": scope, "provided": "chat:write"})
		default:
			form := r.Form
			if name == "apps.connections.open" {
				form = url.Values{"_host": {r.Host}}
			}
			if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
				body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				form.Set("_json", string(body)) // the whole JSON body
			}
			writeJSON(w, serve(form))
		}
	}
}

func (s *Server) postMessage(v url.Values) any {
	s.mu.Lock()
	out := s.notMember
	s.mu.Unlock()
	if out {
		return slackError("not_in_channel")
	}
	ts := s.nextTS()
	s.mu.Lock()
	s.posts = append(s.posts, v)
	if v.Get("thread_ts") == "" {
		s.messages[ts] = v
	}
	s.mu.Unlock()
	time.Sleep(s.PostDelay)
	return map[string]any{"ok": true, "channel": ChannelID, "ts": ts, "text": v.Get("text")}
}

// channelJSON is channel i as conversations.list and conversations.info
// show it.
func (s *Server) channelJSON(i int) map[string]any {
	c := channels[i]
	member := c.member
	if c.id == ChannelID {
		member = !s.notMember
	}
	return map[string]any{"id": c.id, "name": c.name, "is_channel": true, "is_private": false,
		"is_archived": false, "is_member": member}
}

// conversationsList pages through channels with Slack's cursor scheme:
// limit per page (default 100), response_metadata.next_cursor empty on the
// last page.
func (s *Server) conversationsList(v url.Values) any {
	limit, err := strconv.Atoi(v.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	start := 0
	if c := v.Get("cursor"); c != "" {
		if start, err = strconv.Atoi(strings.TrimPrefix(c, "dGVhbTpD")); err != nil || start < 0 || start > len(channels) {
			return slackError("invalid_cursor")
		}
	}
	end := min(start+limit, len(channels))
	s.mu.Lock()
	defer s.mu.Unlock()
	page := []any{}
	for i := start; i < end; i++ {
		page = append(page, s.channelJSON(i))
	}
	next := ""
	if end < len(channels) {
		next = "dGVhbTpD" + strconv.Itoa(end)
	}
	return map[string]any{"ok": true, "channels": page, "response_metadata": map[string]any{"next_cursor": next}}
}

func (s *Server) conversationsInfo(v url.Values) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range channels {
		if c.id == v.Get("channel") {
			return map[string]any{"ok": true, "channel": s.channelJSON(i)}
		}
	}
	return slackError("channel_not_found")
}

func slackError(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.Status == 0 || f.Status == http.StatusOK {
		writeJSON(w, slackError(f.Error))
		return
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	if f.Status == http.StatusTooManyRequests {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_ = json.NewEncoder(w).Encode(slackError("ratelimited"))
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(f.Status)
	fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", f.Status, http.StatusText(f.Status))
}

// socket speaks Socket Mode on one connection: hello, pings, queued
// envelopes and disconnect requests; acknowledgements close the matching
// Send's wait.
func (s *Server) socket(c *websocket.Conn) {
	if err := c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": "A0TOOLGATE"}}); err != nil {
		return
	}
	ctl := make(chan []byte, 4)
	s.mu.Lock()
	s.sockets[c] = ctl
	s.connSeq++
	if s.connID == nil {
		s.connID = map[*websocket.Conn]int{}
	}
	s.connID[c] = s.connSeq
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sockets, c)
		delete(s.connID, c)
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
		case m := <-ctl:
			if err := c.WriteMessage(websocket.TextMessage, m); err != nil {
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

// Modals.

// OpenedView is a view opened through views.open.
type OpenedView struct {
	// ID is the view ID views.open answered with: "V0000000001", then
	// "V0000000002", ...
	ID string
	// TriggerID is the trigger_id the view was opened with.
	TriggerID string
	// View is the view object as the client sent it, JSON-decoded.
	View map[string]any
}

// Title returns the view's title text.
func (v OpenedView) Title() string {
	t, _ := v.View["title"].(map[string]any)
	s, _ := t["text"].(string)
	return s
}

// CallbackID returns the view's callback_id.
func (v OpenedView) CallbackID() string { s, _ := v.View["callback_id"].(string); return s }

// PrivateMetadata returns the view's private_metadata.
func (v OpenedView) PrivateMetadata() string { s, _ := v.View["private_metadata"].(string); return s }

// Views returns the views opened so far, in order.
func (s *Server) Views() []OpenedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.views)
}

// WaitViews waits until at least n views were opened and returns the n-th
// (1-based).
func (s *Server) WaitViews(n int) OpenedView {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%d views.open calls", n), func() bool { return len(s.Views()) >= n })
	return s.Views()[n-1]
}

// viewsOpen serves views.open: a JSON body {"trigger_id", "view"} (or a
// form with the view as a JSON string). An invalid view is answered
// invalid_arguments with Slack's kind of explanation, and not recorded.
func (s *Server) viewsOpen(v url.Values) any {
	var req struct {
		TriggerID string         `json:"trigger_id"`
		View      map[string]any `json:"view"`
	}
	if body := v.Get("_json"); body != "" {
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			return slackError("invalid_json")
		}
	} else {
		req.TriggerID = v.Get("trigger_id")
		if err := json.Unmarshal([]byte(v.Get("view")), &req.View); err != nil {
			return slackError("invalid_arguments")
		}
	}
	if req.TriggerID == "" {
		return slackError("invalid_trigger_id")
	}
	if why := checkModal(req.View); why != "" {
		return map[string]any{"ok": false, "error": "invalid_arguments",
			"response_metadata": map[string]any{"messages": []any{"[ERROR] " + why}}}
	}
	s.mu.Lock()
	opened := OpenedView{ID: fmt.Sprintf("V%010d", len(s.views)+1), TriggerID: req.TriggerID, View: req.View}
	s.views = append(s.views, opened)
	s.mu.Unlock()
	return map[string]any{"ok": true, "view": served(opened, map[string]any{})}
}

// checkModal says what Slack would refuse in modal view v; empty if
// nothing.
func checkModal(v map[string]any) string {
	text := func(key string) (string, bool) {
		t, ok := v[key].(map[string]any)
		if !ok {
			return "", false
		}
		s, _ := t["text"].(string)
		return s, t["type"] == "plain_text"
	}
	if v["type"] != "modal" {
		return `view type must be "modal" [json-pointer:/view/type]`
	}
	if t, ok := text("title"); !ok || t == "" || utf8.RuneCountInString(t) > 24 {
		return "title must be plain_text of 1 to 24 characters [json-pointer:/view/title]"
	}
	for _, k := range []string{"submit", "close"} {
		if _, present := v[k]; !present {
			continue
		}
		if t, ok := text(k); !ok || t == "" || utf8.RuneCountInString(t) > 24 {
			return k + " must be plain_text of 1 to 24 characters [json-pointer:/view/" + k + "]"
		}
	}
	if pm, _ := v["private_metadata"].(string); len(pm) > 3000 {
		return "private_metadata must be at most 3000 characters [json-pointer:/view/private_metadata]"
	}
	if cb, _ := v["callback_id"].(string); len(cb) > 255 {
		return "callback_id must be at most 255 characters [json-pointer:/view/callback_id]"
	}
	blocks, _ := v["blocks"].([]any)
	if len(blocks) == 0 || len(blocks) > 100 {
		return "a view has 1 to 100 blocks [json-pointer:/view/blocks]"
	}
	ids := map[string]bool{}
	for i, b := range blocks {
		m, _ := b.(map[string]any)
		if m["type"] != "input" {
			continue
		}
		if _, ok := v["submit"]; !ok {
			return "a view with input blocks needs a submit button [json-pointer:/view/submit]"
		}
		id, _ := m["block_id"].(string)
		if id != "" && ids[id] {
			return fmt.Sprintf("block_id %q is not unique [json-pointer:/view/blocks/%d/block_id]", id, i)
		}
		ids[id] = true
		if _, ok := m["label"].(map[string]any); !ok {
			return fmt.Sprintf("an input block needs a label [json-pointer:/view/blocks/%d/label]", i)
		}
		if _, ok := m["element"].(map[string]any); !ok {
			return fmt.Sprintf("an input block needs an element [json-pointer:/view/blocks/%d/element]", i)
		}
	}
	return ""
}

// served is opened as Slack shows it, in views.open's answer and in a
// view_submission: the view as sent with its ID, team, app and state.
func served(opened OpenedView, values map[string]any) map[string]any {
	v := make(map[string]any, len(opened.View)+10)
	for k, e := range opened.View {
		v[k] = e
	}
	for _, k := range []string{"private_metadata", "callback_id", "external_id"} {
		if _, ok := v[k]; !ok {
			v[k] = ""
		}
	}
	v["id"] = opened.ID
	v["team_id"] = "T0TEST"
	v["app_id"] = "A0TOOLGATE"
	v["bot_id"] = "B0TOOLGATE"
	v["app_installed_team_id"] = "T0TEST"
	v["root_view_id"] = opened.ID
	v["previous_view_id"] = nil
	v["hash"] = "1700000002.hash" + opened.ID
	v["state"] = map[string]any{"values": values}
	return v
}

// Submission is a person submitting a view opened through views.open,
// sent as a view_submission interaction.
type Submission struct {
	// User is the submitter's Slack user ID.
	User string
	// ViewID is the view submitted (an OpenedView's ID); empty means the
	// last one opened.
	ViewID string
	// Inputs is what was typed into the view's plain_text_inputs:
	// block_id -> action_id -> text. An input of the view left out is
	// sent with a null value, as Slack sends an untouched optional input.
	Inputs map[string]map[string]string
	// PrivateMetadata, when set, replaces the view's (a forged or broken
	// submission).
	PrivateMetadata *string
}

// SubmissionPayload returns the view_submission payload Slack would send
// for sub: the view as opened, with its private_metadata and its
// state.values. For Socket Mode (Submit, Send) or, form-encoded as
// "payload", for an HTTP interactivity endpoint. The test fails if no such
// view was opened.
func (s *Server) SubmissionPayload(sub Submission) map[string]any {
	s.t.Helper()
	views := s.Views()
	var opened *OpenedView
	for i := range views {
		if sub.ViewID == "" || views[i].ID == sub.ViewID {
			opened = &views[i]
		}
	}
	if opened == nil {
		s.t.Fatalf("slackfake: no view %q was opened (opened: %d)", sub.ViewID, len(views))
		return nil
	}
	values := map[string]any{}
	blocks, _ := opened.View["blocks"].([]any)
	for _, b := range blocks {
		m, _ := b.(map[string]any)
		el, _ := m["element"].(map[string]any)
		block, _ := m["block_id"].(string)
		action, _ := el["action_id"].(string)
		if m["type"] != "input" || el == nil {
			continue
		}
		var value any // null: nothing typed
		if text, ok := sub.Inputs[block][action]; ok {
			value = text
		}
		values[block] = map[string]any{action: map[string]any{"type": el["type"], "value": value}}
	}
	for block, actions := range sub.Inputs { // inputs the view does not have
		m, ok := values[block].(map[string]any)
		if !ok {
			m = map[string]any{}
			values[block] = m
		}
		for action, text := range actions {
			if _, ok := m[action]; !ok {
				m[action] = map[string]any{"type": "plain_text_input", "value": text}
			}
		}
	}
	view := served(*opened, values)
	if sub.PrivateMetadata != nil {
		view["private_metadata"] = *sub.PrivateMetadata
	}
	return map[string]any{
		"type":                  "view_submission",
		"team":                  map[string]any{"id": "T0TEST", "domain": "toolgate-test"},
		"user":                  map[string]any{"id": sub.User, "username": "user-" + strings.ToLower(sub.User), "name": "user-" + strings.ToLower(sub.User), "team_id": "T0TEST"},
		"api_app_id":            "A0TOOLGATE",
		"token":                 "unused-verification-token",
		"trigger_id":            "123.789",
		"view":                  view,
		"response_urls":         []any{},
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
}

// Submit sends sub's view_submission payload over Socket Mode and waits
// for the client to acknowledge it.
func (s *Server) Submit(sub Submission) {
	s.t.Helper()
	s.Send(s.SubmissionPayload(sub))
}

// SubmitVia is Submit delivered over Socket Mode connection conn (a number
// from ConnectionIDs) only.
func (s *Server) SubmitVia(conn int, sub Submission) {
	s.t.Helper()
	s.SendVia(conn, s.SubmissionPayload(sub))
}
