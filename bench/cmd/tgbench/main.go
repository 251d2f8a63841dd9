// Command tgbench measures what toolgate adds to a tool call. In one run it
// calls an upstream's echo tool directly, then the same tool through
// toolgate, at concurrency 1 and 16, and prints p50/p99 latency, calls/s and
// the overhead: the p50 latency toolgate adds at concurrency 1 and its share
// of direct throughput at 16.
//
// -server picks the upstream, the same on both sides: "go" (the default) is
// the Go test upstream (testdata/upstream, an mcp-go server); "everything"
// is the npm reference server @modelcontextprotocol/server-everything (the
// TypeScript SDK), run with node from e2e/node_modules (install it with
// `cd e2e && npm ci`, or let the e2e tests do it; -everything names another
// copy of its dist/index.js). Its echo tool takes "message" instead of "text".
//
// Usage (from the repository root):
//
//	go run ./bench/cmd/tgbench [flags]
//
// Both sides use mcp-go clients pinned to protocol 2025-11-25 (what Cursor
// and Claude Code speak). With -transport stdio (the default), the direct
// side launches the upstream as a stdio subprocess, and the proxied side
// launches `toolgate serve` as one, which launches its own upstream: one
// client connection per side, shared by the concurrent callers, as an agent
// would. With -transport http, one upstream serves streamable HTTP; the
// direct side connects to it, the proxied side to `toolgate serve --http`
// whose config points at that same upstream; each concurrent caller has its
// own client session, like separate agents.
//
// toolgate runs with its real rules and SQLite audit log (a fresh database
// in a temporary directory, or under -audit-dir, e.g. /dev/shm to take the
// disk out). -rules picks the rule set: "100" (default) generates 100 rules
// of which 99 must be evaluated or skipped before the one that allows the
// call; "default" is the embedded default pack; anything else is a rule file.
//
// With -transport stdio, a third side (-floor, on by default) calls the same
// upstream through a byte relay: tgbench re-executed as `tgbench -relay`,
// which copies JSON-RPC lines both ways and renames the tool, nothing else.
// What the relay adds is the floor of any stdio proxy on the machine (one
// more process, two more pipes and their wake-ups); the report gives it next
// to toolgate's figures, so that what toolgate itself costs is visible.
//
// The binaries are built with `go build` unless -toolgate and -upstream name
// them. The aims (issue 6): added p50 under 150µs at concurrency 1, and at
// least 80% of direct throughput at 16, on 2 cores; -check exits 1 when
// either is missed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/bench"
)

// The aims from issue 6.
const (
	aimAddedP50   = 150 * time.Microsecond
	aimThroughput = 0.80
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == relayFlag {
		if err := relayMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "tgbench relay:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errMissed):
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tgbench:", err)
		os.Exit(1)
	}
}

var errMissed = errors.New("aim missed")

type options struct {
	server             string // "go" or "everything"
	node, everything   string // for -server everything
	transport          string
	calls, warmup      int
	conc               []int
	rules              string
	auditDir           string
	auditDB            string
	toolgate, upstream string
	rounds             int
	check              bool
	floor              bool
	text               string
	stderr             io.Writer
	workDir            string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tgbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	concs := fs.String("c", "1,16", "concurrency levels, comma-separated")
	fs.StringVar(&o.server, "server", "go", `upstream: "go" (testdata/upstream) or "everything" (npm @modelcontextprotocol/server-everything)`)
	fs.StringVar(&o.node, "node", "node", "node binary, for -server everything")
	fs.StringVar(&o.everything, "everything", "", "server-everything's dist/index.js (default: e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js)")
	fs.StringVar(&o.transport, "transport", "stdio", "stdio or http")
	fs.IntVar(&o.calls, "n", 2000, "measured calls per side and concurrency level")
	fs.IntVar(&o.warmup, "warmup", 200, "unmeasured calls first")
	fs.IntVar(&o.rounds, "rounds", 3, "alternate direct and proxied this many times and pool the samples (throughput: median round)")
	fs.StringVar(&o.rules, "rules", "100", `rule set: "100" (generated), "default" (embedded pack) or a rule file`)
	fs.StringVar(&o.auditDir, "audit-dir", "", "directory for the audit database (default: a temporary directory)")
	fs.StringVar(&o.auditDB, "audit-db", "", "a postgres:// `DSN` to keep the audit log in instead (an empty database)")
	fs.StringVar(&o.toolgate, "toolgate", "", "toolgate binary (default: go build ./cmd/toolgate)")
	fs.StringVar(&o.upstream, "upstream", "", "test upstream binary, for -server go (default: go build ./testdata/upstream)")
	fs.StringVar(&o.text, "text", "hello, toolgate", "the echo tool's argument")
	fs.BoolVar(&o.check, "check", false, "exit 1 if an aim is missed")
	fs.BoolVar(&o.floor, "floor", true, "with -transport stdio, also measure a byte relay (tgbench -relay): the floor of any stdio proxy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*concs, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			return fmt.Errorf("-c %q: want positive integers", *concs)
		}
		o.conc = append(o.conc, n)
	}
	if o.transport != "stdio" && o.transport != "http" {
		return fmt.Errorf("-transport %q: want stdio or http", o.transport)
	}
	if o.server != "go" && o.server != "everything" {
		return fmt.Errorf("-server %q: want go or everything", o.server)
	}
	o.stderr = stderr

	dir, err := os.MkdirTemp("", "tgbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.workDir = dir
	if err := buildBinaries(ctx, &o, dir); err != nil {
		return err
	}
	up, err := upstreamOf(ctx, &o)
	if err != nil {
		return err
	}
	rulesFile, rulesDesc, err := writeRules(o.rules, dir)
	if err != nil {
		return err
	}
	adir := dir
	if o.auditDir != "" {
		if adir, err = os.MkdirTemp(o.auditDir, "tgbench"); err != nil {
			return err
		}
		defer os.RemoveAll(adir)
	}
	dbPath := filepath.Join(adir, "audit.db")
	if o.auditDB != "" {
		dbPath = o.auditDB
	}

	// direct, toolgate and, with -floor, the relay.
	const direct, proxied, relayed = 0, 1, 2
	sides := make([]side, 2, 3)
	switch o.transport {
	case "stdio":
		cfg, err := writeConfig(dir, fmt.Sprintf("up: {command: %q, args: %s}", up.command, yamlList(up.args)), rulesFile, dbPath)
		if err != nil {
			return err
		}
		sides[direct] = stdioSide("direct", up.command, up.args...)
		sides[proxied] = stdioSide("toolgate", o.toolgate, "serve", "--config", cfg, "--log-level", "error")
		if o.floor {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			sides = append(sides, stdioSide("relay", self, append([]string{relayFlag, "up__echo=echo", "--", up.command}, up.args...)...))
			sides[relayed].tool = "up__echo"
		}
	case "http":
		upURL, stopUp, err := startHTTPUpstream(ctx, up)
		if err != nil {
			return err
		}
		defer stopUp()
		cfg, err := writeConfig(dir, fmt.Sprintf("up: {url: %q}", upURL), rulesFile, dbPath)
		if err != nil {
			return err
		}
		tgURL, stopTG, err := startHTTPToolgate(ctx, o.toolgate, cfg, stderr)
		if err != nil {
			return err
		}
		defer stopTG()
		sides[0] = httpSide("direct", upURL)
		sides[1] = httpSide("toolgate", tgURL)
	}
	sides[direct].tool, sides[proxied].tool = "echo", "up__echo"

	fmt.Fprintf(stdout, "tgbench: echo tool of %s, %s transport, mcp-go clients (protocol %s)\n", up.desc, o.transport, mcp.ProtocolVersion20251125)
	fmt.Fprintf(stdout, "toolgate: rules %s; audit log %s\n", rulesDesc, dbPath)
	fmt.Fprintf(stdout, "%d measured calls per side and level, in %d alternating rounds, after %d warm-up calls\n\n", o.calls, o.rounds, o.warmup)

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tconcurrency\tcalls\tp50\tp99\tcalls/s\t")
	type key struct {
		side int
		c    int
	}
	res := map[key]stats{}
	for _, c := range o.conc {
		for i := range sides {
			if err := sides[i].open(ctx, c); err != nil {
				return fmt.Errorf("%s: %w", sides[i].name, err)
			}
		}
		lat := make([][]time.Duration, len(sides))
		rates := make([][]float64, len(sides))
		for i := range sides {
			if _, _, err := sides[i].load(ctx, c, o.warmup, up.arg, o.text); err != nil {
				return fmt.Errorf("%s warm-up: %w", sides[i].name, err)
			}
		}
		per := max(o.calls/o.rounds, c)
		for range o.rounds {
			for i := range sides {
				l, wall, err := sides[i].load(ctx, c, per, up.arg, o.text)
				if err != nil {
					return fmt.Errorf("%s at concurrency %d: %w", sides[i].name, c, err)
				}
				lat[i] = append(lat[i], l...)
				rates[i] = append(rates[i], float64(len(l))/wall.Seconds())
			}
		}
		for i := range sides {
			sides[i].close()
			st := summarize(lat[i], rates[i])
			res[key{i, c}] = st
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.0f\t\n", sides[i].name, c, st.n, us(st.p50), us(st.p99), st.rate)
		}
	}
	tw.Flush()

	fmt.Fprintln(stdout)
	missed := false
	floor := len(sides) > relayed
	if d, p, ok := res[key{direct, 1}], res[key{proxied, 1}], slices.Contains(o.conc, 1); ok {
		added := p.p50 - d.p50
		ok := added < aimAddedP50
		missed = missed || !ok
		fmt.Fprintf(stdout, "added p50 at concurrency 1: %s (%.2fx direct; aim < %s) %s\n", us(added), float64(p.p50)/float64(d.p50), us(aimAddedP50), verdict(ok))
		if floor {
			r := res[key{relayed, 1}]
			fmt.Fprintf(stdout, "  floor: a byte relay adds %s; toolgate adds %s more\n", us(r.p50-d.p50), us(p.p50-r.p50))
		}
	}
	for _, c := range o.conc {
		if c == 1 {
			continue
		}
		d, p := res[key{direct, c}], res[key{proxied, c}]
		ratio := p.rate / d.rate
		ok := ratio >= aimThroughput
		missed = missed || !ok
		fmt.Fprintf(stdout, "throughput at concurrency %d: %.0f%% of direct (%.0f vs %.0f calls/s; aim >= %.0f%%) %s\n", c, 100*ratio, p.rate, d.rate, 100*aimThroughput, verdict(ok))
		if floor {
			r := res[key{relayed, c}]
			fmt.Fprintf(stdout, "  floor: a byte relay reaches %.0f%% of direct (%.0f calls/s); toolgate %.0f%% of the relay\n", 100*r.rate/d.rate, r.rate, 100*p.rate/r.rate)
		}
	}
	if o.check && missed {
		return errMissed
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

type stats struct {
	n        int
	p50, p99 time.Duration
	rate     float64
}

func summarize(lat []time.Duration, rates []float64) stats {
	slices.Sort(lat)
	slices.Sort(rates)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(int(p*float64(len(lat))), len(lat)-1)]
	}
	st := stats{n: len(lat), p50: pct(0.50), p99: pct(0.99)}
	if len(rates) > 0 {
		st.rate = rates[len(rates)/2]
	}
	return st
}

// side is one way of reaching the echo tool: a way to open clients for a
// concurrency level, and the clients opened.
type side struct {
	name    string
	tool    string
	dial    func(ctx context.Context) (*client.Client, error)
	perConn bool // one client per concurrent caller (HTTP), else one shared
	clients []*client.Client
}

func stdioSide(name, command string, args ...string) side {
	return side{name: name, dial: func(ctx context.Context) (*client.Client, error) {
		return connect(ctx, transport.NewStdioWithOptions(command, nil, args, transport.WithCommandStderrWriter(io.Discard)))
	}}
}

func httpSide(name, url string) side {
	return side{name: name, perConn: true, dial: func(ctx context.Context) (*client.Client, error) {
		// Each caller is an agent of its own, with its own connections
		// (sharing net/http's default transport, which keeps two idle
		// connections a host, 16 callers would mostly dial anew).
		own := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPLogger(slog.New(slog.DiscardHandler)),
			transport.WithHTTPBasicClient(own))
		if err != nil {
			return nil, err
		}
		return connect(ctx, tr)
	}}
}

func (s *side) open(ctx context.Context, c int) error {
	n := 1
	if s.perConn {
		n = c
	}
	for range n {
		cl, err := s.dial(ctx)
		if err != nil {
			s.close()
			return err
		}
		s.clients = append(s.clients, cl)
	}
	return nil
}

func (s *side) close() {
	for _, c := range s.clients {
		_ = c.Close()
	}
	s.clients = nil
}

// load makes n calls from c concurrent callers, with the echo tool's
// argument arg set to text, and returns each call's latency and the wall
// time.
func (s *side) load(ctx context.Context, c, n int, arg, text string) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	req := mcp.CallToolRequest{}
	req.Params.Name = s.tool
	req.Params.Arguments = map[string]any{arg: text}
	start := time.Now()
	for w := range c {
		cl := s.clients[w%len(s.clients)]
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				res, err := cl.CallTool(ctx, req)
				lat[i] = time.Since(t0)
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %v", res.Content)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					next = n
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return lat, time.Since(start), firstErr
}

// connect starts and initializes a client pinned to 2025-11-25. The
// transport lives as long as the client (a stdio child is killed on Close).
// (The same steps as bench_test.go's dial, which takes a *testing.B.)
func connect(ctx context.Context, tr transport.Interface) (*client.Client, error) {
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	if err := c.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = mcp.Implementation{Name: "tgbench", Version: "1"}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.Initialize(ictx, req); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return c, nil
}

// moduleRoot is the toolgate repository's directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module (run tgbench inside the toolgate repository, or pass -toolgate, -upstream and -everything): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func buildBinaries(ctx context.Context, o *options, dir string) error {
	if o.server != "go" && o.upstream == "" {
		o.upstream = "-" // not needed
	}
	if o.toolgate != "" && o.upstream != "" {
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	for _, b := range []struct {
		dst *string
		pkg string
	}{{&o.toolgate, "./cmd/toolgate"}, {&o.upstream, "./testdata/upstream"}} {
		if *b.dst != "" {
			continue
		}
		*b.dst = filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *b.dst, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// upstream is how to start the upstream both sides call.
type upstream struct {
	desc    string   // for the report
	command string   // a stdio server
	args    []string // its arguments for stdio
	http    []string // its arguments to serve streamable HTTP on $PORT / ADDR (see startHTTPUpstream)
	arg     string   // the echo tool's argument
}

func upstreamOf(ctx context.Context, o *options) (upstream, error) {
	if o.server == "go" {
		return upstream{desc: "the Go test upstream (testdata/upstream, mcp-go)", command: o.upstream, arg: "text"}, nil
	}
	index := o.everything
	if index == "" {
		root, err := moduleRoot(ctx)
		if err != nil {
			return upstream{}, err
		}
		index = filepath.Join(root, "e2e", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	}
	index, err := filepath.Abs(index)
	if err != nil {
		return upstream{}, err
	}
	if _, err := os.Stat(index); err != nil {
		return upstream{}, fmt.Errorf("server-everything not found (install it with `cd e2e && npm ci`, or pass -everything): %w", err)
	}
	node, err := exec.LookPath(o.node)
	if err != nil {
		return upstream{}, fmt.Errorf("-server everything needs node: %w", err)
	}
	version := "unknown version"
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(index), "..", "package.json")); err == nil {
		var pkg struct{ Version string }
		if json.Unmarshal(b, &pkg) == nil && pkg.Version != "" {
			version = pkg.Version
		}
	}
	nodeVersion, _ := exec.CommandContext(ctx, node, "--version").Output()
	return upstream{
		desc: fmt.Sprintf("the npm reference server @modelcontextprotocol/server-everything %s (node %s)",
			version, strings.TrimSpace(string(nodeVersion))),
		command: node,
		args:    []string{index, "stdio"},
		http:    []string{index, "streamableHttp"},
		arg:     "message",
	}, nil
}

// yamlList writes a flow sequence of quoted strings.
func yamlList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeRules returns the rule file for toolgate ("" = the embedded default
// pack) and a description of it.
func writeRules(which, dir string) (string, string, error) {
	switch which {
	case "default":
		return "", "the embedded default pack (echo is allowed as read-only)", nil
	case "100":
		path := filepath.Join(dir, "rules-100.yaml")
		if err := os.WriteFile(path, []byte(bench.HundredRules("tgbench-100")), 0o600); err != nil {
			return "", "", err
		}
		return path, "100 generated rules (50 limited to other tools, 49 argument checks evaluated on every call, then the allow)", nil
	default:
		abs, err := filepath.Abs(which)
		return abs, which, err
	}
}

func writeConfig(dir, server, rulesFile, dbPath string) (string, error) {
	path := filepath.Join(dir, "toolgate.yaml")
	auditYAML := fmt.Sprintf("{path: %q}", dbPath)
	if audit.IsPostgres(dbPath) {
		auditYAML = fmt.Sprintf("{driver: postgres, dsn: %q}", dbPath)
	}
	body := fmt.Sprintf("servers:\n  %s\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: %s\nreview: {channels: [cli]}\n",
		server, rulesFile, auditYAML)
	return path, os.WriteFile(path, []byte(body), 0o600)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startProcess(ctx context.Context, stderr io.Writer, env []string, ready func() bool, name string, args ...string) (func(), error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = stderr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("%s did not become ready", filepath.Base(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stop, nil
}

// startHTTPUpstream starts up serving streamable HTTP: the Go upstream with
// --http ADDR, server-everything on $PORT (all interfaces; tgbench uses
// 127.0.0.1).
func startHTTPUpstream(ctx context.Context, up upstream) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	args, env := []string{"--http", addr}, []string(nil)
	if up.http != nil {
		_, port, _ := net.SplitHostPort(addr)
		args, env = up.http, []string{"PORT=" + port}
	}
	stop, err := startProcess(ctx, io.Discard, env, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, up.command, args...)
	return "http://" + addr + "/mcp", stop, err
}

func startHTTPToolgate(ctx context.Context, bin, cfg string, stderr io.Writer) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	stop, err := startProcess(ctx, stderr, nil, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, bin, "serve", "--config", cfg, "--http", addr, "--log-level", "error")
	return "http://" + addr + "/mcp", stop, err
}
