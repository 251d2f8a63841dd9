package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools/sandbox"
)

// Defaults for [Options] fields left zero.
const (
	DefaultSeparator    = "__"
	DefaultCallTimeout  = 120 * time.Second
	DefaultStartTimeout = 60 * time.Second
	DefaultStartWait    = 15 * time.Second
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultPingInterval = 30 * time.Second
)

// ErrUnavailable is matched (errors.Is) by the errors Forward returns for a
// call to an upstream that is down or restarting; see [UnavailableError].
var ErrUnavailable = errors.New("upstream unavailable")

// ErrSandboxMismatch is matched by the error Forward returns when a call's
// sandbox profile is not the one its upstream's process runs in.
var ErrSandboxMismatch = errors.New("sandbox profile mismatch")

// ErrUnknownTool is returned by Forward for a call naming no catalog tool.
var ErrUnknownTool = errors.New("unknown tool")

// Upstream describes one upstream MCP server. Exactly one of Server
// (in-process), Command (stdio subprocess) and URL (HTTP) is set.
type Upstream struct {
	// Name is the server's name; tools are exposed as <Name><sep><tool>
	// (see ExposedName).
	Name string
	// Unprefixed exposes the server's tools under their upstream names
	// alone (still made valid by ExposedName). A name another upstream
	// lists too is exposed by neither (see Catalog.rebuild).
	Unprefixed bool
	// Command, Args, BaseEnv, Env and Dir start a stdio server. Its
	// environment is exactly BaseEnv followed by Env ("K=V"; a key in Env
	// overrides the same key in BaseEnv), never the environment toolgate
	// inherited: that holds toolgate's secrets (bearer token, Slack
	// tokens), and an upstream may hand its environment to the agent.
	// BaseEnv is the caller's allowlisted part of its own environment
	// (cmd/toolgate passes PATH, HOME, LANG and the like), Env the server's
	// configured variables; both empty means an empty environment. Dir ""
	// is toolgate's directory.
	Command string
	Args    []string
	BaseEnv []string
	Env     []string
	Dir     string
	// URL and Headers reach a streamable HTTP server, or a legacy HTTP+SSE
	// server when SSE is set.
	URL     string
	Headers map[string]string
	SSE     bool
	// Server is an in-process MCP server (the built-in workspace tools).
	// It chooses each call's sandbox: the call's profile is sent in
	// _meta[MetaSandbox].
	Server *server.MCPServer
	// Sandbox is the profile a stdio server's process runs in, by
	// Sandboxer; "" runs it directly. A call whose decision names another
	// profile is refused, since a running process cannot change its
	// sandbox.
	Sandbox   string
	Sandboxer *sandbox.Sandbox
	// Timeout bounds each tools/call; 0 means DefaultCallTimeout.
	Timeout time.Duration
	// MaxMessage bounds each message a stdio or HTTP server sends, in
	// bytes; 0 means DefaultMaxMessage. A response over it fails its call
	// with a message saying so; the connection stays up (lineLimit).
	MaxMessage int
	// MaxRequests is how many of the agents' requests (tool calls,
	// resource reads, prompts, completions) the upstream is sent at once,
	// 0 for no limit; MaxRequestsPerPrincipal how many of them one
	// principal's may be (0: MaxRequests). Requests over either wait, within
	// their timeout, and free places go to the waiting principals in turn.
	MaxRequests, MaxRequestsPerPrincipal int
}

func (u Upstream) transportName() string {
	switch {
	case u.Server != nil:
		return "inprocess"
	case u.Command != "":
		return "stdio"
	case u.SSE:
		return "sse"
	default:
		return "http"
	}
}

// Tool is one upstream tool as the catalog exposes it.
type Tool struct {
	// Name is the exposed name (ExposedName of Server and Def.Name).
	Name string
	// Server is the upstream's name; ServerVersion its serverInfo.version.
	Server        string
	ServerVersion string
	// Def is the upstream's definition, unchanged: its Name is the upstream
	// name and its input and output schemas are kept as raw JSON
	// (RawInputSchema, RawOutputSchema) exactly as the upstream sent them.
	Def mcp.Tool
	// SchemaHash is the hex sha256 of the canonical JSON of the input schema.
	SchemaHash string
	// Annotations are Def's behaviour hints.
	Annotations toolgate.Annotations
	// Elicits is whether the upstream was seen asking the user something
	// (elicitation) during a call of this tool; agents whose client cannot
	// answer are not shown it (see the mcp package).
	Elicits bool
	// Unannotated is whether the upstream listed the tool without an
	// annotations member (mcp.Tool cannot tell: it always has one, and
	// mcp-go always sends it), so that agents are not shown an empty one.
	Unannotated bool
	// Sandbox is the sandbox profile the tool runs in unless a decision
	// names another: for a built-in tool, its safe default (declared in
	// its definition's _meta under MetaSandbox); for a stdio upstream with
	// a profile, that profile; "" otherwise.
	Sandbox string
	// Definition is the canonical JSON of what a pin covers (see
	// [Definition]): Def as agents are sent it. DefHash is its hex sha256.
	Definition json.RawMessage
	DefHash    string
	// Pin is the definition's state against its pin, as of the catalog's
	// last rebuild; PinUnchecked without Options.Pins.
	Pin toolgate.Pin
}

// PinDef is what a pin covers of t.
func (t *Tool) PinDef() toolgate.ToolDef {
	return toolgate.ToolDef{Kind: toolgate.KindTool, Server: t.Server, Tool: t.Def.Name, Name: t.Name, Definition: t.Definition, Hash: t.DefHash}
}

// Call is a call of t carrying what t's definition decides (identity,
// version, annotations, schema, pin, sandbox profile); the caller adds the
// arguments and the call's context. The MCP edge and corpus scoring both
// build calls here, so rules see the same fields in both.
func (t *Tool) Call() toolgate.Call {
	return toolgate.Call{
		Server:        t.Server,
		Tool:          t.Def.Name,
		Name:          t.Name,
		Annotations:   t.Annotations,
		SchemaHash:    t.SchemaHash,
		ServerVersion: t.ServerVersion,
		Description:   t.Def.Description,
		InputSchema:   t.Def.RawInputSchema,
		Pin:           t.Pin,
		Sandbox:       t.Sandbox,
	}
}

// MetaSandbox is the _meta key under which toolgate tells its in-process
// server the sandbox profile of a call, and under which that server's tool
// definitions declare their default profile. Agents cannot set it:
// StripMeta removes every "toolgate/" key they send.
const MetaSandbox = "toolgate/sandbox"

// MetaSession is the _meta key under which toolgate tells its in-process
// servers the calling agent's session (StripMeta removes agents' own).
const MetaSession = "toolgate/session"

// Options configures a Catalog.
type Options struct {
	// Upstreams are the servers, in the order their tools are listed.
	Upstreams []Upstream
	// Separator joins server and tool names; "" means DefaultSeparator.
	Separator string
	// Version is toolgate's version, sent as clientInfo toolgate/<Version>.
	Version string
	// OnChange is called, from a catalog goroutine, after the set of exposed
	// tools changed (an upstream came up or relisted after list_changed).
	// It must not call Close.
	OnChange func()
	// StartTimeout bounds one connection attempt (spawn, initialize, list);
	// 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// StartWait bounds how long Start waits for every upstream's first
	// attempt; 0 means DefaultStartWait. Late upstreams appear via OnChange.
	StartWait time.Duration
	// MinBackoff and MaxBackoff bound the restart delay, which doubles per
	// failed attempt; 0 means the defaults (500ms, 30s).
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how often a connected HTTP or SSE upstream that has
	// not answered a call meanwhile is pinged; after two failed pings in a
	// row it is declared down (and reconnected with backoff), so its health
	// is known without waiting for a call to fail. Stdio upstreams are not
	// pinged: their process exiting is noticed at once. 0 means
	// DefaultPingInterval; negative disables the pings.
	PingInterval time.Duration
	// Notify receives, from a catalog goroutine, the upstreams'
	// notifications that go on to agents (log messages, resource
	// updates); nil drops them. It must not block.
	Notify func(Notification)
	// Logger receives upstream lifecycle events; nil discards.
	Logger *slog.Logger
	// Pins, when set, checks every upstream tool's definition against its
	// pin whenever the tool list is rebuilt (an upstream came up or
	// relisted, or Refresh); a failed check quarantines the tool
	// (PinError). In-process upstreams' tools are toolgate's own and get
	// PinBuiltin. nil leaves every tool PinUnchecked.
	Pins PinStore
}

// Catalog is the set of upstream servers and the tools they expose. It
// supervises each upstream: one that fails to start or crashes is logged
// (with its stderr tail) and restarted with exponential backoff, without
// affecting the others.
//
// While an upstream is down its last known tools stay listed, so agents keep
// a stable tool list and calls get a prompt error naming the upstream
// ([UnavailableError]) rather than a "tool not found". An upstream that
// never came up has no tools listed.
//
// Catalog implements gate.Forwarder. It is safe for concurrent use.
type Catalog struct {
	o    Options
	log  *slog.Logger
	ups  []*upstream
	byNm map[string]*upstream

	// rebuildMu serializes rebuilds: each reads every upstream's tools and
	// then stores the result, so two unserialized rebuilds could store an
	// older snapshot last and hide an upstream that is up.
	rebuildMu sync.Mutex

	mu     sync.RWMutex
	tools  []Tool
	index  map[string]Tool
	fprint string
	// surface is the merged resources and prompts (surface.go); nil
	// until the first rebuild.
	surface      *surfaceIndex
	surfacePrint string

	// level is the log level last set for the upstreams ("" for none),
	// sent again to those that reconnect.
	levelMu sync.Mutex
	level   mcp.LoggingLevel
	// refused lists the names not exposed because two servers' tools
	// have them (replaced by each rebuild); refusedPrompts the same for
	// prompts (each rebuildSurface).
	refused, refusedPrompts []*NameCollisionError

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New checks opts and returns a Catalog that has not connected to anything
// yet; call Start.
func New(opts Options) (*Catalog, error) {
	if opts.Separator == "" {
		opts.Separator = DefaultSeparator
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StartWait <= 0 {
		opts.StartWait = DefaultStartWait
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Catalog{o: opts, log: log, byNm: map[string]*upstream{}, index: map[string]Tool{}}
	var errs []error
	for _, u := range opts.Upstreams {
		n := 0
		for _, set := range []bool{u.Server != nil, u.Command != "", u.URL != ""} {
			if set {
				n++
			}
		}
		switch {
		case u.Name == "":
			errs = append(errs, errors.New("tools: an upstream has no name"))
			continue
		case c.byNm[u.Name] != nil:
			errs = append(errs, fmt.Errorf("tools: upstream %q given twice", u.Name))
			continue
		case n != 1:
			errs = append(errs, fmt.Errorf("tools: upstream %q needs exactly one of Server, Command and URL", u.Name))
			continue
		}
		if u.Timeout <= 0 {
			u.Timeout = DefaultCallTimeout
		}
		if u.MaxMessage <= 0 {
			u.MaxMessage = DefaultMaxMessage
		}
		up := &upstream{cat: c, spec: u, log: log.With("server", u.Name, "transport", u.transportName()), relist: make(chan struct{}, 1),
			relistSurf: make(chan struct{}, 1), subs: map[string]int{},
			share: newShare(u.MaxRequests, u.MaxRequestsPerPrincipal)}
		if u.URL != "" {
			up.http = remoteClient()
			up.http.Transport = up.schemas.roundTripper(limitTransport{next: up.http.Transport, max: u.MaxMessage,
				reason: up.tooLarge(), lines: up.tooManyLines(), onDrop: up.dropped})
			up.url, up.urlErr = newRemoteURL(u.URL, u.Headers)
		}
		up.hider = newHider(u)
		c.ups = append(c.ups, up)
		c.byNm[u.Name] = up
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Start connects to every upstream in the background and waits until each
// has made its first attempt (connected and listed, or failed) or
// StartWait passed, whichever is first. Upstreams keep being supervised
// until ctx ends or Close is called.
func (c *Catalog) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	firsts := make([]chan struct{}, len(c.ups))
	for i, u := range c.ups {
		firsts[i] = make(chan struct{})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			u.supervise(ctx, firsts[i])
		}()
	}
	deadline := time.NewTimer(c.o.StartWait)
	defer deadline.Stop()
	for i, ch := range firsts {
		select {
		case <-ch:
		case <-deadline.C:
			c.log.Warn("upstreams still starting; their tools will appear when they are up", "waited", c.o.StartWait, "pending", len(firsts)-i)
			return
		case <-ctx.Done():
			return
		}
	}
}

// Close stops supervising, disconnects every upstream and stops the
// subprocesses. It waits for them to exit.
func (c *Catalog) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	for _, u := range c.ups {
		if u.http != nil {
			u.http.CloseIdleConnections()
		}
	}
	return nil
}

// Tools returns the exposed tools, grouped by upstream in Options order.
// The slice is a copy.
func (c *Catalog) Tools() []Tool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.tools)
}

// Lookup returns the tool exposed under name.
func (c *Catalog) Lookup(name string) (Tool, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.index[name]
	return t, ok
}

// PinOf returns the current pin state of what call uses, by its kind: its
// tool, its prompt, for a resource read the listed resource or the
// template that routes its URI (RouteResource), for a completion the
// prompt or template it completes (an unapproved declaration's arguments
// are its upstream's unapproved text too). ok is false when the catalog
// lists no such declaration of call's server and name (a resource no list
// declares, which agents were told nothing about). It implements
// gate.PinSource.
func (c *Catalog) PinOf(call toolgate.Call) (toolgate.Pin, bool) {
	kind := call.KindName()
	if kind == toolgate.KindCompletion && call.Args["ref"] == "prompt" {
		kind = toolgate.KindPrompt
	}
	switch kind {
	case toolgate.KindTool:
		t, ok := c.Lookup(call.Name)
		if !ok || t.Server != call.Server || t.Def.Name != call.Tool {
			return toolgate.Pin{}, false
		}
		return t.Pin, true
	case toolgate.KindPrompt:
		p, ok := c.LookupPrompt(call.Name)
		if !ok || p.Server != call.Server || p.Def.Name != call.Tool {
			return toolgate.Pin{}, false
		}
		return p.Pin, true
	case toolgate.KindResource:
		uri, _ := call.Args["uri"].(string)
		return c.resourcePin(call.Server, uri)
	case toolgate.KindCompletion:
		return c.templatePin(call.Server, call.Tool)
	}
	return toolgate.Pin{}, false
}

// UpstreamStatus describes one upstream's current state.
type UpstreamStatus struct {
	Name      string
	Transport string
	Up        bool
	// ServerName and ServerVersion are the upstream's serverInfo.
	ServerName, ServerVersion string
	Tools                     int
	// Restarts counts connection attempts after the first.
	Restarts int
	// LastError is why the upstream last went down, "" if it never did.
	LastError string
	// Places is its max_requests (0: no limit); Busy how many of them the
	// agents' requests hold, Waiting how many requests wait for one.
	Places, Busy, Waiting int
}

// Status reports every upstream's state, in Options order.
func (c *Catalog) Status() []UpstreamStatus {
	out := make([]UpstreamStatus, 0, len(c.ups))
	for _, u := range c.ups {
		out = append(out, u.status())
	}
	return out
}

// Collisions returns the tool and prompt names not exposed because two
// servers list them, one error each naming both servers; nil when there
// are none. serve refuses to start while there are any.
func (c *Catalog) Collisions() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var errs []error
	for _, e := range slices.Concat(c.refused, c.refusedPrompts) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Refresh rebuilds the tool list and the merged resources and prompts,
// checking every pin again, and calls OnChange if anything changed (e.g.
// an admin approved a pin).
func (c *Catalog) Refresh() {
	c.rebuild()
	c.rebuildSurface()
}

// pinTimeout bounds checking one pin.
const pinTimeout = 10 * time.Second

// pin returns the pin state of d, listed by u: what Options.Pins says,
// fail closed.
func (c *Catalog) pin(u *upstream, d toolgate.ToolDef) toolgate.Pin {
	switch {
	case c.o.Pins == nil:
		return toolgate.Pin{}
	case u.spec.Server != nil:
		return toolgate.Pin{State: toolgate.PinBuiltin}
	}
	ctx, cancel := context.WithTimeout(context.Background(), pinTimeout)
	defer cancel()
	kind := d.KindName()
	p, err := c.o.Pins.CheckPin(ctx, d)
	if err != nil {
		c.log.Error("checking a pin failed; the "+toolgate.KindNoun(kind)+" is quarantined", "kind", kind, "name", d.Name, "server", d.Server, "err", err)
		return toolgate.Pin{State: toolgate.PinError, Err: err.Error()}
	}
	if p.Quarantined() {
		// The qualified name approves this declaration alone, whatever
		// else is exposed under its name.
		name := d.Name
		if kind != toolgate.KindTool {
			name = kind + ":" + d.Name
		}
		c.log.Warn(toolgate.KindNoun(kind)+" quarantined: its definition is not approved; review it with `toolgate tools show "+name+"`, approve it with `toolgate tools approve "+name+" --hash "+d.Hash+"`",
			"kind", kind, "name", d.Name, "server", d.Server, "pin", p.State, "def_hash", d.Hash)
	}
	return p
}

// rebuild recomputes the exposed tool list from every upstream's tools and
// calls OnChange when it differs from the previous one.
//
// A name two servers' tools are listed under is exposed by neither, at
// start and whenever it happens later: logged as an error with both
// servers and reported by Collisions. Which server came up first, or
// lists its tool first, does not matter, so none can take a name another
// lists, whether that one is slow to start or adds the tool later. An
// upstream that is down keeps its last tools' names.
func (c *Catalog) rebuild() {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	listed := make([][]Tool, len(c.ups))
	var claims []nameClaim
	for i, u := range c.ups {
		listed[i] = u.elicits.mark(u.currentTools())
		for _, t := range listed[i] {
			claims = append(claims, nameClaim{exposed: t.Name, server: t.Server, name: t.Def.Name})
		}
	}
	taken, refused := contested("tool", claims)
	for _, e := range refused {
		c.log.Error("tool not exposed: two servers list a tool under its name", "err", e, "tool", e.Name, "server", e.Server, "other_server", e.OtherServer)
	}
	var all []Tool
	index := map[string]Tool{}
	for i, ts := range listed {
		for _, t := range ts {
			if taken[t.Name] {
				continue
			}
			t.Pin = c.pin(c.ups[i], t.PinDef())
			index[t.Name] = t
			all = append(all, t)
		}
	}
	h := sha256.New()
	for _, t := range all {
		b, _ := json.Marshal(t.Def)
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00%s\x00%d\x00", t.Name, t.ServerVersion, b, t.Elicits, t.Pin.State, t.Pin.ApprovedAt.UnixNano())
	}
	fp := hex.EncodeToString(h.Sum(nil))

	c.mu.Lock()
	changed := fp != c.fprint
	c.tools, c.index, c.fprint = all, index, fp
	c.refused = refused
	c.mu.Unlock()
	if changed && c.o.OnChange != nil {
		c.o.OnChange()
	}
}

// exposedName is the name server's tool (prompt, resource) called name is
// exposed under, by ExposedName with the server's prefix setting.
func (c *Catalog) exposedName(server, name string) string {
	prefix := true
	if u := c.byNm[server]; u != nil {
		prefix = !u.spec.Unprefixed
	}
	return ExposedName(server, c.o.Separator, name, prefix)
}

// Forward sends call to its upstream (c.Server, c.Tool) and returns the
// upstream's result.
//
// The call gets the upstream's Timeout. Cancelling ctx cancels the upstream
// request (on stdio, mcp-go sends notifications/cancelled). When ctx carries
// a [toolgate.ProgressFunc], the upstream call gets its own progress token and the
// upstream's progress notifications are relayed to it. Meta keys reserved by
// MCP ("io.modelcontextprotocol/...") or toolgate ("toolgate/...") are not
// forwarded. A down upstream fails fast with an [*UnavailableError].
func (c *Catalog) Forward(ctx context.Context, call toolgate.Call) (*mcp.CallToolResult, error) {
	u := c.byNm[call.Server]
	if u == nil {
		return nil, fmt.Errorf("%w: no upstream named %q", ErrUnknownTool, call.Server)
	}
	return u.call(ctx, call)
}

// ForwardResult is Forward, except that a plain result from an upstream
// comes back undecoded (Result.Raw): what the upstream sent is passed on to
// the agent without being decoded and encoded again. Results of other
// shapes, and those of the built-in tools, come back decoded. It
// implements gate.Forwarder.
func (c *Catalog) ForwardResult(ctx context.Context, call toolgate.Call) (toolgate.Result, error) {
	u := c.byNm[call.Server]
	if u == nil {
		return toolgate.Result{}, fmt.Errorf("%w: no upstream named %q", ErrUnknownTool, call.Server)
	}
	return u.callResult(ctx, call, true)
}

// StripMeta returns meta without the keys toolgate must not forward: those
// under "io.modelcontextprotocol/" (protocol-level, per hop) and "toolgate/"
// (toolgate's own). It returns nil when nothing is left.
func StripMeta(meta map[string]any) map[string]any {
	return metaWithout(meta, func(k string) bool {
		return strings.HasPrefix(k, "io.modelcontextprotocol/") || strings.HasPrefix(k, "toolgate/") || k == "progressToken"
	})
}

// metaWithout returns meta without the keys drop names; nil when nothing
// is left.
func metaWithout(meta map[string]any, drop func(key string) bool) map[string]any {
	var out map[string]any
	for k, v := range meta {
		if drop(k) {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = v
	}
	return out
}

// UnavailableError is the error for a call to an upstream that is down or
// restarting. It matches ErrUnavailable with errors.Is.
type UnavailableError struct {
	// Server is the upstream's name.
	Server string
	// Reason says why it is down (e.g. "process exited: exit status 3").
	Reason string
	// Stderr is the last line the upstream wrote to stderr, if any.
	Stderr string
	// RetryIn is the time until the next restart attempt; 0 if one is running.
	RetryIn time.Duration
}

// Error describes the outage for the agent and the log.
func (e *UnavailableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream %q is unavailable", e.Server)
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, " (last stderr: %q)", e.Stderr)
	}
	if e.RetryIn > 0 {
		fmt.Fprintf(&b, "; toolgate restarts it in %s", e.RetryIn.Round(100*time.Millisecond))
	} else {
		b.WriteString("; toolgate is restarting it")
	}
	return b.String()
}

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }
