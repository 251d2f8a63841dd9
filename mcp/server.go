// Package mcp is toolgate's agent-facing edge: an MCP server (stdio or
// streamable HTTP) that lists the catalog's tools and turns each tools/call
// into a [tools.Call] for the [Gate].
//
// Every wrapped tool keeps its upstream definition (description, schemas,
// annotations, title, icons) under its exposed name, with one addition: an
// optional "_confidence" number in its input schema, where the model states
// how confident it is that the call is correct and safe. toolgate removes it
// from the arguments before rules see them or the upstream gets them.
//
// A typical wiring:
//
//	cat, _ := tools.New(tools.Options{Upstreams: ups, OnChange: func() { srv.SyncSoon() }})
//	srv, _ := mcp.New(mcp.Options{Version: v, Gate: g, Catalog: cat})
//	cat.Start(ctx)
//	srv.Sync()
//	err := srv.ServeStdio(ctx, os.Stdin, os.Stdout)
package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools"
)

// Keys toolgate reads from a request's _meta, and the HTTP header for the model.
const (
	MetaModel       = "toolgate/model"      // "name", "name@version" or {"name","version"}
	MetaConfidence  = "toolgate/confidence" // number in 0..1
	HeaderModel     = "X-Toolgate-Model"    // "name" or "name@version"
	ConfidenceParam = "_confidence"         // the input-schema property added to every tool
)

// TaskNote ends the description of a tool its upstream runs only as a task.
const TaskNote = "(toolgate runs this tool synchronously: the call returns when the upstream's task has ended.)"

// confidenceSchema is the property added to each wrapped tool's input schema.
var confidenceSchema = json.RawMessage(`{"type":"number","minimum":0,"maximum":1,"description":"toolgate: state honestly how confident you are (0 = not at all, 1 = certain) that this call is correct, safe and what the user wants. Low confidence may route the call to a human for review."}`)

// Gate runs one call through policy and returns the result for the agent:
// a refusal, a decoded result, or an upstream's JSON to pass on as it
// came. *gate.Gate satisfies it.
type Gate interface {
	Handle(ctx context.Context, c toolgate.Call) toolgate.Result
}

// Catalog is the source of the tools to expose. *tools.Catalog satisfies it.
type Catalog interface {
	Tools() []tools.Tool
}

// Options configures a Server.
type Options struct {
	// Version is toolgate's version, reported in serverInfo.
	Version string
	// Gate receives every tools/call. Required.
	Gate Gate
	// Catalog lists the tools to expose. Required.
	Catalog Catalog
	// Surface, when set, exposes the upstreams' resources, resource
	// templates, prompts, completions and logging (surface.go); nil
	// exposes tools only.
	Surface Surface
	// DefaultModel is used when a call names no model (_meta or header).
	DefaultModel toolgate.Peer
	// Instructions are sent to agents in the initialize result; "" for none.
	Instructions string
	// Logger receives protocol and call-building events; nil discards.
	Logger *slog.Logger
	// Now is the clock for Call.Time; nil means time.Now.
	Now func() time.Time
	// MaxLineBytes limits a message over stdio, as HTTPOptions'
	// MaxRequestBytes does a request body; 0 means DefaultMaxRequestBytes.
	MaxLineBytes int64
}

// Server is the agent-facing MCP server.
type Server struct {
	o   Options
	log *slog.Logger
	mcp *server.MCPServer

	syncMu     sync.Mutex
	registered string // hash of the tool set last registered
	// exposed maps each exposed tool name to what its calls need; Sync
	// replaces it whole. Both the mcp-go handlers and the stdio fast path
	// (fastcall.go) look tools up in it at call time.
	exposed   atomic.Pointer[map[string]*exposedTool]
	soonMu    sync.Mutex
	soonTimer *time.Timer
	surf      surfaceState
}

// syncDelay is how long SyncSoon waits. It coalesces bursts of catalog
// changes, and it lets the HTTP request that caused a change (e.g. a tool
// that registers tools) finish first: mcp-go's streamable HTTP server lets
// any in-flight POST of the session take a notification off the session's
// queue, and one that is just finishing drops it.
const syncDelay = 50 * time.Millisecond

// New returns a Server with no tools registered yet; call Sync.
func New(o Options) (*Server, error) {
	if o.Gate == nil {
		return nil, errors.New("mcp: no gate")
	}
	if o.Catalog == nil {
		return nil, errors.New("mcp: no catalog")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxRequestBytes
	}
	s := &Server{o: o, log: o.Logger}
	opts := []server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithRecovery(),
		server.WithElicitation(),
		// Tools seen eliciting are not listed to clients that cannot
		// answer (toolslist.go); mcp-go applies the filter to calls too.
		server.WithToolFilter(s.hideEliciting),
		// Arguments that do not match the tool's input schema are refused
		// as a tool error (SEP-1303) before the gate sees them: the agent
		// learns what to fix, and no upstream gets input it never declared.
		// The handler validates them (see schema.go), not mcp-go's
		// server.WithInputSchemaValidation.
	}
	if o.Instructions != "" {
		opts = append(opts, server.WithInstructions(o.Instructions))
	}
	if o.Surface != nil {
		opts = append(opts, s.surfaceOptions()...)
	}
	s.mcp = server.NewMCPServer("toolgate", o.Version, opts...)
	return s, nil
}

// MCPServer returns the underlying mcp-go server, e.g. for elicitation
// requests from the review package.
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// Sync registers the catalog's current tools, replacing the previous set.
// Connected agents get notifications/tools/list_changed. Safe to call from
// any goroutine (it is the catalog's OnChange).
func (s *Server) Sync() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.syncSurface()
	var list []server.ServerTool
	exposed := map[string]*exposedTool{}
	h := sha256.New()
	for _, t := range s.o.Catalog.Tools() {
		st, e, err := s.wrap(t)
		if err != nil {
			s.log.Warn("tool not exposed", "tool", t.Name, "server", t.Server, "err", err)
			continue
		}
		b, err := json.Marshal(st.Tool)
		if err != nil {
			s.log.Warn("tool not exposed", "tool", t.Name, "server", t.Server, "err", err)
			continue
		}
		h.Write(b)
		h.Write([]byte{0})
		if t.Elicits {
			// Agents that cannot elicit see the tool go.
			h.Write([]byte{1})
		}
		list = append(list, st)
		exposed[t.Name] = e
	}
	// What calls record (upstream version, schema hash, annotations) can
	// change without the definitions agents see changing: the map is
	// always replaced.
	s.exposed.Store(&exposed)
	// Re-registering an identical set would only send agents a spurious
	// list_changed.
	sum := string(h.Sum(nil))
	if sum == s.registered {
		return
	}
	s.registered = sum
	s.mcp.SetTools(list...)
	s.log.Debug("tools registered", "tools", len(list))
}

// SyncSoon schedules a Sync shortly (see syncDelay), coalescing calls made
// meanwhile. Use it as the catalog's OnChange.
func (s *Server) SyncSoon() {
	s.soonMu.Lock()
	defer s.soonMu.Unlock()
	if s.soonTimer != nil {
		return
	}
	s.soonTimer = time.AfterFunc(syncDelay, func() {
		s.soonMu.Lock()
		s.soonTimer = nil
		s.soonMu.Unlock()
		s.Sync()
	})
}

// exposedTool is one catalog tool as agents call it.
type exposedTool struct {
	tool tools.Tool
	// ownsConfidence is whether toolgate added _confidence to the tool's
	// schema (it does not when the upstream has its own property of that
	// name).
	ownsConfidence bool
	// schema checks the arguments; nil: not enforced.
	schema *inputSchema
}

// lookup returns the exposed tool of that name, or nil.
func (s *Server) lookup(name string) *exposedTool {
	if m := s.exposed.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// wrap builds the exposed definition and handler of one catalog tool.
func (s *Server) wrap(t tools.Tool) (server.ServerTool, *exposedTool, error) {
	def := t.Def
	if t.Pin.Quarantined() {
		def = quarantinedDef(t)
	}
	def.Name = t.Name
	// toolgate answers every call synchronously and relays no tasks/*:
	// every tool is listed without execution. One that may run as a task
	// is called without; one that must is run as a task by toolgate
	// (tools/tasks.go), which its description says.
	if tools.NeedsTask(def) {
		def.Description = strings.TrimSpace(def.Description + "\n\n" + TaskNote)
	}
	def.Execution = nil
	schema := def.RawInputSchema
	if len(schema) == 0 {
		b, err := json.Marshal(def.InputSchema)
		if err != nil {
			return server.ServerTool{}, nil, fmt.Errorf("input schema: %w", err)
		}
		schema = b
	}
	withConf, added, err := tools.AddProperty(schema, ConfidenceParam, confidenceSchema)
	if err != nil {
		return server.ServerTool{}, nil, err
	}
	def.InputSchema, def.RawInputSchema = mcpgo.ToolInputSchema{}, withConf
	if err := mcpgo.ValidateParamHeaderAnnotations(&def); err != nil {
		return server.ServerTool{}, nil, err
	}
	// Arguments are checked against the upstream's schema, _confidence
	// apart (validateArgs).
	in, err := compileInputSchema(t.Name, schema)
	if err != nil {
		s.log.Warn("input schema not enforced", "tool", t.Name, "server", t.Server, "err", err)
	}
	return server.ServerTool{Tool: def, Handler: s.handler}, &exposedTool{tool: t, ownsConfidence: added, schema: in}, nil
}

// quarantinedDef is what agents see of a quarantined tool (tools.Pin):
// its name, and a description saying it is quarantined and why, with an
// open input schema so that a call reaches the gate, which refuses and
// records it. None of the upstream's unapproved text (description, title,
// schema descriptions, annotations) reaches the agent: a rug pull's new
// description may itself be the attack, instructions to the model.
func quarantinedDef(t tools.Tool) mcpgo.Tool {
	return mcpgo.Tool{
		Name:           t.Def.Name,
		Description:    quarantinedText(t.Pin, toolgate.KindTool, t.Name),
		RawInputSchema: json.RawMessage(`{"type":"object"}`),
	}
}

// handler serves a tools/call that mcp-go dispatched (streamable HTTP, and
// the stdio requests the fast path leaves to mcp-go).
func (s *Server) handler(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	e := s.lookup(req.Params.Name)
	if e == nil {
		// Removed between mcp-go's lookup and this one.
		return mcpgo.NewToolResultError(fmt.Sprintf("toolgate: tool %s is no longer available", req.Params.Name)), nil
	}
	res := s.call(ctx, e, req.Params.Arguments, req.Params.Meta, req.Header.Get(HeaderModel), false)
	if res.RPCError != nil {
		// mcp-go answers a handler's error with code -32603 and its text,
		// except -32042 (URL elicitation required), whose code and data it
		// keeps: RPCError unwraps to mcp-go's error for that code. The
		// stdio fast path passes any code and data on (fastcall.go).
		return nil, res.RPCError
	}
	return res.Value.(*mcpgo.CallToolResult), nil
}

// call turns one tools/call of e into a tools.Call and hands it to the
// gate. Arguments that fail e's schema are refused before the gate.
// modelHeader is the request's X-Toolgate-Model header ("" for none). The
// result is decoded unless raw is set and the gate can pass it on as its
// upstream's JSON; a decoded result's Value is an *mcpgo.CallToolResult.
func (s *Server) call(ctx context.Context, e *exposedTool, arguments any, reqMeta *mcpgo.Meta, modelHeader string, raw bool) toolgate.Result {
	t := &e.tool
	if err := validateArgs(e, arguments); err != nil {
		return tools.Decoded(mcpgo.NewToolResultError(err.Error()))
	}
	c := t.Call()
	c.Time = s.o.Now()
	var meta map[string]any
	if reqMeta != nil {
		meta = reqMeta.AdditionalFields
	}
	args, ok := arguments.(map[string]any)
	if !ok && arguments != nil {
		return tools.Decoded(mcpgo.NewToolResultError(fmt.Sprintf("toolgate: arguments of %s must be a JSON object", t.Name)))
	}
	c.Args = make(map[string]any, len(args))
	for k, v := range args {
		c.Args[k] = v
	}
	if e.ownsConfidence {
		if v, present := c.Args[ConfidenceParam]; present {
			delete(c.Args, ConfidenceParam)
			c.Confidence = s.confidence(t.Name, ConfidenceParam, v)
		}
	}
	if v, present := meta[MetaConfidence]; present && c.Confidence == nil {
		c.Confidence = s.confidence(t.Name, MetaConfidence, v)
	}
	s.identify(ctx, &c, meta, modelHeader)
	if reqMeta != nil && reqMeta.ProgressToken != nil {
		ctx = toolgate.WithProgress(ctx, s.progress(ctx, reqMeta.ProgressToken))
	}
	res := s.o.Gate.Handle(ctx, c)
	if res.Empty() {
		return tools.Decoded(mcpgo.NewToolResultError(fmt.Sprintf("toolgate: no result for %s", t.Name)))
	}
	if raw && res.Raw != nil {
		return res
	}
	d, err := tools.Decode(res)
	if err != nil {
		return tools.Decoded(mcpgo.NewToolResultError(fmt.Sprintf("toolgate: the result of %s could not be read: %v", t.Name, err)))
	}
	dec := tools.Decoded(d)
	dec.RPCError = res.RPCError
	return dec
}

// identify fills in who makes call c, a tool call or any other gated
// request: the principal the edge authenticated, the agent's session and
// client, the model (meta, else the model header, else the default), and
// the _meta to pass upstream.
func (s *Server) identify(ctx context.Context, c *toolgate.Call, meta map[string]any, modelHeader string) {
	c.Principal = toolgate.PrincipalFrom(ctx)
	if sess := server.ClientSessionFromContext(ctx); sess != nil {
		c.SessionID = sess.SessionID()
		if ci, ok := sess.(server.SessionWithClientInfo); ok {
			info := ci.GetClientInfo()
			c.Client = toolgate.Peer{Name: info.Name, Version: info.Version}
		}
	}
	c.Model = s.model(meta, modelHeader)
	c.Meta = tools.StripMeta(meta)
}

// progress returns a ProgressFunc that reports to the agent under token.
func (s *Server) progress(ctx context.Context, token mcpgo.ProgressToken) toolgate.ProgressFunc {
	return func(progress, total float64, message string) {
		params := map[string]any{"progressToken": token, "progress": progress}
		if total > 0 {
			params["total"] = total
		}
		if message != "" {
			params["message"] = message
		}
		if notifyRequest(ctx, string(mcpgo.MethodNotificationProgress), params) {
			return
		}
		if err := s.mcp.SendNotificationToClient(ctx, string(mcpgo.MethodNotificationProgress), params); err != nil {
			s.log.Debug("progress notification not delivered", "err", err)
		}
	}
}

// confidence reads a stated confidence; anything but a number in 0..1 is
// unknown (nil), and noted in the log.
func (s *Server) confidence(tool, from string, v any) *float64 {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			s.log.Info("ignored non-numeric confidence", "tool", tool, "from", from)
			return nil
		}
	default:
		s.log.Info("ignored non-numeric confidence", "tool", tool, "from", from, "type", fmt.Sprintf("%T", v))
		return nil
	}
	if f < 0 || f > 1 || f != f {
		s.log.Info("ignored out-of-range confidence", "tool", tool, "from", from, "value", f)
		return nil
	}
	return &f
}

// model picks the model: _meta, else the HTTP header, else the default.
func (s *Server) model(meta map[string]any, header string) toolgate.Peer {
	switch m := meta[MetaModel].(type) {
	case string:
		if p := parseModel(m); p.Name != "" {
			return p
		}
	case map[string]any:
		name, _ := m["name"].(string)
		version, _ := m["version"].(string)
		if name = strings.TrimSpace(name); name != "" {
			return toolgate.Peer{Name: name, Version: strings.TrimSpace(version)}
		}
	}
	if p := parseModel(header); p.Name != "" {
		return p
	}
	return s.o.DefaultModel
}

// parseModel reads "name" or "name@version".
func parseModel(s string) toolgate.Peer {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '@'); i > 0 {
		return toolgate.Peer{Name: strings.TrimSpace(s[:i]), Version: strings.TrimSpace(s[i+1:])}
	}
	return toolgate.Peer{Name: s}
}

// ParseModel reads a model given as "name" or "name@version", as in
// TOOLGATE_MODEL or the X-Toolgate-Model header.
func ParseModel(s string) toolgate.Peer { return parseModel(s) }
