package mcp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// stdioWorkers is how many tools/call requests one stdio agent can have
// running at once; more wait for a slot (the input keeps being read, so
// cancellations and elicitation answers still get through). A call waiting
// for a human review holds its slot for minutes, so the limit is high.
const stdioWorkers = 100

// newStdioSessionID returns the session id of one stdio agent
// (Call.SessionID): "stdio-" and 12 random hex digits. Each agent process
// starts its own toolgate, often on one audit log, so a constant would
// let one agent's session grant or pending review cover another's.
func newStdioSessionID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return "stdio-" + hex.EncodeToString(b[:])
}

// ServeStdio serves one agent over in/out until in ends or ctx is cancelled.
// Nothing else may write to out.
//
// It is not mcp-go's StdioServer, which has one session per process with a
// constant id (each agent needs its own, see newStdioSessionID) and blocks
// its reading when its tools/call queue is full (the answer that unblocks a
// call under review comes on the input). Messages are dispatched as
// StdioServer does: requests concurrently, notifications in order on the
// reading goroutine, answers to toolgate's elicitation requests to the
// waiting review.
//
// A pool of goroutines takes turns reading: the one that reads a request
// wakes an idle one (or starts one) to read on, and serves the request
// itself, on a stack already grown to what a call needs, without waiting
// for a wake-up. This pays for itself against a reader that hands each
// request to a new goroutine or to a worker (docs/operating.md).
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	sess := &stdioSession{
		id:            newStdioSessionID(),
		notifications: make(chan mcpgo.JSONRPCNotification, 100),
		pending:       map[int64]chan *elicitationAnswer{},
		out:           out,
		log:           s.log,
	}
	if err := s.mcp.RegisterSession(ctx, sess); err != nil {
		return fmt.Errorf("stdio: register session: %w", err)
	}
	defer s.mcp.UnregisterSession(context.WithoutCancel(ctx), sess.id)
	ctx = s.mcp.WithContext(ctx, sess)
	// Cancelled when the input ends, so no handler outlives the session.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	c := &stdioConn{
		srv:     s,
		sess:    sess,
		ctx:     ctx,
		in:      bufio.NewReader(in),
		cancels: map[string]context.CancelFunc{},
		slots:   make(chan struct{}, stdioWorkers),
		ended:   make(chan error, 1),
		wake:    make(chan struct{}),
	}
	notifyDone := make(chan struct{})
	go func() {
		defer close(notifyDone)
		sess.writeNotifications(ctx)
	}()
	go c.worker()

	var err error
	select {
	case err = <-c.ended:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.requests.Wait()
	<-notifyDone
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, io.EOF)) {
		return nil
	}
	return err
}

// stdioConn is one stdio agent's input: exactly one goroutine at a time
// reads it (the reader role passes from goroutine to goroutine).
type stdioConn struct {
	srv   *Server
	sess  *stdioSession
	ctx   context.Context
	in    *bufio.Reader
	slots chan struct{} // tools/call concurrency limit
	ended chan error    // the reader's reason for stopping
	wake  chan struct{} // an idle worker receives on it to become the reader
	idle  atomic.Int32  // workers waiting on wake

	mu       sync.Mutex
	closed   bool           // ServeStdio is returning: start no more requests
	requests sync.WaitGroup // requests being served

	// cancels holds the cancel funcs of the tools/calls the fast path
	// serves, by request id (fmt.Sprint of it, as mcp-go keys its own), for
	// notifications/cancelled.
	cancelMu sync.Mutex
	cancels  map[string]context.CancelFunc
}

// message is what the dispatcher needs of an incoming JSON-RPC line.
type message struct {
	Method string          `json:"method"`
	ID     any             `json:"id,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// maxIdleWorkers is how many idle stdio workers are kept; one finishing a
// request while that many wait exits.
const maxIdleWorkers = stdioWorkers

// worker reads until a request arrives, passes the reading on, serves the
// request, then waits idle for its next turn to read.
func (c *stdioConn) worker() {
	for {
		call, id, line, ok := c.read()
		if !ok {
			return
		}
		select {
		case c.wake <- struct{}{}:
		default:
			go c.worker()
		}
		c.serve(call, id, line)
		c.requests.Done()
		if c.idle.Add(1) > maxIdleWorkers {
			c.idle.Add(-1)
			return
		}
		select {
		case <-c.wake:
			c.idle.Add(-1)
		case <-c.ctx.Done():
			c.idle.Add(-1)
			return
		}
	}
}

// read reads lines, handling notifications and answers itself, until one is
// a request, which it returns (counted in c.requests). ok is false when the
// input ended or the session is closing.
func (c *stdioConn) read() (call bool, id any, line []byte, ok bool) {
	for {
		line, err := readLine(c.in, c.srv.o.MaxLineBytes)
		if big := (*lineTooLongError)(nil); errors.As(err, &big) {
			if big.response {
				// An answer is not answered: an error under its id would
				// land among the agent's own requests.
				c.srv.log.Warn("stdio: dropped a response past max_request_bytes", "bytes_kept", len(line))
				continue
			}
			c.sess.write(mcpgo.NewJSONRPCError(mcpgo.NewRequestId(big.id), mcpgo.INVALID_REQUEST,
				fmt.Sprintf("message too large: toolgate reads at most %d bytes a message", c.srv.o.MaxLineBytes), nil))
			continue
		}
		if err != nil {
			// A last line without a newline is not a message (as in mcp-go).
			c.ended <- err
			return false, nil, nil, false
		}
		if c.ctx.Err() != nil {
			c.ended <- c.ctx.Err()
			return false, nil, nil, false
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			if !json.Valid(line) {
				c.sess.write(mcpgo.NewJSONRPCError(mcpgo.NewRequestId(nil), mcpgo.PARSE_ERROR, "Parse error", nil))
				continue
			}
			// Valid JSON but not a message object: mcp-go answers it.
			c.handle(false, nil, line)
			continue
		}
		if m.Method == "" && m.ID != nil && (m.Result != nil || m.Error != nil) && c.sess.answer(m.ID, m.Result, m.Error) {
			continue
		}
		if m.ID == nil {
			// Notifications are handled in order, and answer nothing.
			if m.Method == string(mcpgo.MethodNotificationCancelled) {
				c.cancelCall(line)
			}
			c.handle(false, nil, line)
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return false, nil, nil, false
		}
		c.requests.Add(1)
		c.mu.Unlock()
		return m.Method == string(mcpgo.MethodToolsCall), m.ID, line, true
	}
}

// serve answers one request; a tools/call first waits for a slot.
func (c *stdioConn) serve(call bool, id any, line []byte) {
	if call {
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-c.ctx.Done():
			return
		}
	}
	c.handle(call, id, line)
}

// handle answers one line and writes the response, turning a panic into an
// internal error for a request (id != nil). A tools/call (call) takes the
// fast path when it can; everything else goes to mcp-go's HandleMessage.
func (c *stdioConn) handle(call bool, id any, line []byte) {
	var resp mcpgo.JSONRPCMessage
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.srv.log.Error("panic serving stdio message", "panic", fmt.Sprint(r))
				if id != nil {
					resp = mcpgo.NewJSONRPCError(mcpgo.NewRequestId(id), mcpgo.INTERNAL_ERROR, fmt.Sprintf("internal panic: %v", r), nil)
				}
			}
		}()
		if call {
			var ok bool
			if resp, ok = c.callFast(id, line); ok {
				return
			}
		}
		resp = c.srv.mcp.HandleMessage(c.ctx, line)
	}()
	if listResponse(resp) {
		if bare := c.srv.unannotated(); len(bare) > 0 {
			if b, err := json.Marshal(resp); err == nil {
				resp = rawLine(append(dropAddedAnnotations(b, bare), '\n'))
			}
		}
	}
	switch r := resp.(type) {
	case nil:
	case rawLine:
		c.sess.writeLine(r)
	default:
		c.sess.write(resp)
	}
}

// stdioSession is the mcp-go session of a stdio agent.
type stdioSession struct {
	id            string // see newStdioSessionID
	notifications chan mcpgo.JSONRPCNotification
	initialized   atomic.Bool
	logLevel      atomic.Value // mcpgo.LoggingLevel
	requestID     atomic.Int64
	log           *slog.Logger

	infoMu sync.RWMutex
	info   mcpgo.Implementation
	caps   mcpgo.ClientCapabilities

	pendingMu sync.Mutex
	pending   map[int64]chan *elicitationAnswer

	writeMu sync.Mutex
	out     io.Writer
}

var (
	_ server.ClientSession          = (*stdioSession)(nil)
	_ server.SessionWithLogging     = (*stdioSession)(nil)
	_ server.SessionWithClientInfo  = (*stdioSession)(nil)
	_ server.SessionWithElicitation = (*stdioSession)(nil)
)

func (s *stdioSession) SessionID() string { return s.id }
func (s *stdioSession) NotificationChannel() chan<- mcpgo.JSONRPCNotification {
	return s.notifications
}
func (s *stdioSession) Initialize() {
	s.logLevel.Store(mcpgo.LoggingLevelError)
	s.initialized.Store(true)
}
func (s *stdioSession) Initialized() bool                    { return s.initialized.Load() }
func (s *stdioSession) SetLogLevel(level mcpgo.LoggingLevel) { s.logLevel.Store(level) }
func (s *stdioSession) GetLogLevel() mcpgo.LoggingLevel {
	if l, ok := s.logLevel.Load().(mcpgo.LoggingLevel); ok {
		return l
	}
	return mcpgo.LoggingLevelError
}

func (s *stdioSession) GetClientInfo() mcpgo.Implementation {
	s.infoMu.RLock()
	defer s.infoMu.RUnlock()
	return s.info
}

func (s *stdioSession) SetClientInfo(info mcpgo.Implementation) {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	s.info = info
}

func (s *stdioSession) GetClientCapabilities() mcpgo.ClientCapabilities {
	s.infoMu.RLock()
	defer s.infoMu.RUnlock()
	return s.caps
}

func (s *stdioSession) SetClientCapabilities(caps mcpgo.ClientCapabilities) {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	s.caps = caps
}

// write sends one message as a line. A failed write (the agent went away)
// is logged; reading ends the session.
func (s *stdioSession) write(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		s.log.Warn("stdio: encoding a message", "err", err)
		return
	}
	s.writeLine(append(b, '\n'))
}

// writeLine sends one encoded message, newline included.
func (s *stdioSession) writeLine(b []byte) {
	s.writeMu.Lock()
	_, err := s.out.Write(b)
	s.writeMu.Unlock()
	if err != nil {
		s.log.Warn("stdio: writing a message", "err", err)
	}
}

func (s *stdioSession) writeNotifications(ctx context.Context) {
	for {
		select {
		case n := <-s.notifications:
			s.write(n)
		case <-ctx.Done():
			return
		}
	}
}

// elicitationAnswer is the agent's answer to an elicitation request.
type elicitationAnswer struct {
	result *mcpgo.ElicitationResult
	err    error
}

// RequestElicitation asks the agent for input and waits for its answer.
func (s *stdioSession) RequestElicitation(ctx context.Context, req mcpgo.ElicitationRequest) (*mcpgo.ElicitationResult, error) {
	id := s.requestID.Add(1)
	ch := make(chan *elicitationAnswer, 1)
	s.pendingMu.Lock()
	s.pending[id] = ch
	s.pendingMu.Unlock()
	defer func() {
		s.pendingMu.Lock()
		delete(s.pending, id)
		s.pendingMu.Unlock()
	}()
	s.write(struct {
		JSONRPC string                  `json:"jsonrpc"`
		ID      int64                   `json:"id"`
		Method  string                  `json:"method"`
		Params  mcpgo.ElicitationParams `json:"params"`
	}{mcpgo.JSONRPC_VERSION, id, string(mcpgo.MethodElicitationCreate), req.Params})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case a := <-ch:
		return a.result, a.err
	}
}

// answer routes a response to a pending elicitation request; false if id
// is not one.
func (s *stdioSession) answer(id any, result, rpcErr json.RawMessage) bool {
	f, ok := id.(float64)
	if !ok || f != float64(int64(f)) {
		return false
	}
	s.pendingMu.Lock()
	ch := s.pending[int64(f)]
	s.pendingMu.Unlock()
	if ch == nil {
		return false
	}
	a := &elicitationAnswer{}
	if rpcErr != nil {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(rpcErr, &e)
		a.err = fmt.Errorf("elicitation request failed: %s", e.Message)
	} else {
		var res mcpgo.ElicitationResult
		if err := json.Unmarshal(result, &res); err != nil {
			a.err = fmt.Errorf("failed to unmarshal elicitation response: %w", err)
		} else {
			a.result = &res
		}
	}
	select {
	case ch <- a:
	default:
	}
	return true
}
