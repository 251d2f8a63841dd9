// Command tgbench measures what toolgate adds to a tool call. In one run it
// calls an upstream's echo tool three ways, side by side: directly, through
// a plain MCP proxy built on mcp-go (bench/cmd/plainproxy: forwards
// tools/call, nothing else), and through toolgate; at concurrency 1 and 16.
// Rounds alternate the sides, so a machine's load shifts all of them alike.
// For each side and level it prints p50/p99 latency, calls/s, the CPU time
// per call of the side's server process (the proxy's, not its upstream's;
// for the direct side, the upstream's), read from /proc/PID/stat before and
// after each round, and that process's peak RSS (VmHWM), then the
// anonymous and file-backed parts of what it holds at the level's end.
//
// -server picks the upstream: "go" (the default) is the Go test upstream
// (testdata/upstream, an mcp-go server); "everything" is the npm reference
// server @modelcontextprotocol/server-everything (the TypeScript SDK), run
// with node from e2e/node_modules (`cd e2e && npm ci`; -everything names
// another copy of its dist/index.js). Its echo tool takes "message".
//
// Usage (from the repository root):
//
//	go run ./bench/cmd/tgbench [flags]
//
// Clients are mcp-go's, pinned to protocol 2025-11-25 (what Cursor and
// Claude Code speak). Both proxies reach their upstream over stdio. With
// -transport stdio (the default), each side is a stdio subprocess shared by
// the concurrent callers, as an agent would use it. With -transport http,
// the direct side calls the upstream serving streamable HTTP, the proxies
// serve streamable HTTP themselves, and each concurrent caller has its own
// client session, like separate agents.
//
// toolgate runs with the rules -rules names ("default": the embedded
// default pack plus an allow rule for echo; "100": 100 generated rules;
// else a rule file) and its SQLite audit log (a fresh database in a
// temporary directory, or under -audit-dir, e.g. /dev/shm). -alt NAME=BIN
// adds another toolgate binary as a side of its own, with the same
// configuration: an A/B comparison of two builds in one interleaved run.
//
// The binaries are built with `go build` unless -toolgate, -plain and
// -upstream name them. The aims (issue 15), for toolgate against the plain
// proxy: CPU per call at most 1.3x, p50 at concurrency 1 at most 150µs
// more, calls/s at the higher levels at least 0.8x, peak RSS under 30 MiB;
// -check exits 1 when one is missed.
package main

import (
	"bufio"
	"bytes"
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/bench"
	"github.com/toolgate/toolgate/rules"

	"github.com/toolgate/toolgate/audit"
)

// The aims from issue 15, toolgate against the plain proxy.
const (
	aimCPURatio   = 1.3
	aimAddedP50   = 150 * time.Microsecond
	aimThroughput = 0.80
	aimPeakRSS    = 30 << 20
)

func main() {
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
	server                    string // "go" or "everything"
	node, everything          string // for -server everything
	transport                 string
	calls, warmup             int
	conc                      []int
	rules                     string
	auditDir                  string
	auditDB                   string
	toolgate, plain, upstream string
	alts                      []alt
	rounds                    int
	check                     bool
	text                      string
}

// alt is another toolgate binary measured as a side of its own.
type alt struct{ name, bin string }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tgbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	concs := fs.String("c", "1,16", "concurrency levels, comma-separated")
	fs.StringVar(&o.server, "server", "go", `upstream: "go" (testdata/upstream) or "everything" (npm @modelcontextprotocol/server-everything)`)
	fs.StringVar(&o.node, "node", "node", "node binary, for -server everything")
	fs.StringVar(&o.everything, "everything", "", "server-everything's dist/index.js (default: e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js)")
	fs.StringVar(&o.transport, "transport", "stdio", "stdio or http")
	fs.IntVar(&o.calls, "n", 3000, "measured calls per side and concurrency level")
	fs.IntVar(&o.warmup, "warmup", 300, "unmeasured calls first")
	fs.IntVar(&o.rounds, "rounds", 5, "alternate the sides this many times and pool the samples (calls/s: median round)")
	fs.StringVar(&o.rules, "rules", "default", `toolgate's rules: "default" (embedded pack plus an allow rule for echo), "100" (generated) or a rule file`)
	fs.StringVar(&o.auditDir, "audit-dir", "", "directory for the audit database (default: a temporary directory)")
	fs.StringVar(&o.auditDB, "audit-db", "", "a postgres:// `DSN` to keep the audit log in instead (an empty database; one toolgate side only)")
	fs.StringVar(&o.toolgate, "toolgate", "", "toolgate binary (default: go build ./cmd/toolgate)")
	fs.StringVar(&o.plain, "plain", "", "plain proxy binary (default: go build ./bench/cmd/plainproxy)")
	fs.StringVar(&o.upstream, "upstream", "", "test upstream binary, for -server go (default: go build ./testdata/upstream)")
	fs.Func("alt", "`NAME=BINARY`: another toolgate build, measured as a side of its own (repeatable)", func(s string) error {
		name, bin, ok := strings.Cut(s, "=")
		if !ok || name == "" || bin == "" {
			return errors.New("want NAME=BINARY")
		}
		o.alts = append(o.alts, alt{name, bin})
		return nil
	})
	fs.StringVar(&o.text, "text", "hello, toolgate", "the echo tool's argument")
	fs.BoolVar(&o.check, "check", false, "exit 1 if an aim is missed")
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	for _, s := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
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
	// The sides run their upstream from directories of their own, so a
	// binary named relative to here is named from the root.
	for _, bin := range []*string{&o.toolgate, &o.plain, &o.upstream} {
		if *bin != "" {
			if *bin, err = filepath.Abs(*bin); err != nil {
				return err
			}
		}
	}
	for i := range o.alts {
		if o.alts[i].bin, err = filepath.Abs(o.alts[i].bin); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "tgbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
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
	plainArgs := append([]string{"--prefix", "up__", "--", up.command}, up.args...)
	// Each toolgate side has its own audit database and configuration.
	toolgates := append([]alt{{"toolgate", o.toolgate}}, o.alts...)
	cfgs := make([]string, len(toolgates))
	for i, tg := range toolgates {
		d := filepath.Join(adir, "side-"+tg.name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		server := fmt.Sprintf("up: {command: %q, args: %s}", up.command, yamlList(up.args))
		dbPath := filepath.Join(d, "audit.db")
		if o.auditDB != "" {
			if len(toolgates) > 1 {
				return errors.New("-audit-db takes one toolgate side: no -alt")
			}
			dbPath = o.auditDB
		}
		if cfgs[i], err = writeConfig(d, server, rulesFile, dbPath); err != nil {
			return err
		}
	}

	// The sides, in the order of each round: direct, plain, then toolgate
	// and the alternatives.
	var sides []*side
	switch o.transport {
	case "stdio":
		sides = append(sides, stdioSide("direct", "echo", up.command, up.args...),
			stdioSide("plain", "up__echo", o.plain, plainArgs...))
		for i, tg := range toolgates {
			sides = append(sides, stdioSide(tg.name, "up__echo", tg.bin, "serve", "--config", cfgs[i], "--log-level", "error"))
		}
	case "http":
		upURL, pid, stopUp, err := startHTTPUpstream(ctx, up)
		if err != nil {
			return err
		}
		defer stopUp()
		sides = append(sides, httpSide("direct", "echo", upURL, pid))
		plainURL, pid, stopPlain, err := startHTTP(ctx, stderr, o.plain, append([]string{"--http", addrArg}, plainArgs...)...)
		if err != nil {
			return fmt.Errorf("plain proxy: %w", err)
		}
		defer stopPlain()
		sides = append(sides, httpSide("plain", "up__echo", plainURL, pid))
		for i, tg := range toolgates {
			u, pid, stop, err := startHTTP(ctx, stderr, tg.bin, "serve", "--config", cfgs[i], "--log-level", "error", "--http", addrArg)
			if err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			defer stop()
			sides = append(sides, httpSide(tg.name, "up__echo", u, pid))
		}
	}

	fmt.Fprintf(stdout, "tgbench: echo tool of %s, %s transport, mcp-go clients (protocol %s)\n", up.desc, o.transport, mcp.ProtocolVersion20251125)
	fmt.Fprintf(stdout, "toolgate: rules %s; SQLite audit log under %s\n", rulesDesc, adir)
	fmt.Fprintf(stdout, "%d measured calls per side and level, in %d alternating rounds, after %d warm-up calls\n", o.calls, o.rounds, o.warmup)
	fmt.Fprintf(stdout, "CPU: of the side's server process per call (direct: the upstream; proxies: the proxy alone); RSS: its peak (VmHWM),\n")
	fmt.Fprintf(stdout, "then what it holds at the level's end, MiB: anonymous (heaps, stacks) + file-backed (its executable's pages, shared)\n\n")

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tconcurrency\tcalls\tp50\tp99\tcalls/s\tCPU/call\tpeak RSS\tanon + file\t")
	res := map[key]stats{}
	for _, c := range o.conc {
		if err := level(ctx, &o, sides, c, up.arg, res); err != nil {
			return err
		}
		for _, s := range sides {
			st := res[key{s.name, c}]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.0f\t%s\t%s\t%.1f + %.1f\t\n", s.name, c, st.n, us(st.p50), us(st.p99), st.rate, cpuText(st.cpu), mib(st.mem.peak),
				float64(st.mem.anon)/(1<<20), float64(st.mem.file)/(1<<20))
		}
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	missed := false
	for _, tg := range toolgates {
		missed = report(stdout, res, tg.name, o.conc) || missed
	}
	if o.check && missed {
		return errMissed
	}
	return nil
}

// level measures every side at concurrency c, into res.
func level(ctx context.Context, o *options, sides []*side, c int, arg string, res map[key]stats) error {
	for _, s := range sides {
		if err := s.open(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	defer func() {
		for _, s := range sides {
			s.close()
		}
	}()
	lat := make([][]time.Duration, len(sides))
	rates := make([][]float64, len(sides))
	cpu := make([]time.Duration, len(sides))
	cpuOK := make([]bool, len(sides))
	for _, s := range sides {
		if _, _, err := s.load(ctx, c, o.warmup, arg, o.text); err != nil {
			return fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	per := max(o.calls/o.rounds, c)
	for i := range cpuOK {
		cpuOK[i] = true
	}
	for range o.rounds {
		for i, s := range sides {
			before, err1 := procCPU(s.pid)
			l, wall, err := s.load(ctx, c, per, arg, o.text)
			if err != nil {
				return fmt.Errorf("%s at concurrency %d: %w", s.name, c, err)
			}
			after, err2 := procCPU(s.pid)
			cpu[i] += after - before
			cpuOK[i] = cpuOK[i] && err1 == nil && err2 == nil
			lat[i] = append(lat[i], l...)
			rates[i] = append(rates[i], float64(len(l))/wall.Seconds())
		}
	}
	for i, s := range sides {
		st := summarize(lat[i], rates[i])
		st.cpu = -1
		if cpuOK[i] && st.n > 0 {
			st.cpu = cpu[i] / time.Duration(st.n)
		}
		st.mem, _ = procMemory(s.pid)
		res[key{s.name, c}] = st
	}
	return nil
}

// report prints how the toolgate side name fares against the plain proxy,
// and whether it missed an aim.
func report(w io.Writer, res map[key]stats, name string, conc []int) (missed bool) {
	fmt.Fprintf(w, "%s against the plain proxy:\n", name)
	check := func(ok bool, format string, args ...any) {
		missed = missed || !ok
		fmt.Fprintf(w, "  "+format+" %s\n", append(args, verdict(ok))...)
	}
	for _, c := range conc {
		p, t := res[key{"plain", c}], res[key{name, c}]
		if p.cpu > 0 && t.cpu >= 0 {
			r := float64(t.cpu) / float64(p.cpu)
			check(r <= aimCPURatio, "c=%d: CPU/call %s vs %s: %.2fx (aim <= %.1fx)", c, cpuText(t.cpu), cpuText(p.cpu), r, aimCPURatio)
		}
		if c == 1 {
			added := t.p50 - p.p50
			check(added <= aimAddedP50, "c=1: p50 %s vs %s: %s more (aim <= %s)", us(t.p50), us(p.p50), us(added), us(aimAddedP50))
		} else if p.rate > 0 {
			r := t.rate / p.rate
			check(r >= aimThroughput, "c=%d: %.0f vs %.0f calls/s: %.2fx (aim >= %.1fx)", c, t.rate, p.rate, r, aimThroughput)
		}
	}
	var peak, plainPeak int64
	for _, c := range conc {
		peak, plainPeak = max(peak, res[key{name, c}].mem.peak), max(plainPeak, res[key{"plain", c}].mem.peak)
	}
	if peak > 0 {
		check(peak < aimPeakRSS, "peak RSS %s vs %s (aim < %s)", mib(peak), mib(plainPeak), mib(aimPeakRSS))
	}
	return missed
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

func cpuText(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return us(d)
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

type key struct {
	side string
	c    int
}

type stats struct {
	n        int
	p50, p99 time.Duration
	rate     float64
	cpu      time.Duration // per call; -1 if unknown
	mem      memory        // at the end of the level; zero if unknown
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

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// procCPU is the user plus system CPU time process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// memory is a process's resident memory, in bytes: its peak (VmHWM), and
// what it holds now of anonymous memory (heaps, stacks) and of files
// (mostly its own executable's pages, shared with every process running it).
type memory struct{ peak, anon, file int64 }

// procMemory reads process pid's memory from /proc/PID/status.
func procMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	fields := map[string]*int64{"VmHWM:": &m.peak, "RssAnon:": &m.anon, "RssFile:": &m.file}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), "\t")
		dst := fields[name]
		if dst == nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("%s %q: %w", name, v, err)
		}
		*dst = kb << 10
		delete(fields, name)
	}
	if len(fields) > 0 {
		return memory{}, errors.New("no VmHWM, RssAnon or RssFile in /proc/PID/status")
	}
	return m, sc.Err()
}

// side is one way of reaching the echo tool: a way to open clients for a
// concurrency level, the clients opened, and the process that serves them.
type side struct {
	name    string
	tool    string
	dial    func(ctx context.Context) (*client.Client, int, error)
	perConn bool // one client per concurrent caller (HTTP), else one shared
	clients []*client.Client
	pid     int
}

func stdioSide(name, tool, command string, args ...string) *side {
	return &side{name: name, tool: tool, dial: func(ctx context.Context) (*client.Client, int, error) {
		var cmd *exec.Cmd
		tr := transport.NewStdioWithOptions(command, nil, args, transport.WithCommandStderrWriter(io.Discard),
			transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
				cmd = exec.CommandContext(ctx, command, args...)
				return cmd, nil
			}))
		c, err := connect(ctx, tr)
		if err != nil {
			return nil, 0, err
		}
		return c, cmd.Process.Pid, nil
	}}
}

func httpSide(name, tool, url string, pid int) *side {
	return &side{name: name, tool: tool, perConn: true, pid: pid, dial: func(ctx context.Context) (*client.Client, int, error) {
		// Each caller is an agent of its own, with its own connections
		// (sharing net/http's default transport, which keeps two idle
		// connections a host, 16 callers would mostly dial anew).
		own := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPLogger(slog.New(slog.DiscardHandler)),
			transport.WithHTTPBasicClient(own))
		if err != nil {
			return nil, 0, err
		}
		c, err := connect(ctx, tr)
		return c, pid, err
	}}
}

func (s *side) open(ctx context.Context, c int) error {
	n := 1
	if s.perConn {
		n = c
	}
	for range n {
		cl, pid, err := s.dial(ctx)
		if err != nil {
			s.close()
			return err
		}
		s.clients = append(s.clients, cl)
		s.pid = pid
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
		return "", fmt.Errorf("finding the module (run tgbench inside the toolgate repository, or pass -toolgate, -plain, -upstream and -everything): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildBinaries builds, with go build, each binary not given by a flag.
func buildBinaries(ctx context.Context, o *options, dir string) error {
	if o.server != "go" && o.upstream == "" {
		o.upstream = "-" // not needed
	}
	if o.toolgate != "" && o.plain != "" && o.upstream != "" {
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	for _, b := range []struct {
		dst *string
		pkg string
	}{{&o.toolgate, "./cmd/toolgate"}, {&o.plain, "./bench/cmd/plainproxy"}, {&o.upstream, "./testdata/upstream"}} {
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

// upstream is how to start the upstream every side calls.
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

// writeRules writes toolgate's rule file and returns its path and a
// description of it.
func writeRules(which, dir string) (string, string, error) {
	var body, desc string
	switch which {
	case "default":
		// The pack's rules list is last, so a rule appended joins it.
		body = string(rules.DefaultSource()) + "\n  - name: allow-echo\n    match: 'tool.name == \"echo\"'\n    action: allow\n    reason: tgbench's echo\n"
		desc = "the embedded default pack plus an allow rule for echo"
	case "100":
		body, desc = bench.HundredRules("tgbench-100"), "100 generated rules (50 limited to other tools, 49 argument checks evaluated on every call, then the allow)"
	default:
		abs, err := filepath.Abs(which)
		return abs, which, err
	}
	path := filepath.Join(dir, "rules-"+which+".yaml")
	return path, desc, os.WriteFile(path, []byte(body), 0o600)
}

func writeConfig(dir, server, rulesFile, dbPath string) (string, error) {
	path := filepath.Join(dir, "toolgate.yaml")
	auditYAML := fmt.Sprintf("{path: %q}", dbPath)
	if audit.IsPostgres(dbPath) {
		auditYAML = fmt.Sprintf("{driver: postgres, dsn: %q}", dbPath)
	}
	// Every concurrent caller is the same principal (no credentials): the
	// cap on one principal's requests in flight must not be what is measured.
	body := fmt.Sprintf("servers:\n  %s\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: %s\nreview: {channels: [cli]}\nhttp: {max_requests_per_principal: 4096}\n",
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

// startProcess starts a server and waits until ready says it is; it
// returns the process id and a stop function.
func startProcess(ctx context.Context, stderr io.Writer, env []string, ready func() bool, name string, args ...string) (int, func(), error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = stderr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, err
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
			return 0, nil, fmt.Errorf("%s did not become ready", filepath.Base(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd.Process.Pid, stop, nil
}

// startHTTPUpstream starts up serving streamable HTTP: the Go upstream with
// --http ADDR, server-everything on $PORT (all interfaces; tgbench uses
// 127.0.0.1).
func startHTTPUpstream(ctx context.Context, up upstream) (string, int, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", 0, nil, err
	}
	args, env := []string{"--http", addr}, []string(nil)
	if up.http != nil {
		_, port, _ := net.SplitHostPort(addr)
		args, env = up.http, []string{"PORT=" + port}
	}
	pid, stop, err := startProcess(ctx, io.Discard, env, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, up.command, args...)
	return "http://" + addr + "/mcp", pid, stop, err
}

// addrArg, in startHTTP's arguments, stands for the address to listen on.
const addrArg = "{addr}"

// startHTTP starts a proxy serving streamable HTTP on a free address (the
// argument addrArg) and waits for its /healthz.
func startHTTP(ctx context.Context, stderr io.Writer, bin string, args ...string) (string, int, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", 0, nil, err
	}
	args = slices.Clone(args)
	for i, a := range args {
		if a == addrArg {
			args[i] = addr
		}
	}
	pid, stop, err := startProcess(ctx, stderr, nil, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, bin, args...)
	return "http://" + addr + "/mcp", pid, stop, err
}
