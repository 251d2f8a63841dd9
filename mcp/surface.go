package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/tools"
)

// Surface is what the upstreams offer beyond tools (resources, resource
// templates, prompts, completions, logging) and how to reach it.
// *tools.Catalog satisfies it.
type Surface interface {
	Surface() tools.Surface
	RouteResource(uri string) (tools.ResourceRoute, error)
	ReadResource(ctx context.Context, server, uri string, meta map[string]any) (*mcpgo.ReadResourceResult, error)
	LookupPrompt(name string) (tools.Prompt, bool)
	GetPrompt(ctx context.Context, p tools.Prompt, args map[string]string, meta map[string]any) (*mcpgo.GetPromptResult, error)
	TemplateServer(uriTemplate string) (string, error)
	Complete(ctx context.Context, server string, ref any, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error)
	Subscribe(ctx context.Context, uri string) (server string, err error)
	Unsubscribe(ctx context.Context, server, uri string) error
	SetLogLevel(ctx context.Context, level mcpgo.LoggingLevel) error
}

// runGate is a Gate that can run calls other than tool calls (resource
// reads, prompt gets, completions) through its pipeline. *gate.Gate is
// one; with any other Gate those calls are refused.
type runGate interface {
	Run(ctx context.Context, c toolgate.Call, run func(context.Context) (any, error)) (any, error)
}

// catchAllTemplate is registered with mcp-go so that every resources/read
// reaches readResource, which routes the URI itself: a resource link in a
// tool result may name a resource no list shows. It is never listed.
const (
	catchAllTemplate = "{+uri}"
	catchAllName     = "toolgate-any-resource" // an upstream template named so with that template would be hidden too
)

// surfaceState is the agent-facing half of the surface: what is
// registered with mcp-go, and each session's subscriptions and log level.
type surfaceState struct {
	registered [3]string // hashes of the resources, templates, prompts last registered

	mu sync.Mutex
	// subs maps a session to the URIs it subscribed to, each with the
	// upstream serving it ("" while that upstream's answer is pending).
	subs map[string]map[string]string
	// read holds the URIs each session has read through the gate (at most
	// maxReadURIs): it subscribes to those without another decision; a
	// subscription to any other is decided as a read (subscribe).
	read map[string]map[string]struct{}
	// levels are the log levels sessions set with logging/setLevel, each
	// with the session's principal; only those sessions get upstream log
	// messages, and only those of the principal a message is for (Notify).
	levels map[string]sessionLevel
	// upLevel is the level last sent to the upstreams: the most verbose
	// any session asked for.
	upLevel mcpgo.LoggingLevel
}

// sessionLevel is the log level a session set, and who the session is.
type sessionLevel struct {
	level     mcpgo.LoggingLevel
	principal toolgate.Principal
}

// surfaceOptions are the mcp-go options the surface needs. mcp-go only
// answers resources/*, prompts/*, completion/complete and logging/setLevel
// when their capability is configured, so all are; initialize then
// advertises only those some upstream has (advertise).
func (s *Server) surfaceOptions() []server.ServerOption {
	hooks := &server.Hooks{}
	hooks.AddAfterInitialize(func(_ context.Context, _ any, _ *mcpgo.InitializeRequest, res *mcpgo.InitializeResult) {
		s.advertise(&res.Capabilities, &res.Instructions)
	})
	hooks.AddAfterDiscover(func(_ context.Context, _ any, _ *mcpgo.DiscoverRequest, res *mcpgo.DiscoverResult) {
		s.advertise(&res.Capabilities, &res.Instructions)
	})
	hooks.AddOnRequestInitialization(s.interceptSubscription)
	hooks.AddAfterSetLevel(func(ctx context.Context, _ any, req *mcpgo.SetLevelRequest, _ *mcpgo.EmptyResult) {
		if sess := server.ClientSessionFromContext(ctx); sess != nil {
			s.setLevel(ctx, sess.SessionID(), toolgate.PrincipalFrom(ctx), req.Params.Level)
		}
	})
	hooks.AddOnUnregisterSession(func(ctx context.Context, sess server.ClientSession) { s.endSession(ctx, sess.SessionID()) })
	hooks.AddAfterListResourceTemplates(func(_ context.Context, _ any, _ *mcpgo.ListResourceTemplatesRequest, res *mcpgo.ListResourceTemplatesResult) {
		res.ResourceTemplates = slices.DeleteFunc(res.ResourceTemplates, func(t mcpgo.ResourceTemplate) bool {
			return t.Name == catchAllName && t.URITemplate != nil && t.URITemplate.Raw() == catchAllTemplate
		})
	})
	return []server.ServerOption{
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithLogging(),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{s}),
		server.WithResourceCompletionProvider(completer{s}),
		server.WithHooks(hooks),
	}
}

// advertise makes the capabilities initialize (or server/discover)
// returns those of the upstreams that are up (toolgate sends list_changed
// itself whenever its merged lists change), and its instructions
// toolgate's own followed by each upstream's, under the upstream's name.
func (s *Server) advertise(caps *mcpgo.ServerCapabilities, instructions *string) {
	sf := s.o.Surface.Surface()
	if !sf.Caps.Resources {
		caps.Resources = nil
	} else if caps.Resources != nil {
		caps.Resources.Subscribe = sf.Caps.Subscribe
	}
	if !sf.Caps.Prompts {
		caps.Prompts = nil
	}
	if !sf.Caps.Logging {
		caps.Logging = nil
	}
	if !sf.Caps.Completions {
		caps.Completions = nil
	}
	*instructions = combineInstructions(s.o.Instructions, sf.Instructions)
}

// combineInstructions is toolgate's instructions, then each upstream's
// under a line naming the upstream; a quarantined upstream's text is
// replaced by why it is withheld.
func combineInstructions(own string, ups []tools.ServerInstructions) string {
	parts := []string{}
	if own = strings.TrimSpace(own); own != "" {
		parts = append(parts, own)
	}
	for _, in := range ups {
		text := in.Text
		if in.Pin.Quarantined() {
			text = "QUARANTINED by toolgate, withheld: " + in.Pin.Refusal(toolgate.KindInstructions, in.Server) + "."
		}
		parts = append(parts, fmt.Sprintf("Instructions of the MCP server %q (behind toolgate; the names of its tools, prompts and resources start with %q unless configured otherwise):\n%s",
			in.Server, in.Server, text))
	}
	return strings.Join(parts, "\n\n")
}

// syncSurface registers the upstreams' current resources, templates and
// prompts with mcp-go under their exposed names, each group only when it
// changed (mcp-go sends agents list_changed for every registration). A
// quarantined one (tools.Decl.Pin) is registered as its stub.
func (s *Server) syncSurface() {
	if s.o.Surface == nil {
		return
	}
	sf := s.o.Surface.Surface()

	var res []server.ServerResource
	for _, r := range sf.Resources {
		def := r.Def
		def.Name = r.Name
		if r.Pin.Quarantined() {
			def = mcpgo.Resource{URI: r.Def.URI, Name: r.Def.URI, Description: quarantinedText(r.Pin, toolgate.KindResource, r.Name)}
		}
		res = append(res, server.ServerResource{Resource: def, Handler: s.readResource})
	}
	if changedGroup(&s.surf.registered[0], res, func(r server.ServerResource) any { return r.Resource }) {
		s.mcp.SetResources(res...)
	}

	tpls := []server.ServerResourceTemplate{{
		Template: mcpgo.NewResourceTemplate(catchAllTemplate, catchAllName),
		Handler:  s.readResource,
	}}
	for _, t := range sf.Templates {
		def := t.Def
		def.Name = t.Name
		if t.Pin.Quarantined() {
			def = mcpgo.ResourceTemplate{URITemplate: t.Def.URITemplate, Name: t.Def.URITemplate.Raw(),
				Description: quarantinedText(t.Pin, toolgate.KindResourceTemplate, t.Name)}
		}
		tpls = append(tpls, server.ServerResourceTemplate{Template: def, Handler: s.readResource})
	}
	if changedGroup(&s.surf.registered[1], tpls, func(t server.ServerResourceTemplate) any { return t.Template }) {
		s.mcp.SetResourceTemplates(tpls...)
	}

	var prompts []server.ServerPrompt
	for _, p := range sf.Prompts {
		def := p.Def
		def.Name = p.Name
		if p.Pin.Quarantined() {
			def = mcpgo.Prompt{Name: p.Name, Description: quarantinedText(p.Pin, toolgate.KindPrompt, p.Name)}
		}
		prompts = append(prompts, server.ServerPrompt{Prompt: def, Handler: s.getPrompt})
	}
	if changedGroup(&s.surf.registered[2], prompts, func(p server.ServerPrompt) any { return p.Prompt }) {
		s.mcp.SetPrompts(prompts...)
	}
}

// quarantinedText is the description of a quarantined declaration's stub,
// which keeps only what identifies it (a prompt's name, a resource's URI,
// a template's URI template): as for a quarantined tool (quarantinedDef),
// none of the upstream's unapproved text (description, title, arguments,
// annotations, _meta, icons) reaches the agent, and a get or read of it
// reaches the gate, which refuses and records it.
func quarantinedText(p toolgate.Pin, kind, name string) string {
	return "QUARANTINED by toolgate, every use is refused: " + p.Refusal(kind, name) + "."
}

// changedGroup reports whether the definitions of items differ from those
// last registered (hash in *last), and records them.
func changedGroup[T any](last *string, items []T, def func(T) any) bool {
	h := sha256.New()
	for _, it := range items {
		b, _ := json.Marshal(def(it))
		h.Write(b)
		h.Write([]byte{0})
	}
	sum := string(h.Sum(nil))
	if sum == *last {
		return false
	}
	*last = sum
	return true
}

// newCall is the gate call of one request that is not a tool call, with
// who asked (session, client, model) filled in.
func (s *Server) newCall(ctx context.Context, kind, server, upstreamName, exposed string, args map[string]any, meta *mcpgo.Meta, modelHeader string) toolgate.Call {
	c := toolgate.Call{Kind: kind, Server: server, Tool: upstreamName, Name: exposed, Args: args, Time: s.o.Now()}
	var m map[string]any
	if meta != nil {
		m = meta.AdditionalFields
	}
	if v, present := m[MetaConfidence]; present {
		c.Confidence = s.confidence(exposed, MetaConfidence, v)
	}
	s.identify(ctx, &c, m, modelHeader)
	return c
}

// run passes c through the gate, which calls fn if the call may go ahead.
func (s *Server) run(ctx context.Context, c toolgate.Call, fn func(context.Context) (any, error)) (any, error) {
	g, ok := s.o.Gate.(runGate)
	if !ok {
		return nil, fmt.Errorf("toolgate refused %s: this gate decides tool calls only", c.Name)
	}
	return g.Run(ctx, c, fn)
}

// readResource serves resources/read: it routes the URI to its upstream
// and reads it as a gated call of kind resource.
func (s *Server) readResource(ctx context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
	uri := req.Params.URI
	c, err := s.resourceCall(ctx, uri, map[string]any{"uri": uri}, req.Params.Meta, req.Header.Get(HeaderModel))
	if err != nil {
		return nil, err
	}
	out, err := s.run(ctx, c, func(ctx context.Context) (any, error) {
		return s.o.Surface.ReadResource(ctx, c.Server, uri, c.Meta)
	})
	if err != nil {
		return nil, err
	}
	if sess := server.ClientSessionFromContext(ctx); sess != nil {
		s.noteRead(sess.SessionID(), uri)
	}
	return out.(*mcpgo.ReadResourceResult).Contents, nil
}

// maxReadURIs bounds the URIs remembered as read per session.
const maxReadURIs = 4096

// noteRead records that session read uri through the gate.
func (s *Server) noteRead(session, uri string) {
	s.surf.mu.Lock()
	defer s.surf.mu.Unlock()
	if s.surf.read == nil {
		s.surf.read = map[string]map[string]struct{}{}
	}
	r := s.surf.read[session]
	if r == nil {
		r = map[string]struct{}{}
		s.surf.read[session] = r
	}
	if len(r) < maxReadURIs {
		r[uri] = struct{}{}
	}
}

// getPrompt serves prompts/get as a gated call of kind prompt.
func (s *Server) getPrompt(ctx context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
	p, ok := s.o.Surface.LookupPrompt(req.Params.Name)
	if !ok {
		return nil, fmt.Errorf("toolgate: prompt %s is no longer available: %w", req.Params.Name, tools.ErrUnknownPrompt)
	}
	args := make(map[string]any, len(req.Params.Arguments))
	for k, v := range req.Params.Arguments {
		args[k] = v
	}
	c := s.newCall(ctx, toolgate.KindPrompt, p.Server, p.Def.Name, p.Name, args, req.Params.Meta, req.Header.Get(HeaderModel))
	out, err := s.run(ctx, c, func(ctx context.Context) (any, error) {
		return s.o.Surface.GetPrompt(ctx, p, req.Params.Arguments, c.Meta)
	})
	if err != nil {
		return nil, err
	}
	return out.(*mcpgo.GetPromptResult), nil
}

// completer routes completion/complete to the upstream owning the prompt
// or resource template, as a gated call of kind completion.
type completer struct{ s *Server }

func (cp completer) CompletePromptArgument(ctx context.Context, name string, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	p, ok := cp.s.o.Surface.LookupPrompt(name)
	if !ok {
		return nil, fmt.Errorf("toolgate: no prompt %s: %w", name, tools.ErrUnknownPrompt)
	}
	ref := mcpgo.PromptReference{Type: "ref/prompt", Name: p.Def.Name}
	args := completionArgs(map[string]any{"ref": "prompt", "name": p.Def.Name}, arg, cctx)
	return cp.complete(ctx, cp.s.newCall(ctx, toolgate.KindCompletion, p.Server, p.Def.Name, p.Name, args, nil, ""), ref, arg, cctx)
}

func (cp completer) CompleteResourceArgument(ctx context.Context, uriTemplate string, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	server, err := cp.s.o.Surface.TemplateServer(uriTemplate)
	if err != nil {
		return nil, fmt.Errorf("toolgate: %w", err)
	}
	ref := mcpgo.ResourceReference{Type: "ref/resource", URI: uriTemplate}
	args := completionArgs(map[string]any{"ref": "resource", "uri": uriTemplate}, arg, cctx)
	return cp.complete(ctx, cp.s.newCall(ctx, toolgate.KindCompletion, server, uriTemplate, uriTemplate, args, nil, ""), ref, arg, cctx)
}

// completionArgs adds to args what the agent sends upstream with a
// completion: the argument, its value, and the values of the other
// arguments it has filled in (context.arguments), which the upstream may
// act on, so the rules and the log see them too.
func completionArgs(args map[string]any, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) map[string]any {
	args["argument"], args["value"] = arg.Name, arg.Value
	if len(cctx.Arguments) > 0 {
		ctxArgs := make(map[string]any, len(cctx.Arguments))
		for k, v := range cctx.Arguments {
			ctxArgs[k] = v
		}
		args["context"] = ctxArgs
	}
	return args
}

func (cp completer) complete(ctx context.Context, c toolgate.Call, ref any, arg mcpgo.CompleteArgument, cctx mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	out, err := cp.s.run(ctx, c, func(ctx context.Context) (any, error) {
		return cp.s.o.Surface.Complete(ctx, c.Server, ref, arg, cctx)
	})
	if err != nil {
		return nil, err
	}
	return out.(*mcpgo.Completion), nil
}

// interceptSubscription relays resources/subscribe and unsubscribe to the
// upstream before mcp-go acknowledges them, so that a subscription the
// upstream refuses is an error for the agent. It runs for every request;
// others pass untouched.
func (s *Server) interceptSubscription(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !(bytes.Contains(raw, []byte(mcpgo.MethodResourcesSubscribe)) || bytes.Contains(raw, []byte(mcpgo.MethodResourcesUnsubscribe))) {
		return nil
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			URI string `json:"uri"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Params.URI == "" {
		return nil // mcp-go answers the malformed request
	}
	sess := server.ClientSessionFromContext(ctx)
	if sess == nil {
		return nil
	}
	switch m.Method {
	case string(mcpgo.MethodResourcesSubscribe):
		return s.subscribe(ctx, sess.SessionID(), m.Params.URI)
	case string(mcpgo.MethodResourcesUnsubscribe):
		return s.unsubscribe(ctx, sess.SessionID(), m.Params.URI)
	}
	return nil
}

// subscribe subscribes session to uri: at once when the session has read
// it through the gate, else as a gated read of it.
func (s *Server) subscribe(ctx context.Context, session, uri string) error {
	s.surf.mu.Lock()
	_, read := s.surf.read[session][uri]
	_, dup := s.surf.subs[session][uri]
	full := len(s.surf.subs[session]) >= maxSubscriptions
	s.surf.mu.Unlock()
	if full && !dup {
		return errTooManySubscriptions // before the gate: a refusal to keep it is not a read
	}
	if read {
		return s.relaySubscribe(ctx, session, uri)
	}
	// An update tells its subscriber when the resource changed, so a
	// subscription to a resource the session has not read is decided as
	// a read of it (kind resource, args uri and subscribe), and audited.
	c, err := s.resourceCall(ctx, uri, map[string]any{"uri": uri, "subscribe": true}, nil, "")
	if err != nil {
		return err
	}
	_, err = s.run(ctx, c, func(ctx context.Context) (any, error) { return nil, s.relaySubscribe(ctx, session, uri) })
	return err
}

// maxURIBytes bounds a resource URI read or subscribed to: real ones are
// far shorter, and each is held per session (read, subs), audited and
// sent upstream, so a body-sized URI would cost all of that a thousandfold.
const maxURIBytes = 8 << 10

// maxSubscriptions bounds one session's subscriptions, which last as long
// as the session and each hold an upstream subscription.
const maxSubscriptions = 256

var errTooManySubscriptions = fmt.Errorf("toolgate: this session has %d resource subscriptions, as many as toolgate keeps for one session: unsubscribe from one first", maxSubscriptions)

// resourceCall routes uri to its upstream and makes the gated call of kind
// resource on it, with args (the uri among them).
func (s *Server) resourceCall(ctx context.Context, uri string, args map[string]any, meta *mcpgo.Meta, modelHeader string) (toolgate.Call, error) {
	if len(uri) > maxURIBytes {
		return toolgate.Call{}, fmt.Errorf("toolgate: the resource URI is %d bytes, more than the %d toolgate accepts", len(uri), maxURIBytes)
	}
	route, err := s.o.Surface.RouteResource(uri)
	if err != nil {
		return toolgate.Call{}, fmt.Errorf("toolgate: %w", err)
	}
	name := route.Name
	if name == "" {
		name = uri
	}
	return s.newCall(ctx, toolgate.KindResource, route.Server, name, route.Exposed, args, meta, modelHeader), nil
}

// relaySubscribe records that session subscribed to uri; the catalog
// subscribes upstream for the first session. While the upstream answers,
// the session's entry is "" (pending), so a repeated subscribe counts once.
func (s *Server) relaySubscribe(ctx context.Context, session, uri string) error {
	s.surf.mu.Lock()
	if _, dup := s.surf.subs[session][uri]; dup {
		s.surf.mu.Unlock()
		return nil
	}
	if len(s.surf.subs[session]) >= maxSubscriptions {
		s.surf.mu.Unlock()
		return errTooManySubscriptions
	}
	if s.surf.subs == nil {
		s.surf.subs = map[string]map[string]string{}
	}
	if s.surf.subs[session] == nil {
		s.surf.subs[session] = map[string]string{}
	}
	s.surf.subs[session][uri] = ""
	s.surf.mu.Unlock()

	server, err := s.o.Surface.Subscribe(ctx, uri)

	s.surf.mu.Lock()
	_, wanted := s.surf.subs[session][uri] // gone if the session ended or unsubscribed meanwhile
	switch {
	case err != nil && wanted:
		delete(s.surf.subs[session], uri)
	case err == nil && wanted:
		s.surf.subs[session][uri] = server
	}
	s.surf.mu.Unlock()
	if err != nil {
		return fmt.Errorf("toolgate: %w", err)
	}
	if !wanted {
		if err := s.o.Surface.Unsubscribe(context.WithoutCancel(ctx), server, uri); err != nil {
			s.log.Warn("dropping a subscription its session no longer wants failed", "uri", uri, "server", server, "err", err)
		}
	}
	return nil
}

func (s *Server) unsubscribe(ctx context.Context, session, uri string) error {
	s.surf.mu.Lock()
	server, ok := s.surf.subs[session][uri]
	delete(s.surf.subs[session], uri)
	s.surf.mu.Unlock()
	if !ok || server == "" {
		return nil
	}
	if err := s.o.Surface.Unsubscribe(ctx, server, uri); err != nil {
		s.log.Warn("unsubscribing upstream failed", "uri", uri, "server", server, "err", err)
	}
	return nil
}

// endSession drops an ended session's subscriptions and log level.
func (s *Server) endSession(ctx context.Context, session string) {
	s.surf.mu.Lock()
	subs := s.surf.subs[session]
	delete(s.surf.subs, session)
	delete(s.surf.read, session)
	_, hadLevel := s.surf.levels[session]
	delete(s.surf.levels, session)
	s.surf.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for uri, server := range subs {
		if server == "" {
			continue // pending: subscribe unsubscribes when it returns
		}
		if err := s.o.Surface.Unsubscribe(ctx, server, uri); err != nil {
			s.log.Warn("unsubscribing upstream after the session ended failed", "uri", uri, "server", server, "err", err)
		}
	}
	if hadLevel {
		s.relayLevel(ctx)
	}
}

// logLevels orders MCP's log levels, most verbose first.
var logLevels = []mcpgo.LoggingLevel{
	mcpgo.LoggingLevelDebug, mcpgo.LoggingLevelInfo, mcpgo.LoggingLevelNotice, mcpgo.LoggingLevelWarning,
	mcpgo.LoggingLevelError, mcpgo.LoggingLevelCritical, mcpgo.LoggingLevelAlert, mcpgo.LoggingLevelEmergency,
}

// setLevel records session's level (mcp-go validated it and set it on the
// session, which filters what the session gets) and principal, and relays
// the most verbose level any session asked for to the upstreams.
func (s *Server) setLevel(ctx context.Context, session string, p toolgate.Principal, level mcpgo.LoggingLevel) {
	s.surf.mu.Lock()
	if s.surf.levels == nil {
		s.surf.levels = map[string]sessionLevel{}
	}
	s.surf.levels[session] = sessionLevel{level: level, principal: p}
	s.surf.mu.Unlock()
	s.relayLevel(ctx)
}

func (s *Server) relayLevel(ctx context.Context) {
	if s.o.Surface == nil {
		return
	}
	s.surf.mu.Lock()
	want := mcpgo.LoggingLevel("")
	for _, sl := range s.surf.levels {
		l := sl.level
		if want == "" || slices.Index(logLevels, l) < slices.Index(logLevels, want) {
			want = l
		}
	}
	if want == s.surf.upLevel || want == "" {
		s.surf.mu.Unlock()
		return
	}
	s.surf.upLevel = want
	s.surf.mu.Unlock()
	if err := s.o.Surface.SetLogLevel(ctx, want); err != nil {
		s.log.Warn("relaying logging/setLevel to upstreams failed", "level", want, "err", err)
	}
}

// Notify delivers an upstream's notification to the agent sessions it is
// for: notifications/resources/updated, with its URI alone, to the
// sessions subscribed to that URI; notifications/message, with the logger
// prefixed by the upstream's name, to the sessions that set a log level
// (each filtered by its level) and belong to the principal the catalog
// put the message down to (n.Audience): a line an upstream wrote while
// serving one principal's request never reaches another principal's agent.
// A message that is no one's is dropped, and only that is logged.
// It never blocks. Use it as the catalog's Notify.
func (s *Server) Notify(n tools.Notification) {
	switch n.Method {
	case string(mcpgo.MethodNotificationResourceUpdated):
		uri, _ := n.Params["uri"].(string)
		s.surf.mu.Lock()
		var to []string
		for session, subs := range s.surf.subs {
			if subs[uri] == n.Server {
				to = append(to, session)
			}
		}
		s.surf.mu.Unlock()
		// Only the URI, which is the subscriber's own: an upstream's other
		// params (content, _meta) would hand a session a resource the
		// rules never decided it may read.
		for _, session := range to {
			if err := s.mcp.SendNotificationToSpecificClient(session, n.Method, map[string]any{"uri": uri}); err != nil {
				s.log.Debug("resource update not delivered", "session", session, "uri", uri, "err", err)
			}
		}
	case string(mcpgo.MethodNotificationMessage):
		level, _ := n.Params["level"].(string)
		logger, _ := n.Params["logger"].(string)
		if logger == "" {
			logger = n.Server
		} else {
			logger = n.Server + "/" + logger
		}
		aud := n.Audience
		if !aud.Anyone && !aud.One {
			// No data: the line may be any principal's.
			s.log.Debug("upstream log message dropped: it cannot be put down to one principal's requests", "server", n.Server)
			return
		}
		msg := mcpgo.NewLoggingMessageNotification(mcpgo.LoggingLevel(level), logger, n.Params["data"])
		s.surf.mu.Lock()
		to := make([]string, 0, len(s.surf.levels))
		for session, sl := range s.surf.levels {
			if aud.Anyone || sl.principal.Same(aud.Principal) {
				to = append(to, session)
			}
		}
		s.surf.mu.Unlock()
		for _, session := range to {
			if err := s.mcp.SendLogMessageToSpecificClient(session, msg); err != nil && !errors.Is(err, server.ErrSessionNotFound) {
				s.log.Debug("log message not delivered", "session", session, "err", err)
			}
		}
	}
}
