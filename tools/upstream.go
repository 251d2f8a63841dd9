package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/toolgate/toolgate"
)

// errCallTimeout is the cause of a call's context ending on the upstream's
// per-call timeout (as opposed to the caller cancelling).
var errCallTimeout = errors.New("upstream call timeout")

// upstream supervises one server: it connects, watches the connection and
// reconnects with backoff. Its last known tools outlive the connection.
type upstream struct {
	cat  *Catalog
	spec Upstream
	log  *slog.Logger
	// hider hides a stdio server's secrets in what it says.
	hider  hider
	relist chan struct{} // coalesced tools/list_changed signals
	// schemas keeps the elicitation forms' field order (elicitorder.go).
	schemas schemaTap
	// elicits are the tools seen asking the user something (elicit.go).
	elicits elicitMarks
	// relistSurf coalesces resources and prompts list_changed signals.
	relistSurf chan struct{}
	// served: whose requests the upstream has served, which decides who
	// may have its log messages (logscope.go).
	served served

	// http is the HTTP client of a remote upstream, kept across
	// reconnections (see remoteClient); nil for the others.
	http *http.Client
	// url is a remote upstream's configured URL split for its transport
	// and scrub (remoteURL), once: urlErr says why it could not be.
	url    remoteURL
	urlErr error

	mu       sync.Mutex
	conn     *conn // nil while down
	tools    []Tool
	surf     upSurface // resources, templates, prompts (surface.go)
	info     mcp.Implementation
	lastErr  string
	stderr   string // last stderr line from the last dead connection
	retryAt  time.Time
	restarts int

	// subs counts the agent sessions subscribed to each resource URI
	// through this upstream (Catalog.Subscribe).
	subMu sync.Mutex
	subs  map[string]int
	// links are the resource URIs its tool results handed out (links.go).
	links linkSet
	// share admits the agents' requests (nil: no limit).
	share *share
}

// admit waits, within ctx, for a place for p's request to u (share), and
// returns the function that frees it; a request that found none gets an
// error saying why.
func (u *upstream) admit(ctx context.Context, p toolgate.Principal) (release func(), err error) {
	release, err = u.share.acquire(ctx, p)
	switch {
	case err == nil:
		return release, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, u.share.busyError(u.spec.Name, p)
	}
	return nil, fmt.Errorf("upstream %q: %w", u.spec.Name, err)
}

// conn is one live connection to an upstream.
type conn struct {
	client *client.Client
	info   mcp.Implementation
	proc   *process // stdio only
	// caps and instructions are the upstream's initialize answer; surf
	// what it listed beyond tools while connecting.
	caps         mcp.ServerCapabilities
	instructions string
	surf         upSurface

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error

	tokens atomic.Int64
	// answered is when the upstream last answered a call (unix ns): a
	// connection that answers needs no ping.
	answered atomic.Int64
	progMu   sync.Mutex
	progress map[string]toolgate.ProgressFunc
	listSeq  atomic.Int64
	callSeq  atomic.Int64 // ids of callTool's requests

	// flights are the requests in flight, and those given up on lately,
	// for relaying elicitation and sampling and scoping log messages
	// (elicit.go): flightEnded of them given up on, the first to go at
	// flightSweep; lastAnswer is whose requests the upstream answered
	// lately, one entry per principal.
	flightMu    sync.Mutex
	flightSeq   uint64
	flights     map[uint64]inflight
	flightEnded int
	flightSweep time.Time
	lastAnswer  map[answerKey]answeredBy
	// linger is the upstream's call timeout, the base of how long a
	// request given up on stays in flights (lingerTime).
	linger time.Duration
	// now is the clock of flights; nil is time.Now (tests set it).
	now func() time.Time
	// served is the upstream's record of the principals it served
	// (logscope.go); nil in tests that make a bare conn.
	served *served
}

func (c *conn) fail(err error) {
	c.deadOnce.Do(func() {
		c.deadErr = err
		close(c.dead)
	})
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (u *upstream) currentTools() []Tool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.tools
}

func (u *upstream) status() UpstreamStatus {
	u.mu.Lock()
	s := UpstreamStatus{
		Name: u.spec.Name, Transport: u.spec.transportName(), Up: u.conn != nil,
		ServerName: u.info.Name, ServerVersion: u.info.Version, Tools: len(u.tools),
		Restarts: u.restarts, LastError: u.lastErr,
	}
	u.mu.Unlock()
	s.Places, s.Busy, s.Waiting = u.share.state()
	return s
}

func (u *upstream) backoff(attempt int) time.Duration {
	d := u.cat.o.MinBackoff
	for i := 1; i < attempt && d < u.cat.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, u.cat.o.MaxBackoff)
}

// supervise runs until ctx ends: connect, wait for the connection to die,
// back off, repeat. first is closed after the first attempt.
func (u *upstream) supervise(ctx context.Context, first chan struct{}) {
	attempt := 0
	signalled := false
	signalFirst := func() {
		if !signalled {
			signalled = true
			close(first)
		}
	}
	defer signalFirst()
	for ctx.Err() == nil {
		c, tools, err := u.connect(ctx)
		if err == nil {
			u.up(c, tools)
			u.restore(ctx, c)
			signalFirst()
			upAt := time.Now()
			var relistWG sync.WaitGroup
			relistWG.Add(1)
			go func() {
				defer relistWG.Done()
				u.relistLoop(ctx, c)
			}()
			if iv := u.cat.o.PingInterval; iv > 0 && u.spec.URL != "" {
				relistWG.Go(func() { u.pingLoop(ctx, c, iv) })
			}
			select {
			case <-c.dead:
				err = c.deadErr
			case <-ctx.Done():
				c.fail(ctx.Err())
			}
			if ctx.Err() != nil {
				u.close(c)
				relistWG.Wait()
				return
			}
			if time.Since(upAt) >= u.cat.o.MaxBackoff || errors.Is(err, errSettled) {
				attempt = 0 // it ran a good while, or toolgate stopped it: not a crash loop
			}
			attempt++
			// Record the outage before the (slow) cleanup, so calls meanwhile
			// get the reason.
			u.down(err, u.backoff(attempt))
			u.close(c)
			relistWG.Wait()
		} else {
			if ctx.Err() != nil {
				return
			}
			attempt++
			u.down(err, u.backoff(attempt))
		}
		delay := u.backoff(attempt)
		signalFirst()
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		u.mu.Lock()
		u.restarts++
		u.retryAt = time.Time{}
		u.mu.Unlock()
	}
}

func (u *upstream) up(c *conn, tools []Tool) {
	u.mu.Lock()
	u.conn, u.info, u.tools, u.surf = c, c.info, tools, c.surf
	restarted := u.restarts > 0
	u.mu.Unlock()
	u.log.Info("upstream up", "server_name", c.info.Name, "server_version", c.info.Version, "tools", len(tools), "restarted", restarted)
	u.cat.rebuild()
	u.cat.rebuildSurface()
}

func (u *upstream) down(err error, retryIn time.Duration) {
	err = u.scrub(err)
	u.mu.Lock()
	u.conn = nil
	u.lastErr = err.Error()
	u.retryAt = time.Now().Add(retryIn)
	var tail string
	if pe, ok := errors.AsType[*procError](err); ok {
		tail = pe.stderr
		u.stderr = lastLine(tail)
	} else {
		u.stderr = ""
	}
	u.mu.Unlock()
	attrs := []any{"err", err, "retry_in", retryIn}
	if tail != "" {
		attrs = append(attrs, "stderr_tail", tail)
	}
	u.log.Error("upstream down", attrs...)
	u.cat.rebuildSurface()
}

// unavailable describes the current outage.
func (u *upstream) unavailable() *UnavailableError {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := &UnavailableError{Server: u.spec.Name, Reason: u.lastErr, Stderr: u.stderr}
	if e.Reason == "" {
		e.Reason = "not connected yet"
	}
	if !u.retryAt.IsZero() {
		e.RetryIn = max(time.Until(u.retryAt), 0)
	}
	return e
}

func (u *upstream) close(c *conn) {
	u.mu.Lock()
	if u.conn == c {
		u.conn = nil
	}
	u.mu.Unlock()
	_ = c.client.Close()
	if c.proc != nil {
		c.proc.stop()
	}
}

// maxIdleConnsPerUpstream is how many idle connections to one remote
// upstream are kept for reuse. net/http's default is 2, so more calls in
// flight than that closed their connections after use and dialled new ones
// (a TCP handshake, and a TLS one over https, for most calls under load).
const maxIdleConnsPerUpstream = 128

// remoteClient returns the HTTP client for a remote upstream: net/http's
// default transport settings (proxy from the environment, timeouts, HTTP/2),
// with enough idle connections kept for the calls in flight.
func remoteClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxIdleConnsPerUpstream
	tr.MaxIdleConnsPerHost = maxIdleConnsPerUpstream
	return &http.Client{Transport: tr}
}

// remote is the URL a remote upstream's transport is given, and the HTTP
// client that sends its requests to the configured URL (remoteURL). The
// client shares u.http's transport, so its idle connections outlive this
// connection.
func (u *upstream) remote() (remoteURL, *http.Client, error) {
	if u.urlErr != nil {
		return remoteURL{}, nil, u.urlErr
	}
	ru := u.url
	base := u.http
	if base == nil {
		base = remoteClient()
	}
	hc := *base
	hc.Transport = ru.roundTripper(base.Transport)
	return ru, &hc, nil
}

// scrub is err with the upstream's configured URL and header values
// hidden (remoteURL.scrub), or a stdio server's secrets (hider): every
// error an upstream hands on, and every one it logs, goes through it.
func (u *upstream) scrub(err error) error {
	if err == nil {
		return err
	}
	if u.spec.URL != "" && u.urlErr == nil {
		err = u.url.scrub(err)
	}
	msg := err.Error()
	if out := u.hider.hide(msg); out != msg {
		return &scrubbedError{msg: out, err: err}
	}
	return err
}

// tooLarge is the error message of a call whose response was over
// MaxMessage: what the agent can do about it.
func (u *upstream) tooLarge() string {
	return fmt.Sprintf("its answer was more than %d bytes, the limit on what server %q may send (max_message_bytes), so it was dropped: ask for less, such as a part of the file or a narrower query",
		u.spec.MaxMessage, u.spec.Name)
}

// tooManyLines is the error message of a call whose response came as an
// SSE event of more lines than lineLimit lets the client join.
func (u *upstream) tooManyLines() string {
	return fmt.Sprintf("its answer came split into so many SSE data lines that joining them would copy more than %d times the limit on what server %q may send (max_message_bytes), so it was dropped: the server should send each message as one line",
		sseCopyFactor, u.spec.Name)
}

func (u *upstream) dropped(id []byte, n int64) {
	u.log.Warn("dropped a message over the size limit", "bytes", n, "limit", u.spec.MaxMessage, "id", string(id))
}

// connect starts the transport, initializes and lists tools, all within
// StartTimeout.
func (u *upstream) connect(ctx context.Context) (*conn, []Tool, error) {
	ctx, cancel := context.WithTimeout(ctx, u.cat.o.StartTimeout)
	defer cancel()
	c := &conn{dead: make(chan struct{}), progress: map[string]toolgate.ProgressFunc{}, served: &u.served, linger: u.spec.Timeout}
	var tr transport.Interface
	switch {
	case u.spec.Server != nil:
		tr = transport.NewInProcessTransport(u.spec.Server)
	case u.spec.Command != "":
		p, err := startProcess(u.spec, u.log, u.hider.hide)
		if err != nil {
			return nil, nil, err
		}
		c.proc = p
		go func() {
			<-p.exited
			c.fail(p.exitError())
		}()
		limited := newLineLimit(p.stdout, u.spec.MaxMessage, false, u.tooLarge(), u.dropped)
		tr = transport.NewIO(u.schemas.reader(limited), p.stdin, p.stderrCloser())
	case u.spec.SSE:
		ru, hc, err := u.remote()
		if err != nil {
			return nil, nil, fmt.Errorf("sse transport: %w", err)
		}
		t, err := transport.NewSSE(ru.public, transport.WithHeaders(u.spec.Headers), transport.WithSSELogger(u.log),
			transport.WithHTTPClient(hc))
		if err != nil {
			return nil, nil, fmt.Errorf("sse transport: %w", u.scrub(err))
		}
		tr = t
	default:
		ru, hc, err := u.remote()
		if err != nil {
			return nil, nil, fmt.Errorf("http transport: %w", err)
		}
		t, err := transport.NewStreamableHTTP(ru.public, transport.WithHTTPHeaders(u.spec.Headers),
			transport.WithContinuousListening(), transport.WithHTTPLogger(u.log), transport.WithHTTPBasicClient(hc))
		if err != nil {
			return nil, nil, fmt.Errorf("http transport: %w", u.scrub(err))
		}
		tr = t
	}
	c.client = client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125),
		client.WithElicitationHandler(elicitRelay{u: u, c: c}), client.WithSamplingHandler(samplingRelay{u: u, c: c}))
	fail := func(err error) (*conn, []Tool, error) {
		_ = c.client.Close()
		if c.proc != nil {
			exited := c.proc.waitExit(300 * time.Millisecond)
			c.proc.stop()
			// A process that died during the handshake explains the failure.
			if exited {
				return nil, nil, fmt.Errorf("%w (while connecting: %v)", c.proc.exitError(), err)
			}
			return nil, nil, &procError{err: err, stderr: c.proc.stderrTail()}
		}
		return nil, nil, err
	}
	// The transport outlives this attempt's timeout: give it the supervisor's ctx.
	if err := c.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	c.client.OnNotification(func(n mcp.JSONRPCNotification) { u.notify(c, n) })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = mcp.Implementation{Name: "toolgate", Version: u.cat.o.Version}
	res, err := c.client.Initialize(ctx, req)
	if err != nil {
		return fail(fmt.Errorf("initialize: %w", err))
	}
	c.info, c.caps, c.instructions = res.ServerInfo, res.Capabilities, res.Instructions
	tools, err := u.list(ctx, c)
	if err != nil {
		return fail(err)
	}
	c.surf = u.listSurface(ctx, c)
	return c, tools, nil
}

// notify routes a notification from the upstream. It runs on the
// transport's read loop, so it must not block on the upstream.
func (u *upstream) notify(c *conn, n mcp.JSONRPCNotification) {
	switch n.Method {
	case string(mcp.MethodNotificationToolsListChanged):
		select {
		case u.relist <- struct{}{}:
		default:
		}
	case string(mcp.MethodNotificationResourcesListChanged), string(mcp.MethodNotificationPromptsListChanged):
		select {
		case u.relistSurf <- struct{}{}:
		default:
		}
	case string(mcp.MethodNotificationResourceUpdated):
		if fn := u.cat.o.Notify; fn != nil {
			fn(Notification{Server: u.spec.Name, Method: n.Method, Params: n.Params.AdditionalFields})
		}
	case string(mcp.MethodNotificationMessage):
		// The audience is decided now, on the read loop: a line an
		// upstream logs while it works on a request comes before its
		// answer, so that request is still in flight (logscope.go).
		if fn := u.cat.o.Notify; fn != nil {
			fn(Notification{Server: u.spec.Name, Method: n.Method, Params: n.Params.AdditionalFields, Audience: c.logAudience()})
		}
	case string(mcp.MethodNotificationProgress):
		f := n.Params.AdditionalFields
		tok := tokenKey(f["progressToken"])
		c.progMu.Lock()
		fn := c.progress[tok]
		c.progMu.Unlock()
		if fn == nil {
			return
		}
		progress, total := number(f["progress"]), number(f["total"])
		msg, _ := f["message"].(string)
		fn(progress, total, msg)
	}
}

func tokenKey(v any) string {
	switch t := v.(type) {
	case string:
		return "s:" + t
	case float64:
		return "n:" + strconv.FormatFloat(t, 'f', -1, 64)
	case int64:
		return "n:" + strconv.FormatInt(t, 10)
	default:
		return fmt.Sprintf("?:%v", v)
	}
}

// relistLoop relists tools, or resources and prompts, whenever the
// upstream says they changed.
func (u *upstream) relistLoop(ctx context.Context, c *conn) {
	for {
		select {
		case <-c.dead:
			return
		case <-ctx.Done():
			return
		case <-u.relistSurf:
			u.relistSurface(ctx, c)
			continue
		case <-u.relist:
		}
		lctx, cancel := context.WithTimeout(ctx, u.cat.o.StartTimeout)
		tools, err := u.list(lctx, c)
		cancel()
		if err != nil {
			u.log.Warn("relisting tools after list_changed failed", "err", u.scrub(err))
			continue
		}
		u.mu.Lock()
		u.tools = tools
		u.mu.Unlock()
		u.log.Info("upstream tools changed", "tools", len(tools))
		u.cat.rebuild()
	}
}

// list fetches all pages of tools/list. It talks to the transport directly
// (with string request ids, which cannot collide with the client's numeric
// ones) because mcp-go's typed Tool drops schema keywords it does not model.
func (u *upstream) list(ctx context.Context, c *conn) ([]Tool, error) {
	var out []Tool
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, errors.New("tools/list: more than 1000 pages")
		}
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		resp, err := c.client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION,
			ID:      mcp.NewRequestId(fmt.Sprintf("toolgate-list-%d", c.listSeq.Add(1))),
			Method:  string(mcp.MethodToolsList),
			Params:  params,
		})
		if err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("tools/list: %w", resp.Error.AsError())
		}
		var res struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &res); err != nil {
			return nil, fmt.Errorf("tools/list: bad result: %w", err)
		}
		for _, raw := range res.Tools {
			t, err := u.parseTool(raw, c.info.Version)
			if err != nil {
				u.log.Warn("upstream tool skipped", "err", err)
				continue
			}
			if seen[t.Name] {
				u.log.Warn("upstream listed a tool twice; first kept", "tool", t.Def.Name)
				continue
			}
			seen[t.Name] = true
			out = append(out, t)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			break
		}
		cursor = res.NextCursor
	}
	return out, nil
}

// parseTool decodes one tools/list entry, keeping its schemas as raw JSON.
func (u *upstream) parseTool(raw json.RawMessage, serverVersion string) (Tool, error) {
	def, unannotated, err := DecodeTool(raw)
	if err != nil {
		return Tool{}, err
	}
	sandbox := u.spec.Sandbox
	switch {
	case u.spec.Server != nil:
		if def.Meta != nil {
			sandbox, _ = def.Meta.AdditionalFields[MetaSandbox].(string)
		}
	case def.Meta != nil:
		// "toolgate/" keys are toolgate's word; an upstream's are dropped.
		def.Meta = foreignMeta(def.Meta)
	}
	hash, err := SchemaHash(def.RawInputSchema)
	if err != nil {
		return Tool{}, fmt.Errorf("tool %q: input schema: %w", def.Name, err)
	}
	canon, defHash, err := ToolDefinition(def, unannotated)
	if err != nil {
		return Tool{}, fmt.Errorf("tool %q: %w", def.Name, err)
	}
	return Tool{
		Sandbox:       sandbox,
		Unannotated:   unannotated,
		Name:          u.cat.exposedName(u.spec.Name, def.Name),
		Server:        u.spec.Name,
		ServerVersion: serverVersion,
		Def:           def,
		SchemaHash:    hash,
		Definition:    canon,
		DefHash:       defHash,
		Annotations:   AnnotationsOf(def),
	}, nil
}

// AnnotationsOf is def's behaviour hints as rules see them.
func AnnotationsOf(def mcp.Tool) toolgate.Annotations {
	a := def.Annotations
	return toolgate.Annotations{Title: a.Title, ReadOnly: a.ReadOnlyHint, Destructive: a.DestructiveHint,
		Idempotent: a.IdempotentHint, OpenWorld: a.OpenWorldHint}
}

// DecodeTool decodes one tools/list entry into the definition agents and
// rules are given and pins cover (Definition), with its schemas as the
// upstream's raw JSON (an absent input schema is {"type":"object"});
// unannotated is whether it has no annotations member. An entry with a key twice in one object is refused: the schemas
// reach agents as the upstream wrote them, and readers differ on which of
// two same keys counts (the pin keeps the last; a model reads both).
func DecodeTool(raw json.RawMessage) (def mcp.Tool, unannotated bool, err error) {
	if k, err := duplicateKey(raw); err != nil {
		return mcp.Tool{}, false, fmt.Errorf("undecodable tool: %w", err)
	} else if k != "" {
		return mcp.Tool{}, false, fmt.Errorf("tool refused: its definition has the key %q twice in one object", k)
	}
	if err := json.Unmarshal(raw, &def); err != nil {
		return mcp.Tool{}, false, fmt.Errorf("undecodable tool: %w", err)
	}
	// Decoded as def's members are (encoding/json matches keys in any
	// letter case, the last one winning), so these are def's schemas.
	var schemas struct {
		Input       json.RawMessage `json:"inputSchema"`
		Output      json.RawMessage `json:"outputSchema"`
		Annotations json.RawMessage `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &schemas); err != nil {
		return mcp.Tool{}, false, fmt.Errorf("tool %q: %w", def.Name, err)
	}
	if def.Name == "" {
		return mcp.Tool{}, false, errors.New("tool without a name")
	}
	if len(schemas.Input) == 0 || string(schemas.Input) == "null" {
		schemas.Input = json.RawMessage(`{"type":"object"}`)
	}
	def.InputSchema, def.RawInputSchema = mcp.ToolInputSchema{}, schemas.Input
	def.OutputSchema, def.RawOutputSchema = mcp.ToolOutputSchema{}, nil
	if len(schemas.Output) > 0 && string(schemas.Output) != "null" {
		def.RawOutputSchema = schemas.Output
	}
	if err := mcp.ValidateParamHeaderAnnotations(&def); err != nil {
		return mcp.Tool{}, false, fmt.Errorf("tool %q: %w", def.Name, err)
	}
	return def, len(schemas.Annotations) == 0 || string(schemas.Annotations) == "null", nil
}

// foreignMeta is an upstream tool's _meta without the "toolgate/" keys;
// nil when nothing else is left.
func foreignMeta(m *mcp.Meta) *mcp.Meta {
	out := &mcp.Meta{ProgressToken: m.ProgressToken, AdditionalFields: metaWithout(m.AdditionalFields, func(k string) bool {
		return strings.HasPrefix(k, "toolgate/")
	})}
	if out.ProgressToken == nil && out.AdditionalFields == nil {
		return nil
	}
	return out
}

// call forwards one call over the live connection, or fails fast.
// call forwards call and decodes the result; callResult with raw set
// passes a plain result on undecoded.
func (u *upstream) call(ctx context.Context, call toolgate.Call) (*mcp.CallToolResult, error) {
	r, err := u.callResult(ctx, call, false)
	if err != nil {
		return nil, err
	}
	return Decode(r)
}

// callResult forwards call; its error is scrubbed, as it reaches the agent
// and the audit log.
func (u *upstream) callResult(ctx context.Context, call toolgate.Call, raw bool) (toolgate.Result, error) {
	r, err := u.forward(ctx, call, raw)
	return r, u.scrub(err)
}

func (u *upstream) forward(ctx context.Context, call toolgate.Call, raw bool) (toolgate.Result, error) {
	u.mu.Lock()
	c := u.conn
	u.mu.Unlock()
	if c == nil {
		return toolgate.Result{}, u.unavailable()
	}
	if c.isDead() {
		return toolgate.Result{}, u.unavailableFrom(c)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, u.spec.Timeout, errCallTimeout)
	defer cancel()

	req := mcp.CallToolRequest{}
	req.Params.Name = call.Tool
	req.Params.Arguments = call.Args
	if req.Params.Arguments == nil {
		req.Params.Arguments = map[string]any{}
	}
	if _, err := u.confine(call); err != nil {
		return toolgate.Result{}, err
	}
	meta := &mcp.Meta{AdditionalFields: StripMeta(call.Meta)}
	if u.spec.Server != nil && (call.Sandbox != "" || call.SessionID != "") {
		if meta.AdditionalFields == nil {
			meta.AdditionalFields = map[string]any{}
		}
		if call.Sandbox != "" {
			meta.AdditionalFields[MetaSandbox] = call.Sandbox
		}
		if call.SessionID != "" {
			meta.AdditionalFields[MetaSession] = call.SessionID
		}
	}
	if fn := toolgate.ProgressFrom(ctx); fn != nil {
		tok := "toolgate-" + strconv.FormatInt(c.tokens.Add(1), 10)
		meta.ProgressToken = tok
		key := tokenKey(tok)
		c.progMu.Lock()
		c.progress[key] = fn
		c.progMu.Unlock()
		defer func() {
			c.progMu.Lock()
			delete(c.progress, key)
			c.progMu.Unlock()
		}()
	}
	if meta.ProgressToken != nil || meta.AdditionalFields != nil {
		req.Params.Meta = meta
	}

	asked := time.Now()
	release, err := u.admit(ctx, call.Principal)
	if err != nil {
		return toolgate.Result{}, err
	}
	defer release()
	waited := time.Since(asked)
	fl := c.track(ctx, &call)
	send := c.callTool
	if u.needsTask(call.Tool) {
		send = c.callAsTask // tasks.go
	}
	res, err := send(ctx, req.Params, raw)
	// Answered, or given up on (timed out, cancelled, the connection
	// failed) with the upstream perhaps still at work: it lingers.
	fl.end(ctx, err)
	if call.Settle && !upstreamAnswered(ctx, err) {
		u.settle(c, call.Tool)
	}
	if err == nil {
		c.answered.Store(time.Now().UnixNano())
		u.noteLinks(res)
		return res, nil
	}
	switch {
	case errors.Is(context.Cause(ctx), errCallTimeout):
		var queued string
		if waited >= time.Millisecond {
			queued = fmt.Sprintf(", %s of it waiting for a place (max_requests)", waited.Round(time.Millisecond))
		}
		return toolgate.Result{}, fmt.Errorf("upstream %q: %s timed out after %s%s", u.spec.Name, call.Tool, u.spec.Timeout, queued)
	case ctx.Err() != nil:
		return toolgate.Result{}, fmt.Errorf("upstream %q: %s: %w", u.spec.Name, call.Tool, ctx.Err())
	}
	if _, transportErr := errors.AsType[*transport.Error](err); !transportErr {
		return toolgate.Result{}, fmt.Errorf("upstream %q: %s: %w", u.spec.Name, call.Tool, err)
	}
	// The connection broke. A stdio process usually exits right after its
	// stdout closes; give it a moment so the error can say how it ended.
	if c.proc != nil {
		select {
		case <-c.dead:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if c.isDead() {
		return toolgate.Result{}, u.unavailableFrom(c)
	}
	go u.checkHealth(c, err)
	return toolgate.Result{}, fmt.Errorf("upstream %q: %s: %w", u.spec.Name, call.Tool, err)
}

// settle stops c's server, when it is a process, after toolgate gave up
// on a call of a Settle kind (toolgate.Call.Settle) without its answer:
// the server may still be at work on it (a write queued behind reads it
// was made to stall on), and the call's links are let go once it
// returns. The supervisor starts the server again.
func (u *upstream) settle(c *conn, tool string) {
	if c.proc == nil {
		return
	}
	u.log.Warn("stopping the upstream: a call was given up on without its answer, and the server may still act on it", "tool", tool)
	// The cause first: the calls the kill breaks report it.
	c.fail(fmt.Errorf("%w: a %s call that may change the workspace was given up on without its answer", errSettled, tool))
	c.proc.kill()
}

// errSettled is the end of a connection settle stopped: no crash, so the
// server is started again without a growing backoff.
var errSettled = errors.New("stopped by toolgate")

// unavailableFrom describes a connection that just died.
func (u *upstream) unavailableFrom(c *conn) *UnavailableError {
	e := &UnavailableError{Server: u.spec.Name, Reason: "connection lost"}
	if c.deadErr != nil {
		e.Reason = u.scrub(c.deadErr).Error()
		if pe, ok := errors.AsType[*procError](c.deadErr); ok {
			e.Stderr = lastLine(pe.stderr)
		}
	}
	return e
}

// pingLoop pings a remote upstream every interval in which it answered no
// call, and declares the connection dead after two failed pings in a row.
// It returns when the connection dies or ctx ends.
func (u *upstream) pingLoop(ctx context.Context, c *conn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-c.dead:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.answered.Load())) < interval {
			failed = 0
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, min(interval, 10*time.Second))
		err := c.client.Ping(pctx)
		cancel()
		switch {
		case err == nil:
			failed = 0
			c.answered.Store(time.Now().UnixNano())
		case ctx.Err() != nil:
			return
		default:
			failed++
			u.log.Warn("upstream ping failed", "err", u.scrub(err), "failed_in_a_row", failed)
			if failed >= 2 {
				c.fail(fmt.Errorf("health check: %d pings in a row failed: %w", failed, err))
				return
			}
		}
	}
}

// checkHealth pings an upstream after a transport error and declares the
// connection dead if the ping fails too.
func (u *upstream) checkHealth(c *conn, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.client.Ping(ctx); err != nil {
		c.fail(fmt.Errorf("call failed (%v) and ping failed: %w", cause, err))
	}
}

// number reads a JSON number that may not have been through encoding/json
// (in-process upstreams send Go ints).
func number(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case float32:
		return float64(n)
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case int32:
		return float64(n)
	case uint64:
		return float64(n)
	case json.Number:
		f, _ := n.Float64()
		return f
	default:
		return 0
	}
}
