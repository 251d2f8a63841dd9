package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/mcp"
	"github.com/toolgate/toolgate/redact"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/reviewtool"
	"github.com/toolgate/toolgate/tools/sandbox"
	"github.com/toolgate/toolgate/tools/workspace"
	"github.com/toolgate/toolgate/web"
)

// Environment variables serve reads (besides the token variable the config names).
const (
	envConfig    = "TOOLGATE_CONFIG"
	envModel     = "TOOLGATE_MODEL"
	workspaceSrv = "workspace"
	// toolgateSrv serves toolgate's own tools (review_status).
	toolgateSrv = "toolgate"
)

const serveUsage = `usage: toolgate serve [flags]

Serves MCP to one agent over stdio (the default), or to any number over
streamable HTTP at /mcp with --http. Without a config file, serves the
built-in workspace tools (read_file, write_file, list_dir, run_command)
confined to the current directory.

Environment: TOOLGATE_CONFIG (config file), TOOLGATE_AUTH_TOKEN (HTTP bearer
token; the config's http.auth_token_env names another variable, and
http.auth_token_file a file to read it from instead),
TOOLGATE_MODEL (default model, "name" or "name@version").

Flags:`

// runServe is `toolgate serve`. Logs go to stderr only: on stdio, stdout is
// the MCP transport.
func runServe(ctx context.Context, args []string, env environ, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, serveUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "config file, YAML or JSON (default $"+envConfig+")")
	httpAddr := fs.String("http", "", "serve streamable HTTP on `ADDR` (e.g. 127.0.0.1:8765) instead of stdio")
	authToken := fs.String("auth-token", "", "bearer `TOKEN` required over HTTP (default $"+config.DefaultAuthTokenEnv+")")
	rulesFile := fs.String("rules", "", "rule `FILE` (overrides the config's rules.file)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: serve: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return fmt.Errorf("%w: serve: %v", errUsage, err)
	}
	harden(logger)
	serving := tuneGC(env)
	stopProfiles, err := startProfiles(env)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfiles(); err != nil {
			logger.Warn("writing profiles", "err", err)
		}
	}()

	path, cfg, err := loadConfig(*configPath, env)
	if err != nil {
		return err
	}
	if *rulesFile != "" {
		cfg.Rules.File = *rulesFile
	}
	model := toolgate.Peer{Name: cfg.Model.Name, Version: cfg.Model.Version}
	if m := env.Getenv(envModel); m != "" {
		model = mcp.ParseModel(m)
	}

	// The HTTP credentials are read before anything starts: a bad one
	// stops serve here.
	var token, rtoken string
	if *httpAddr != "" {
		if token = *authToken; token == "" {
			if token, err = secret(env, cfg.HTTP.AuthTokenEnv, cfg.HTTP.AuthTokenFile); err != nil {
				return fmt.Errorf("serve: http.auth_token_file: %w", err)
			}
		}
		if rtoken, err = reviewerToken(cfg.HTTP, env, token); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	dbp, err := dbPath(configDB(cfg.Audit, env), env)
	if err != nil {
		return err
	}
	own := ownFiles(path, cfg, dbp)
	sb, err := buildSandbox(ctx, cfg, env, own, logger)
	if err != nil {
		return err
	}
	defer sb.Close()
	upstreams, err := buildUpstreams(cfg, env, sb, logger)
	if err != nil {
		return err
	}
	pol, err := buildPolicy(ctx, cfg, env, dbp, rulesWorkspace(cfg, env, own, upstreams), sandboxRulesCheck(sb, cfg.Sandbox), *httpAddr != "", logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		if cerr := pol.close(); cerr != nil {
			logger.Error("closing policy", "err", cerr)
		}
	}()
	if ck := cfg.Audit.Checkpoint; ck.KeyFile != "" {
		cp, err := newCheckpointer(pol.store, ck, logger)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		// Deferred after pol.close, so it runs first: the last checkpoint
		// signs the head at shutdown, while the store is still open.
		defer cp.start(ctx, ck.Interval)()
	}
	if cfg.Audit.Retention.Enabled() {
		defer startRetention(ctx, pol.store, cfg.Audit, callHorizon(cfg), logger)()
	}

	if slices.ContainsFunc(upstreams, func(u tools.Upstream) bool { return u.Name == toolgateSrv }) {
		return fmt.Errorf("%s: a server is named %q, which toolgate's own tools use: rename it", cfg.File, toolgateSrv)
	}
	upstreams = append(upstreams, tools.Upstream{Name: toolgateSrv, Server: reviewtool.NewServer(pol.store, version, review.DefaultPollInterval)})

	var srv *mcp.Server
	pins := audit.NewPins(pol.store, audit.PinMode(cfg.Pinning.Mode))
	cat, err := tools.New(tools.Options{
		Upstreams: upstreams,
		Separator: cfg.Naming.Separator,
		StartWait: cfg.StartWait,
		Version:   version,
		Logger:    logger,
		OnChange:  func() { srv.SyncSoon() },
		Notify:    func(n tools.Notification) { srv.Notify(n) },
		Pins:      pins,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	root, err := filepath.Abs(cfg.Workspace.Root)
	if err != nil {
		return fmt.Errorf("serve: workspace root: %w", err)
	}
	g, err := gate.New(gate.Options{
		Decider: pol.Decider, Reviewer: pol.Reviewer, Recorder: pol.Recorder, Observer: pol.Observer, Granter: pol.Granter,
		Forwarder: cat, Logger: logger,
		Linker: workspaceLinks(root, home(env), upstreams),
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv, err = mcp.New(mcp.Options{Version: version, Gate: g, Catalog: cat, Surface: cat, DefaultModel: model, Logger: logger,
		MaxLineBytes: cfg.HTTP.MaxRequestBytes})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	pol.metrics.WatchUpstreams(cat.Status)

	cat.Start(ctx) // returns once every upstream has had its first attempt (bounded)
	defer cat.Close()
	// Two servers listing one name is a configuration error: refuse it
	// now rather than serve without either. (A collision that appears
	// later, a server up late or a list_changed, hides both and is logged.)
	if err := cat.Collisions(); err != nil {
		return fmt.Errorf("serve: %s: %w", path, err)
	}
	// An approval (`toolgate tools approve`, another process) reaches the
	// catalog within pinPoll, without a restart.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		pins.Watch(watchCtx, pinPoll, cat.Refresh)
	}()
	defer func() {
		stopWatch()
		<-watched
	}()
	srv.Sync()
	logger.Info("toolgate serving", "version", version, "upstreams", len(upstreams), "tools", len(cat.Tools()),
		"transport", map[bool]string{true: "http", false: "stdio"}[*httpAddr != ""], "config", path)
	serving()

	if *httpAddr == "" {
		if len(pol.routes) > 0 {
			logger.Warn("HTTP endpoints (e.g. Slack interactivity in review.slack.mode http) are only served with --http", "paths", slices.Sorted(maps.Keys(pol.routes)))
		}
		return srv.ServeStdio(ctx, stdin, stdout)
	}
	chain, err := buildAuth(ctx, cfg.HTTP, token, audit.ScopeAgent, pol.store)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hopts := mcp.HTTPOptions{AllowedOrigins: cfg.HTTP.AllowedOrigins, MaxRequestBytes: cfg.HTTP.MaxRequestBytes, SessionIdle: cfg.HTTP.SessionIdle,
		MaxSessions: cfg.HTTP.MaxSessions, MaxSessionsPerPrincipal: cfg.HTTP.MaxSessionsPerPrincipal,
		MaxRequestsPerPrincipal: cfg.HTTP.MaxRequestsPerPrincipal, MaxRequestValues: cfg.HTTP.MaxRequestValues}
	if !chain.Empty() {
		hopts.Auth = chain
	}
	mp, err := planMetrics(cfg.Metrics, cfg.HTTP.PerUser(), env, pol.metrics.Handler(), logger)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if mp.handler != nil && mp.listen == "" {
		pol.routes[pathMetrics] = mp.handler
	}
	uiChain, err := buildAuth(ctx, cfg.HTTP, rtoken, audit.ScopeReview, pol.store)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ui, err := web.New(web.Options{Store: pol.store, Auth: uiChain, Decide: pol.Decider.Decide, Redactor: redact.New(cfg.Audit.RedactKeys),
		MayReview: mayReview(cfg.HTTP, logger), Logger: logger.With("component", "web")})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer ui.Close()
	// The UI signs its users in itself (session cookie, CSRF token).
	pol.routes[web.Prefix] = ui
	h := srv.HTTPHandler(hopts)
	return serveHTTP(ctx, *httpAddr, cfg.HTTP, h, pol.routes, mp, !chain.Empty(), logger)
}

// pinPoll is how often serve looks for tool pin changes made by other
// processes (approvals): a one-row query on the audit DB.
const pinPoll = time.Second

// mayReview says who of those signed in to the web UI (with a reviewer's
// credential, buildAuth) may answer reviews: the users and "group:NAME"
// members of http.reviewers; nobody without the list.
func mayReview(h config.HTTP, logger *slog.Logger) func(toolgate.Principal) bool {
	if len(h.Reviewers) == 0 {
		logger.Info("the web UI at /ui/ lets nobody answer reviews: list who may in http.reviewers")
		return func(toolgate.Principal) bool { return false }
	}
	return func(p toolgate.Principal) bool {
		for _, r := range h.Reviewers {
			if g, ok := strings.CutPrefix(r, "group:"); ok {
				if slices.Contains(p.Groups, g) {
					return true
				}
			} else if p.User != "" && p.User == r {
				return true
			}
		}
		return false
	}
}

// GC settings for serve, unless GOGC or GOMEMLIMIT say otherwise.
//
// Starting up allocates far more than it keeps: compiling the default rule
// pack allocates ~20 MB (CEL's parser and checker) and leaves ~2 MB live.
// The heap a process reached stays in its RSS (the runtime returns freed
// pages slowly, and the peak counts anyway), so startup collects at
// startupGCPercent: the heap peaks at ~5 MB rather than ~12 MB at 200, for
// a few milliseconds more of start. Once set up, serve collects at
// serveGCPercent: its live heap is small (about 2 MB) and every call
// allocates, so at the default GOGC=100 it collects every few tens of
// milliseconds under load; at 200 it collects half as often (on 2 cores,
// 16 concurrent callers: GC from ~4% of toolgate's CPU to ~2%, for ~4 MB
// more RSS). The soft memory limit makes the collector work harder again,
// rather than let the heap triple, if the heap ever grows large (e.g. many
// calls with multi-MB arguments in flight).
const (
	startupGCPercent = 25
	serveGCPercent   = 200
	serveMemoryLimit = 48 << 20
)

// tuneGC sets the startup GC settings; serving switches to the serving
// ones.
func tuneGC(env environ) (serving func()) {
	if env.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
	if env.Getenv("GOGC") != "" {
		return func() {}
	}
	debug.SetGCPercent(startupGCPercent)
	return func() { debug.SetGCPercent(serveGCPercent) }
}

// serveHTTP serves h (/mcp, /healthz) plus the policy's extra routes, which
// authenticate themselves (Slack signs its requests, /metrics takes its own
// token) and so bypass the MCP bearer/Origin guard, until ctx ends. With
// mp.listen, /metrics has a listener of its own. Both listeners share hc's
// connection cap, idle time and body timeout, which hold before any
// credential is checked.
func serveHTTP(ctx context.Context, addr string, hc config.HTTP, h *mcp.HTTPHandler, routes map[string]http.Handler, mp metricsPlan, authed bool, logger *slog.Logger) error {
	var handler http.Handler = h
	if len(routes) > 0 {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		for path, rh := range routes {
			mux.Handle(path, rh)
		}
		handler = mux
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && !authed {
		logger.Warn("HTTP on a non-loopback address without --auth-token: anyone who can reach it can call tools", "addr", ln.Addr().String())
	}
	fds, maxConns := fdLimit(), hc.MaxConnections
	if maxConns == 0 {
		maxConns = defaultMaxConns(fds)
	} else if fds > 0 && maxConns > fds*3/4 {
		logger.Warn("http.max_connections is above 3/4 of the open file limit: with that many connections, the audit log, upstreams and commands may fail with too many open files",
			"max_connections", maxConns, "open_file_limit", fds)
	}
	limit := newConnLimit(maxConns, logger)
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           bodyDeadline(hc.BodyTimeout, h),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       hc.ConnIdle,
			ConnState:         limit.connState,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
	}
	hs := newServer(handler)
	logger.Info("listening", "url", "http://"+ln.Addr().String()+mcp.PathMCP, "auth", authed, "max_connections", maxConns)
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(limit.listen(ln)) }()
	if mp.listen != "" && mp.handler != nil {
		mln, err := net.Listen("tcp", mp.listen)
		if err != nil {
			_ = hs.Close()
			return fmt.Errorf("serve: metrics.listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle(pathMetrics, mp.handler)
		ms := newServer(mux)
		logger.Info("metrics listening", "url", "http://"+mln.Addr().String()+pathMetrics)
		go func() { errc <- ms.Serve(limit.listen(mln)) }()
		defer ms.Close()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = h.Close(sctx)
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

// loadConfig loads the config file flagPath names, else $TOOLGATE_CONFIG's,
// else the default configuration (path ""), as serve and tools names do.
func loadConfig(flagPath string, env environ) (path string, cfg *config.Config, err error) {
	path = flagPath
	if path == "" {
		path = env.Getenv(envConfig)
	}
	if path == "" {
		return "", config.Default(), nil
	}
	cfg, err = config.Load(path)
	return path, cfg, err
}

// configUpstreams prepares cfg's servers as serve runs them: it returns
// the audit DB path, the sandbox, and the catalog's upstreams.
func configUpstreams(ctx context.Context, path string, cfg *config.Config, env environ, logger *slog.Logger) (string, *sandbox.Sandbox, []tools.Upstream, error) {
	dbp, err := dbPath(configDB(cfg.Audit, env), env)
	if err != nil {
		return "", nil, nil, err
	}
	sb, err := buildSandbox(ctx, cfg, env, ownFiles(path, cfg, dbp), logger)
	if err != nil {
		return "", nil, nil, err
	}
	ups, err := buildUpstreams(cfg, env, sb, logger)
	if err != nil {
		return "", nil, nil, err
	}
	return dbp, sb, ups, nil
}

// serverDir is the directory a stdio server with command and cwd dir (as
// configured) starts in. Without a cwd it starts in home, not in
// toolgate's working directory: that is the workspace the agent's client
// started toolgate in, where a command writes what the server's command
// then loads as its own (npx prefers a package under ./node_modules,
// python -m a module in the directory). When home is in the workspace (or
// unknown), it starts in /. A relative command resolves in that directory,
// as exec does. A command or cwd in a path a sandbox profile can write
// (writable) is the user's choice, and is warned about: the agent can
// rewrite what runs there as the user.
func serverDir(command, dir, home string, writable []string, log *slog.Logger) string {
	switch {
	case dir != "":
	case home == "" || !filepath.IsAbs(home) || anyWritableOnTheWay(home, writable):
		dir = "/"
	default:
		dir = home
	}
	check := map[string]string{"cwd": dir}
	if strings.ContainsRune(command, filepath.Separator) { // a bare name is looked up in PATH (hostPATH)
		check["command"] = command
		if !filepath.IsAbs(command) {
			check["command"] = filepath.Join(dir, command)
		}
	}
	for what, p := range check {
		if anyWritableOnTheWay(p, writable) {
			log.Warn("this server's "+what+" is in a path a sandboxed command can write (the workspace): the agent can put there what the server "+
				"runs or loads (its program, a package under node_modules for npx, a module for python -m), and the server runs it as you, "+
				"unsandboxed; move it out of the workspace, or give the server a sandbox profile", what, p)
		}
	}
	return dir
}

// serverLoad is a path a stdio server's args or env names, which the
// server may run or load as code: field is where ("args[2]",
// "env.PYTHONPATH"), path the path, made absolute against the server's
// directory when rel.
type serverLoad struct {
	field, path string
	rel         bool
}

// serverLoads collects the paths a stdio server running command in dir
// with args and env (KEY=VALUE) names: each value, and each entry of it
// split on the list separator (PYTHONPATH=a:b, -javaagent:x.jar) and then
// on spaces (NODE_OPTIONS="--require x.js"), that is absolute or holds a
// separator, or an option's value (--opt=/x, -I/x). A file, or a path not
// there yet, counts anywhere: a script, a module, a library, or what the
// agent creates there. A directory counts only where it is looked in for
// code: an interpreter's first argument that is not an option (node app/,
// python pkg/), a short option's (-I/lib), the value of an option that
// names a project (uv --directory, npm --prefix, git -C), and a variable
// that names where a program finds code or its settings (PATH, HOME,
// PYTHONPATH, NODE_OPTIONS, LD_LIBRARY_PATH, GIT_EXEC_PATH, ...). Another
// directory, like server-filesystem's root or DATA_DIR, is what the
// server serves.
func serverLoads(command, dir string, args, env []string) []serverLoad {
	var out []serverLoad
	seen := map[serverLoad]bool{}
	add := func(field, v string, dirs bool) {
		for _, c := range pathPieces(v) {
			l := serverLoad{field: field, path: c.path}
			if !filepath.IsAbs(c.path) {
				// Not cleaned as text: a ".." after a link is taken from
				// where the link points (anyWritableOnTheWay).
				l.path, l.rel = strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator)+strings.TrimPrefix(c.path, "./"), true
			}
			if seen[l] {
				continue
			}
			if fi, err := os.Stat(l.path); err == nil && fi.IsDir() && !dirs && !c.short {
				continue
			}
			seen[l] = true
			out = append(out, l)
		}
	}
	first := interpreter(command)
	for i, a := range args {
		opt, _, _ := strings.Cut(a, "=")
		dirs := codeDirOption(opt) || i > 0 && codeDirOption(args[i-1])
		if !strings.HasPrefix(a, "-") {
			dirs = dirs || first
			first = false
		}
		add(fmt.Sprintf("args[%d]", i), a, dirs)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		add("env."+k, v, codeVar(k))
	}
	return out
}

// interpreter reports whether command runs the program its first
// argument names, which may be a directory (node app/, python pkg/).
func interpreter(command string) bool {
	switch strings.TrimRight(filepath.Base(command), "0123456789.") {
	case "node", "nodejs", "python", "pypy", "ruby", "perl", "php", "sh", "bash", "zsh", "dash":
		return true
	}
	return false
}

// codeDirOption reports whether the option opt names the directory a
// program runs from or loads its code from.
func codeDirOption(opt string) bool {
	switch opt {
	case "--directory", "--project", "--prefix", "--cwd", "-C", "--app-dir", "--editable", "--with-editable":
		return true
	}
	return false
}

// pathPiece is a path found in a value; short when it was a short
// option's (-I/lib).
type pathPiece struct {
	path  string
	short bool
}

// pathPieces returns the paths value names (see serverLoads), in order.
func pathPieces(value string) []pathPiece {
	var out []pathPiece
	take := func(p string) {
		short := false
		if strings.HasPrefix(p, "-") {
			switch i := strings.IndexByte(p, '='); {
			case i >= 0:
				p = p[i+1:]
			case len(p) > 2 && p[1] != '-' && (p[2] == filepath.Separator || strings.HasPrefix(p[2:], "./") || strings.HasPrefix(p[2:], "../")):
				p, short = p[2:], true
			default:
				return // --port, -y
			}
		}
		if !strings.ContainsRune(p, filepath.Separator) {
			return
		}
		out = append(out, pathPiece{p, short})
	}
	// Whole entries first, for a path with a space in it; then words, and
	// a URL's colon is no separator.
	if !strings.Contains(value, "://") {
		for _, e := range filepath.SplitList(value) {
			if !strings.HasPrefix(e, "-") || !strings.ContainsFunc(e, unicode.IsSpace) {
				take(e)
			}
		}
	}
	for _, f := range strings.Fields(value) {
		if !strings.Contains(f, "://") {
			for _, e := range filepath.SplitList(f) {
				take(e)
			}
		}
	}
	return out
}

// codeVar reports whether the environment variable k names where a
// program finds code or its settings, so a directory there counts.
func codeVar(k string) bool {
	switch k {
	case "PATH", "HOME", "ENV", "BASH_ENV", "ZDOTDIR", "CLASSPATH", "VIRTUAL_ENV":
		return true
	}
	if strings.HasSuffix(k, "PATH") || strings.HasSuffix(k, "LIB") || strings.HasSuffix(k, "OPT") || strings.HasSuffix(k, "OPTIONS") {
		return true // PYTHONPATH, NODE_PATH, PERL5LIB, RUBYLIB, RUBYOPT, NODE_OPTIONS, JAVA_TOOL_OPTIONS
	}
	for _, p := range []string{"PYTHON", "NODE_", "NPM_CONFIG_", "npm_config_", "PERL", "RUBY", "GEM_", "BUNDLE_",
		"LD_", "DYLD_", "GIT_", "JAVA", "_JAVA", "XDG_CONFIG_", "XDG_DATA_", "UV_", "PIP_", "CONDA", "DENO_", "BUN_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// warnServerLoads warns, as serverDir does for cwd and command, about
// each path an unsandboxed stdio server running command names in its
// args or env (serverLoads)
// that a sandbox profile can write (writable): the agent can put there
// what the server runs or loads. A relative one is left to serverDir's
// warning when the server's directory dir is itself writable.
func warnServerLoads(command, dir string, args, env []string, writable []string, log *slog.Logger) {
	dirWritable := anyWritableOnTheWay(dir, writable)
	for _, l := range serverLoads(command, dir, args, env) {
		if l.rel && dirWritable || !anyWritableOnTheWay(l.path, writable) {
			continue
		}
		attrs := []any{l.field, l.path}
		if real, err := filepath.EvalSymlinks(l.path); err == nil && real != l.path {
			attrs = append(attrs, "real", real)
		}
		log.Warn("this server's "+l.field+" names a path a sandboxed command can write (the workspace): the agent can put there what the server "+
			"runs or loads (a script, a module on PYTHONPATH or NODE_PATH, a library for LD_PRELOAD, a file NODE_OPTIONS requires), and the server runs it as you, "+
			"unsandboxed; move it out of the workspace, or give the server a sandbox profile", attrs...)
	}
}

// unconfined reports whether u runs outside the sandbox.
func unconfined(u tools.Upstream) bool {
	return u.Server == nil && (u.Sandbox == "" || u.Sandbox == sandbox.None)
}

// workspaceLinks is the gate's look at the links in the workspace root,
// from home, for the calls to ups: the built-in tools' are not looked at,
// and each server's calls are fenced by where it runs (workspace.Links).
func workspaceLinks(root, home string, ups []tools.Upstream) *workspace.Links {
	l := &workspace.Links{Root: root, Home: home, Skip: []string{workspaceSrv}}
	for _, u := range ups {
		switch {
		case u.Server != nil:
		case !unconfined(u):
			l.Sandboxed = append(l.Sandboxed, u.Name)
		case u.Command != "" || loopback(u.URL):
			l.Outside = append(l.Outside, u.Name)
			if pointsAt(u, root, home) {
				l.Pointed = append(l.Pointed, u.Name)
			}
		}
	}
	return l
}

// loopback reports whether rawURL reaches a server on this machine by a
// loopback address, one the user started here.
func loopback(rawURL string) bool {
	p, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := p.Hostname()
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback() || host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// pointsAt reports whether stdio server u starts in root or is given it:
// its directory, or one of its arguments (or an option's value after =),
// at or under root.
func pointsAt(u tools.Upstream, root, home string) bool {
	in := func(p string) bool {
		if p == "~" || strings.HasPrefix(p, "~/") {
			p = filepath.Join(home, p[1:])
		}
		rel, err := filepath.Rel(root, p)
		return filepath.IsAbs(p) && err == nil && (rel == "." || filepath.IsLocal(rel))
	}
	if in(u.Dir) {
		return true
	}
	for _, a := range u.Args {
		if _, v, ok := strings.Cut(a, "="); in(a) || ok && in(v) {
			return true
		}
	}
	return false
}

// home is the home directory the servers expand ~ to: $HOME, else the
// user's entry in the password database, where a server without HOME
// (node's os.homedir) looks.
func home(env environ) string {
	if h := env.Getenv("HOME"); h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

// buildUpstreams turns the config's enabled servers (and the built-in
// workspace, when enabled) into catalog upstreams, expanding ${VAR}
// references from env.
func buildUpstreams(cfg *config.Config, env environ, sb *sandbox.Sandbox, logger *slog.Logger) ([]tools.Upstream, error) {
	var out []tools.Upstream
	var errs []error
	var writable []string
	if sb != nil {
		writable = sb.Writable()
	}
	for _, s := range cfg.EnabledServers() {
		x := expander{env: env, where: fmt.Sprintf("%s: server %q", s.Pos, s.Name)}
		u := tools.Upstream{
			Name:        s.Name,
			Unprefixed:  !cfg.Prefixed(s),
			Command:     x.expand("command", s.Command),
			BaseEnv:     serverBaseEnv(env),
			Dir:         x.expand("cwd", s.Cwd),
			URL:         x.expand("url", s.URL),
			SSE:         s.Type == config.TransportSSE,
			Timeout:     s.Timeout,
			MaxMessage:  int(s.MaxMessageBytes),
			MaxRequests: s.MaxRequests, MaxRequestsPerPrincipal: s.MaxRequestsPerPrincipal,
			Sandbox: s.Sandbox,
		}
		if s.Sandbox != "" {
			u.Sandboxer = sb
		}
		for _, a := range s.Args {
			u.Args = append(u.Args, x.expand("args", a))
		}
		for _, k := range sortedKeys(s.Env) {
			u.Env = append(u.Env, k+"="+x.expand("env."+k, s.Env[k]))
		}
		if u.Command != "" && unconfined(u) {
			// A sandboxed server's command runs confined, wherever it is,
			// and so does what it loads.
			log := logger.With("server", s.Name)
			u.Dir = serverDir(u.Command, u.Dir, env.Getenv("HOME"), writable, log)
			warnServerLoads(u.Command, u.Dir, u.Args, u.Env, writable, log)
		}
		if len(s.Headers) > 0 {
			u.Headers = map[string]string{}
			for _, k := range sortedKeys(s.Headers) {
				u.Headers[k] = x.expand("headers."+k, s.Headers[k])
			}
		}
		errs = append(errs, x.errs...)
		out = append(out, u)
	}
	if cfg.Workspace.Enabled {
		if slices.ContainsFunc(out, func(u tools.Upstream) bool { return u.Name == workspaceSrv }) {
			errs = append(errs, fmt.Errorf("%s: a server is named %q, which the built-in workspace tools use: rename it or set workspace.enabled: false", cfg.File, workspaceSrv))
		} else {
			ws, err := workspace.NewServer(workspace.Options{
				Root:           cfg.Workspace.Root,
				CommandTimeout: cfg.Workspace.CommandTimeout,
				Sandbox:        sb,
				Version:        version,
				Logger:         logger.With("server", workspaceSrv),
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("workspace: %w", err))
			} else {
				out = append(out, tools.Upstream{Name: workspaceSrv, Server: ws})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// varRE matches ${VAR}, ${VAR:-default} and Cursor's ${env:VAR}.
var varRE = regexp.MustCompile(`\$\{(env:)?([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expander expands ${VAR} references in config values, collecting an error
// for each variable that is unset and has no default.
type expander struct {
	env   environ
	where string
	errs  []error
}

func (x *expander) expand(field, s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return varRE.ReplaceAllStringFunc(s, func(ref string) string {
		m := varRE.FindStringSubmatch(ref)
		if v := x.env.Getenv(m[2]); v != "" {
			return v
		}
		if m[3] != "" {
			return m[4]
		}
		x.errs = append(x.errs, fmt.Errorf("%s: %s: environment variable %s is not set (write ${%s:-default} for a default)", x.where, field, m[2], m[2]))
		return ""
	})
}
