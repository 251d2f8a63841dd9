package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate"
)

// ErrUnknownResource matches (errors.Is) the error for a resource URI that
// no upstream lists or whose templates match; ErrAmbiguousResource the one
// for a URI two upstreams could both serve, which toolgate refuses rather
// than guess.
var (
	ErrUnknownResource   = errors.New("unknown resource")
	ErrAmbiguousResource = errors.New("ambiguous resource")
	ErrUnknownPrompt     = errors.New("unknown prompt")
)

// Resource is one upstream resource as the catalog exposes it: its name is
// prefixed like a tool's, its URI is the upstream's, unchanged, so resource
// links in tool results stay readable through toolgate.
type Resource struct {
	// Name is the exposed name: <Server><separator><Def.Name>.
	Name   string
	Server string
	// Def is the upstream's definition, unchanged.
	Def mcp.Resource
	Decl
}

// ResourceTemplate is one upstream resource template as exposed (name
// prefixed, URI template unchanged).
type ResourceTemplate struct {
	Name   string
	Server string
	Def    mcp.ResourceTemplate
	Decl
}

// Prompt is one upstream prompt as exposed (name prefixed).
type Prompt struct {
	Name   string
	Server string
	Def    mcp.Prompt
	Decl
}

// Decl is what pinning knows of a resource, template or prompt.
type Decl struct {
	// Definition is the canonical JSON of what a pin covers (see
	// [Definition]): Def as agents are sent it. DefHash is its hex sha256.
	Definition json.RawMessage
	DefHash    string
	// Pin is the definition's state against its pin, as of the catalog's
	// last rebuildSurface; PinUnchecked without Options.Pins. Agents are
	// shown a quarantined one's stub, and its reads or gets are refused.
	Pin toolgate.Pin
}

// declOf is the pinning half of def, or why def cannot be pinned.
func declOf(def any) (Decl, error) {
	canon, hash, err := Definition(def)
	return Decl{Definition: canon, DefHash: hash}, err
}

// PinDef is what a pin covers of r: a resource is identified by its URI.
func (r *Resource) PinDef() toolgate.ToolDef {
	return toolgate.ToolDef{Kind: toolgate.KindResource, Server: r.Server, Tool: r.Def.URI, Name: r.Name, Definition: r.Definition, Hash: r.DefHash}
}

// PinDef is what a pin covers of t: a template is identified by its URI
// template as written.
func (t *ResourceTemplate) PinDef() toolgate.ToolDef {
	return toolgate.ToolDef{Kind: toolgate.KindResourceTemplate, Server: t.Server, Tool: t.Def.URITemplate.Raw(), Name: t.Name,
		Definition: t.Definition, Hash: t.DefHash}
}

// PinDef is what a pin covers of p.
func (p *Prompt) PinDef() toolgate.ToolDef {
	return toolgate.ToolDef{Kind: toolgate.KindPrompt, Server: p.Server, Tool: p.Def.Name, Name: p.Name, Definition: p.Definition, Hash: p.DefHash}
}

// Capabilities is what the upstreams offer beyond tools, merged: a feature
// is present when at least one upstream that is up offers it.
type Capabilities struct {
	Resources, Subscribe, Prompts, Logging, Completions bool
}

// Surface is everything but tools that the upstreams expose, merged.
type Surface struct {
	Resources []Resource
	Templates []ResourceTemplate
	Prompts   []Prompt
	Caps      Capabilities
	// Instructions are the upstreams' initialize instructions, by server,
	// in Options order; servers without any are left out.
	Instructions []ServerInstructions
}

// ServerInstructions are one upstream's initialize instructions, pinned
// as its prompts are: a quarantined one is withheld from agents.
type ServerInstructions struct {
	Server string
	Text   string
	Decl
}

// PinDef is what a pin covers of in: the text, under its server's name.
func (in *ServerInstructions) PinDef() toolgate.ToolDef {
	return toolgate.ToolDef{Kind: toolgate.KindInstructions, Server: in.Server, Tool: in.Server, Name: in.Server, Definition: in.Definition, Hash: in.DefHash}
}

// upSurface is what one upstream offers beyond tools, as last listed.
type upSurface struct {
	caps         mcp.ServerCapabilities
	instructions string
	resources    []Resource
	templates    []ResourceTemplate
	prompts      []Prompt
}

// listSurface lists an upstream's resources, templates and prompts, each
// only when its capabilities say it has them. A list that fails is logged
// and left empty: the upstream's tools still work.
func (u *upstream) listSurface(ctx context.Context, c *conn) upSurface {
	s := upSurface{caps: c.caps, instructions: c.instructions}
	if c.caps.Resources != nil {
		if res, err := c.client.ListResources(ctx, mcp.ListResourcesRequest{}); err != nil {
			u.log.Warn("resources/list failed; the upstream's resources are not exposed", "err", err)
		} else {
			// A resource's pin is keyed by its URI: two listed with one URI
			// would each overwrite the other's seen definition on every
			// listing, so the first is kept (as a prompt listed twice is).
			uris := map[string]bool{}
			for _, r := range res.Resources {
				if uris[r.URI] {
					u.log.Warn("upstream listed a resource URI twice; first kept", "resource", r.Name, "uri", r.URI)
					continue
				}
				uris[r.URI] = true
				d, err := declOf(r)
				if err != nil {
					u.log.Warn("upstream resource skipped", "resource", r.URI, "err", err)
					continue
				}
				s.resources = append(s.resources, Resource{Name: u.cat.exposedName(u.spec.Name, r.Name), Server: u.spec.Name, Def: r, Decl: d})
			}
		}
		if res, err := c.client.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{}); err != nil {
			u.log.Warn("resources/templates/list failed; the upstream's resource templates are not exposed", "err", err)
		} else {
			tpls := map[string]bool{} // keyed by URI template, as their pins are
			for _, t := range res.ResourceTemplates {
				if t.URITemplate == nil || t.URITemplate.Template == nil {
					u.log.Warn("upstream resource template without a URI template skipped", "template", t.Name)
					continue
				}
				raw := t.URITemplate.Raw()
				if tpls[raw] {
					u.log.Warn("upstream listed a URI template twice; first kept", "template", t.Name, "uri_template", raw)
					continue
				}
				tpls[raw] = true
				d, err := declOf(t)
				if err != nil {
					u.log.Warn("upstream resource template skipped", "template", t.Name, "err", err)
					continue
				}
				s.templates = append(s.templates, ResourceTemplate{Name: u.cat.exposedName(u.spec.Name, t.Name), Server: u.spec.Name, Def: t, Decl: d})
			}
		}
	}
	if c.caps.Prompts != nil {
		if res, err := c.client.ListPrompts(ctx, mcp.ListPromptsRequest{}); err != nil {
			u.log.Warn("prompts/list failed; the upstream's prompts are not exposed", "err", err)
		} else {
			for _, p := range res.Prompts {
				d, err := declOf(p)
				if err != nil {
					u.log.Warn("upstream prompt skipped", "prompt", p.Name, "err", err)
					continue
				}
				s.prompts = append(s.prompts, Prompt{Name: u.cat.exposedName(u.spec.Name, p.Name), Server: u.spec.Name, Def: p, Decl: d})
			}
		}
	}
	return s
}

func (u *upstream) currentSurface() upSurface {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		// A down upstream serves nothing: its resources and prompts go
		// until it is back (unlike its tools, which stay listed so a call
		// gets a clear error; a resource read of a down upstream would
		// only fail).
		return upSurface{}
	}
	return u.surf
}

// lastPrompts returns the prompts the upstream listed last, also while
// it is down: their names stay its own (rebuildSurface).
func (u *upstream) lastPrompts() []Prompt {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.surf.prompts
}

// relistSurface lists again after a resources or prompts list_changed.
func (u *upstream) relistSurface(ctx context.Context, c *conn) {
	lctx, cancel := context.WithTimeout(ctx, u.cat.o.StartTimeout)
	s := u.listSurface(lctx, c)
	cancel()
	u.mu.Lock()
	if u.conn != c {
		u.mu.Unlock()
		return
	}
	u.surf = s
	u.mu.Unlock()
	u.log.Info("upstream resources or prompts changed", "resources", len(s.resources), "templates", len(s.templates), "prompts", len(s.prompts))
	u.cat.rebuildSurface()
}

// surfaceIndex is the merged surface and what routing needs of it.
type surfaceIndex struct {
	Surface
	byURI    map[string][]string // resource URI -> servers listing it
	prompts  map[string]Prompt   // by exposed name
	template map[string][]string // URI template (as written) -> servers
}

// rebuildSurface recomputes the merged surface, checking the pin of each
// resource, template and prompt exposed (as rebuild does each tool's),
// and calls OnChange when it differs from the previous one. A prompt name
// two servers list is exposed by neither, as a tool name is
// (Catalog.rebuild); a server that is down keeps the names of the prompts
// it listed last.
func (c *Catalog) rebuildSurface() {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	idx := &surfaceIndex{byURI: map[string][]string{}, prompts: map[string]Prompt{}, template: map[string][]string{}}
	seenRes, seenTpl := map[string]bool{}, map[string]bool{}
	var claims []nameClaim
	for _, u := range c.ups {
		for _, p := range u.lastPrompts() {
			claims = append(claims, nameClaim{exposed: p.Name, server: p.Server, name: p.Def.Name})
		}
	}
	taken, refused := contested("prompt", claims)
	for _, e := range refused {
		c.log.Error("prompt not exposed: two servers list a prompt under its name", "err", e, "prompt", e.Name, "server", e.Server, "other_server", e.OtherServer)
	}
	for _, u := range c.ups {
		s := u.currentSurface()
		if s.caps.Resources != nil {
			idx.Caps.Resources = true
			idx.Caps.Subscribe = idx.Caps.Subscribe || s.caps.Resources.Subscribe
		}
		idx.Caps.Prompts = idx.Caps.Prompts || s.caps.Prompts != nil
		idx.Caps.Logging = idx.Caps.Logging || s.caps.Logging != nil
		idx.Caps.Completions = idx.Caps.Completions || s.caps.Completions != nil
		if t := strings.TrimSpace(s.instructions); t != "" {
			in := ServerInstructions{Server: u.spec.Name, Text: t}
			if d, err := declOf(t); err != nil {
				in.Pin = toolgate.Pin{State: toolgate.PinError, Err: err.Error()}
			} else {
				in.Decl = d
				in.Pin = c.pin(u, in.PinDef())
			}
			idx.Instructions = append(idx.Instructions, in)
		}
		for _, r := range s.resources {
			if !slices.Contains(idx.byURI[r.Def.URI], r.Server) {
				idx.byURI[r.Def.URI] = append(idx.byURI[r.Def.URI], r.Server)
			}
			if seenRes[r.Name] {
				c.log.Warn("exposed resource name collides; later resource not listed", "resource", r.Name, "server", r.Server)
				continue
			}
			seenRes[r.Name] = true
			r.Pin = c.pin(u, r.PinDef())
			idx.Resources = append(idx.Resources, r)
		}
		for _, t := range s.templates {
			raw := t.Def.URITemplate.Raw()
			if !slices.Contains(idx.template[raw], t.Server) {
				idx.template[raw] = append(idx.template[raw], t.Server)
			}
			if seenTpl[t.Name] {
				c.log.Warn("exposed resource template name collides; later template not listed", "template", t.Name, "server", t.Server)
				continue
			}
			seenTpl[t.Name] = true
			t.Pin = c.pin(u, t.PinDef())
			idx.Templates = append(idx.Templates, t)
		}
		for _, p := range s.prompts {
			if taken[p.Name] {
				continue
			}
			if _, dup := idx.prompts[p.Name]; dup {
				c.log.Warn("upstream listed a prompt twice; first kept", "prompt", p.Name, "server", p.Server)
				continue
			}
			p.Pin = c.pin(u, p.PinDef())
			idx.prompts[p.Name] = p
			idx.Prompts = append(idx.Prompts, p)
		}
	}
	b, _ := json.Marshal(struct {
		R []Resource
		T []ResourceTemplate
		P []Prompt
		C Capabilities
		I []ServerInstructions
	}{idx.Resources, idx.Templates, idx.Prompts, idx.Caps, idx.Instructions})
	sum := sha256.Sum256(b)
	fp := hex.EncodeToString(sum[:])

	c.mu.Lock()
	changed := fp != c.surfacePrint
	c.surface, c.surfacePrint, c.refusedPrompts = idx, fp, refused
	c.mu.Unlock()
	if changed && c.o.OnChange != nil {
		c.o.OnChange()
	}
}

func (c *Catalog) surfaceIdx() *surfaceIndex {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.surface == nil {
		return &surfaceIndex{}
	}
	return c.surface
}

// Surface returns the merged resources, templates, prompts, capabilities
// and instructions of the upstreams that are up. The slices are shared:
// do not modify them.
func (c *Catalog) Surface() Surface { return c.surfaceIdx().Surface }

// ResourceRoute is where a resource read goes.
type ResourceRoute struct {
	// Server is the upstream that serves the URI.
	Server string
	// Name is the upstream's name for what was matched: the resource's
	// name for a listed URI, the template's for one a template matched, ""
	// when neither (the only upstream with resources gets it).
	Name string
	// Exposed is Name as agents see it (prefixed); the URI when Name is "".
	Exposed string
	// Template is the matching URI template, "" for a listed resource.
	Template string
}

// RouteResource finds the upstream that serves uri: the one that lists it
// or has a template that matches it; else the one whose tool results
// linked to it (a tool's resource link may name a resource no list shows);
// else, when exactly one upstream offers resources, that one. A URI two
// upstreams could serve, by listing it or by a template, is an error
// ([ErrAmbiguousResource]) naming both: toolgate does not guess where a
// read goes, and an upstream cannot take over another's URIs by listing
// them.
func (c *Catalog) RouteResource(uri string) (ResourceRoute, error) {
	idx := c.surfaceIdx()
	var (
		routes []ResourceRoute
		claims []string
	)
	for _, server := range idx.byURI[uri] {
		r := ResourceRoute{Server: server, Exposed: uri}
		if i := slices.IndexFunc(idx.Resources, func(r Resource) bool { return r.Def.URI == uri && r.Server == server }); i >= 0 {
			r.Name, r.Exposed = idx.Resources[i].Def.Name, idx.Resources[i].Name
		}
		routes = append(routes, r)
		claims = append(claims, server+" (lists it)")
	}
	for _, t := range idx.Templates {
		if !t.Def.URITemplate.Regexp().MatchString(uri) {
			continue
		}
		claims = append(claims, fmt.Sprintf("%s (template %s)", t.Server, t.Def.URITemplate.Raw()))
		if !slices.ContainsFunc(routes, func(r ResourceRoute) bool { return r.Server == t.Server }) {
			routes = append(routes, ResourceRoute{Server: t.Server, Name: t.Def.Name, Exposed: t.Name, Template: t.Def.URITemplate.Raw()})
		}
	}
	switch {
	case len(routes) == 1:
		return routes[0], nil // a listed resource comes first: its own template matching it is no rival
	case len(routes) > 1:
		return ResourceRoute{}, fmt.Errorf("%w: %s could be served by the upstreams %s; toolgate cannot tell which one to read it from",
			ErrAmbiguousResource, uri, strings.Join(claims, ", "))
	}
	var linked []string
	for _, u := range c.ups {
		if u.links.has(uri) {
			linked = append(linked, u.spec.Name)
		}
	}
	switch {
	case len(linked) == 1:
		return ResourceRoute{Server: linked[0], Exposed: uri}, nil
	case len(linked) > 1:
		return ResourceRoute{}, fmt.Errorf("%w: tool results of the upstreams %s link to %s; toolgate cannot tell which one to read it from",
			ErrAmbiguousResource, strings.Join(linked, " and "), uri)
	}
	var only []string
	for _, u := range c.ups {
		if s := u.currentSurface(); s.caps.Resources != nil {
			only = append(only, u.spec.Name)
		}
	}
	if len(only) == 1 {
		return ResourceRoute{Server: only[0], Exposed: uri}, nil
	}
	return ResourceRoute{}, fmt.Errorf("%w: no upstream lists %s or has a resource template matching it", ErrUnknownResource, uri)
}

// resourcePin is the pin of what routes a read of uri to server: the
// resource listed with that URI, else the template matching it (as
// RouteResource chooses); ok is false when neither is listed.
func (c *Catalog) resourcePin(server, uri string) (toolgate.Pin, bool) {
	route, err := c.RouteResource(uri)
	if err != nil || route.Server != server {
		return toolgate.Pin{}, false
	}
	idx := c.surfaceIdx()
	if route.Template == "" {
		i := slices.IndexFunc(idx.Resources, func(r Resource) bool { return r.Server == server && r.Def.URI == uri })
		if i < 0 {
			return toolgate.Pin{}, false
		}
		return idx.Resources[i].Pin, true
	}
	return c.templatePin(server, route.Template)
}

// templatePin is the pin of server's resource template written exactly
// uriTemplate; ok is false when server lists none.
func (c *Catalog) templatePin(server, uriTemplate string) (toolgate.Pin, bool) {
	idx := c.surfaceIdx()
	i := slices.IndexFunc(idx.Templates, func(t ResourceTemplate) bool { return t.Server == server && t.Def.URITemplate.Raw() == uriTemplate })
	if i < 0 {
		return toolgate.Pin{}, false
	}
	return idx.Templates[i].Pin, true
}

// LookupPrompt returns the prompt exposed under name.
func (c *Catalog) LookupPrompt(name string) (Prompt, bool) {
	p, ok := c.surfaceIdx().prompts[name]
	return p, ok
}

// TemplateServer returns the upstream whose resource template is written
// exactly uriTemplate (how completion/complete names a template).
func (c *Catalog) TemplateServer(uriTemplate string) (string, error) {
	servers := c.surfaceIdx().template[uriTemplate]
	switch len(servers) {
	case 0:
		return "", fmt.Errorf("%w: no upstream has the resource template %s", ErrUnknownResource, uriTemplate)
	case 1:
		return servers[0], nil
	}
	return "", fmt.Errorf("%w: the upstreams %s both have the resource template %s", ErrAmbiguousResource, strings.Join(servers, " and "), uriTemplate)
}

// live returns server's live connection, or why there is none.
func (c *Catalog) live(server string) (*upstream, *conn, error) {
	u := c.byNm[server]
	if u == nil {
		return nil, nil, fmt.Errorf("%w: no upstream named %q", ErrUnknownTool, server)
	}
	u.mu.Lock()
	cn := u.conn
	u.mu.Unlock()
	if cn == nil {
		return nil, nil, u.unavailable()
	}
	if cn.isDead() {
		return nil, nil, u.unavailableFrom(cn)
	}
	return u, cn, nil
}

// agentRequest starts an agent's request other than a tool call (method
// about target, for the log) to server's live connection: within the
// upstream's call timeout (the returned ctx), once it has a place there
// (admit), and in flight on the connection (trackRequest). end, called
// with the request's error, ends all three.
func (c *Catalog) agentRequest(ctx context.Context, server, method, target string) (_ context.Context, cn *conn, end func(error), err error) {
	u, cn, err := c.live(server)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, u.spec.Timeout)
	release, err := u.admit(ctx, toolgate.PrincipalFrom(ctx))
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	fl := cn.trackRequest(ctx, method, target)
	return ctx, cn, func(err error) {
		fl.end(ctx, err)
		release()
		cancel()
	}, nil
}

// ReadResource reads uri from server (see RouteResource), within the
// upstream's call timeout. meta is the agent's _meta, stripped as for calls.
// Like GetPrompt and Complete, the read is in flight on the connection
// while it runs (trackRequest), so an upstream's question meanwhile goes to
// this agent only when no other agent's request is in flight too.
func (c *Catalog) ReadResource(ctx context.Context, server, uri string, meta map[string]any) (_ *mcp.ReadResourceResult, err error) {
	ctx, cn, end, err := c.agentRequest(ctx, server, string(mcp.MethodResourcesRead), uri)
	if err != nil {
		return nil, err
	}
	defer func() { end(err) }()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	if m := StripMeta(meta); m != nil {
		req.Params.Meta = &mcp.Meta{AdditionalFields: m}
	}
	res, err := cn.client.ReadResource(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: resources/read %s: %w", server, uri, err)
	}
	return res, nil
}

// GetPrompt gets the prompt exposed as p.Name from its upstream.
func (c *Catalog) GetPrompt(ctx context.Context, p Prompt, args map[string]string, meta map[string]any) (_ *mcp.GetPromptResult, err error) {
	ctx, cn, end, err := c.agentRequest(ctx, p.Server, string(mcp.MethodPromptsGet), p.Def.Name)
	if err != nil {
		return nil, err
	}
	defer func() { end(err) }()
	req := mcp.GetPromptRequest{}
	req.Params.Name = p.Def.Name
	req.Params.Arguments = args
	if m := StripMeta(meta); m != nil {
		req.Params.Meta = &mcp.Meta{AdditionalFields: m}
	}
	res, err := cn.client.GetPrompt(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: prompts/get %s: %w", p.Server, p.Def.Name, err)
	}
	return res, nil
}

// Complete asks server for completions. ref is the upstream's reference
// (a prompt's upstream name, or a template as written).
func (c *Catalog) Complete(ctx context.Context, server string, ref any, arg mcp.CompleteArgument, cctx mcp.CompleteContext) (_ *mcp.Completion, err error) {
	ctx, cn, end, err := c.agentRequest(ctx, server, string(mcp.MethodCompletionComplete), refName(ref))
	if err != nil {
		return nil, err
	}
	defer func() { end(err) }()
	req := mcp.CompleteRequest{}
	req.Params.Ref, req.Params.Argument, req.Params.Context = ref, arg, cctx
	res, err := cn.client.Complete(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: completion/complete: %w", server, err)
	}
	return &res.Completion, nil
}

// refName is how the log names a completion's reference.
func refName(ref any) string {
	switch r := ref.(type) {
	case mcp.PromptReference:
		return "prompt " + r.Name
	case mcp.ResourceReference:
		return "template " + r.URI
	}
	return fmt.Sprintf("%T", ref)
}

// rawRequest sends one request about uri the client has no method for,
// with a string id that cannot collide with the client's numeric ones. It
// is toolgate's own request, on behalf of whichever agents subscribed, so
// it is in flight as no agent's: an upstream's question meanwhile is
// refused.
func (cn *conn) rawRequest(ctx context.Context, method, uri string) (err error) {
	fl := cn.trackRequest(context.Background(), method, uri)
	defer func() { fl.end(ctx, err) }()
	resp, err := cn.client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId(fmt.Sprintf("toolgate-req-%d", cn.listSeq.Add(1))),
		Method:  method,
		Params:  map[string]any{"uri": uri},
	})
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error.AsError()
	}
	return nil
}

// Subscribe subscribes toolgate to uri on the upstream that serves it,
// once however many agent sessions subscribe: the upstream gets
// resources/subscribe for the first and resources/unsubscribe after the
// last (Unsubscribe). Subscriptions are sent again after a reconnection.
// It returns the serving upstream.
func (c *Catalog) Subscribe(ctx context.Context, uri string) (string, error) {
	r, err := c.RouteResource(uri)
	if err != nil {
		return "", err
	}
	u := c.byNm[r.Server]
	// toolgate subscribes upstream once, on behalf of every subscriber:
	// each counts as served (logscope.go).
	u.served.noteAgent(ctx)
	u.subMu.Lock()
	defer u.subMu.Unlock()
	if u.subs[uri] == 0 {
		_, cn, err := c.live(r.Server)
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(ctx, u.spec.Timeout)
		defer cancel()
		if err := cn.rawRequest(ctx, string(mcp.MethodResourcesSubscribe), uri); err != nil {
			return "", fmt.Errorf("upstream %q: resources/subscribe %s: %w", r.Server, uri, err)
		}
	}
	u.subs[uri]++
	return r.Server, nil
}

// Unsubscribe drops one subscription Subscribe counted on server.
func (c *Catalog) Unsubscribe(ctx context.Context, server, uri string) error {
	u := c.byNm[server]
	if u == nil {
		return fmt.Errorf("%w: no upstream named %q", ErrUnknownTool, server)
	}
	u.subMu.Lock()
	defer u.subMu.Unlock()
	if u.subs[uri] == 0 {
		return nil
	}
	u.subs[uri]--
	if u.subs[uri] > 0 {
		return nil
	}
	delete(u.subs, uri)
	_, cn, err := c.live(server)
	if err != nil {
		return nil // the connection is gone, and its subscription with it
	}
	ctx, cancel := context.WithTimeout(ctx, u.spec.Timeout)
	defer cancel()
	if err := cn.rawRequest(ctx, string(mcp.MethodResourcesUnsubscribe), uri); err != nil {
		return fmt.Errorf("upstream %q: resources/unsubscribe %s: %w", server, uri, err)
	}
	return nil
}

// SetLogLevel sends logging/setLevel to every upstream that logs, and
// remembers the level for upstreams that connect later. level "" sends
// nothing. The first error is returned; the other upstreams still get it.
func (c *Catalog) SetLogLevel(ctx context.Context, level mcp.LoggingLevel) error {
	c.levelMu.Lock()
	c.level = level
	c.levelMu.Unlock()
	var errs []error
	for _, u := range c.ups {
		u.mu.Lock()
		cn := u.conn
		u.mu.Unlock()
		if cn == nil || cn.caps.Logging == nil || level == "" {
			continue
		}
		if err := u.setLevel(ctx, cn, level); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (u *upstream) setLevel(ctx context.Context, cn *conn, level mcp.LoggingLevel) error {
	ctx, cancel := context.WithTimeout(ctx, u.spec.Timeout)
	defer cancel()
	req := mcp.SetLevelRequest{}
	req.Params.Level = level
	fl := cn.trackRequest(context.Background(), string(mcp.MethodSetLogLevel), string(level)) // the most verbose level any agent asked for: no one agent's
	err := cn.client.SetLevel(ctx, req)
	fl.end(ctx, err)
	if err != nil {
		return fmt.Errorf("upstream %q: logging/setLevel: %w", u.spec.Name, err)
	}
	return nil
}

// restore sends a new connection what the previous one had been told: the
// log level and the resource subscriptions.
func (u *upstream) restore(ctx context.Context, cn *conn) {
	u.cat.levelMu.Lock()
	level := u.cat.level
	u.cat.levelMu.Unlock()
	if level != "" && cn.caps.Logging != nil {
		if err := u.setLevel(ctx, cn, level); err != nil {
			u.log.Warn("restoring the log level failed", "err", err)
		}
	}
	u.subMu.Lock()
	defer u.subMu.Unlock()
	for uri := range u.subs {
		sctx, cancel := context.WithTimeout(ctx, u.spec.Timeout)
		err := cn.rawRequest(sctx, string(mcp.MethodResourcesSubscribe), uri)
		cancel()
		if err != nil {
			u.log.Warn("restoring a resource subscription failed", "uri", uri, "err", err)
		}
	}
}

// Notification is a notification from an upstream that goes on to agents.
type Notification struct {
	// Server is the upstream that sent it.
	Server string
	// Method is notifications/message or notifications/resources/updated.
	Method string
	Params map[string]any
	// Audience is, for notifications/message, whose sessions may have it
	// (logscope.go); the zero value is no one's.
	Audience LogAudience
}
