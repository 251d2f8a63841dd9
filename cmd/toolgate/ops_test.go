package main

// Operating toolgate under faults and bad input (issue 6). Faults already
// covered elsewhere are not repeated here; docs/operating.md has the table.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/bench"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/mcp"
	"github.com/toolgate/toolgate/metrics"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools"
)

var opsCalls = flag.Int("ops.calls", 100000, "calls in TestOpsNoLeaks")

const allowRules = "version: 1\nlabel: ops-tests\ndefault: allow\nrules: []\n"

// opsConfig writes a config with the test upstream as "up" (serverExtra is
// added to its block), the given rules and an audit log in a temp dir; it
// returns the config and audit paths.
func opsConfig(t *testing.T, rulesYAML, serverExtra, extra string) (cfg, db string) {
	t.Helper()
	dir := t.TempDir()
	rf := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rf, []byte(rulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "audit.db")
	cfg = writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q%s}\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n%s",
		upstreamBin, serverExtra, rf, db, extra))
	return cfg, db
}

// records reads the audit log (read-only, beside the running toolgate).
func records(t *testing.T, db string) []*audit.Record {
	t.Helper()
	st, err := audit.Open(context.Background(), db, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open audit log: %v", err)
	}
	defer st.Close()
	recs, err := st.List(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestOpsUpstreamHang: a call to an upstream that never answers is bounded
// by the server's per-call timeout, recorded as failed, and the gateway
// keeps serving.
func TestOpsUpstreamHang(t *testing.T) {
	cfg, db := opsConfig(t, allowRules, ", timeout: 300ms", "")
	c, _, _ := startStdio(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := callTool(ctx, c, "up__slow", map[string]any{"seconds": 60, "steps": 600}, "")
	if err != nil {
		t.Fatalf("hung call: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hung call took %s with a 300ms timeout", d)
	}
	if msg := resultText(res); !res.IsError || !strings.Contains(msg, "timed out after 300ms") {
		t.Errorf("hung call result = %q (isError %v)", msg, res.IsError)
	}
	if got := mustCall(t, c, "up__echo", map[string]any{"text": "alive"}); got != "alive" {
		t.Errorf("after the timeout: %q", got)
	}
	var found bool
	for _, r := range records(t, db) {
		if r.Tool == "slow" {
			found = true
			if r.Status != toolgate.StatusFailed || r.Outcome == nil || !strings.Contains(r.Outcome.Error, "timed out") {
				t.Errorf("audit row for the hung call: status %s outcome %+v", r.Status, r.Outcome)
			}
		}
	}
	if !found {
		t.Error("no audit row for the hung call")
	}
}

// TestOpsAuditUnwritable: while another process holds the audit log's write
// lock, calls are spooled (durable, run) until it has held it for the
// write timeout; then they are refused with a message saying why, and never
// reach the upstream. Once the lock is gone, calls run again and the
// spooled ones are in the log.
func TestOpsAuditUnwritable(t *testing.T) {
	cfg, db := opsConfig(t, allowRules, "", "")
	c, _, _ := startStdio(t, cfg)
	var before struct{ Started int }
	_ = json.Unmarshal([]byte(mustCall(t, c, "up__stats", nil)), &before)

	raw, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if got := mustCall(t, c, "up__echo", map[string]any{"text": "spooled while locked"}); got != "spooled while locked" {
		t.Fatalf("call as the lock is taken: %q", got)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var refused string
	ran := 0 // slow calls spooled and run before the refusals began
	for refused == "" {
		res, err := callTool(cctx, c, "up__slow", map[string]any{"seconds": 0, "steps": 1}, "")
		if err != nil {
			t.Fatalf("call with the audit log locked: %v", err)
		}
		if res.IsError {
			refused = resultText(res)
		} else {
			ran++
		}
	}
	if !strings.Contains(refused, "audit log could not record this call, so it was not run (fail closed)") || !strings.Contains(refused, "lock") {
		t.Errorf("refusal = %q", refused)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	toolgatetest.Eventually(t, "calls run again once the lock is gone", func() bool {
		res, err := callTool(cctx, c, "up__echo", map[string]any{"text": "x"}, "")
		return err == nil && !res.IsError
	})
	var after struct{ Started int }
	_ = json.Unmarshal([]byte(mustCall(t, c, "up__stats", nil)), &after)
	if after.Started != before.Started+ran {
		t.Errorf("the upstream ran %d slow calls while the audit log was locked, %d of them refused", after.Started-before.Started, after.Started-before.Started-ran)
	}
	var found bool
	for _, r := range records(t, db) {
		found = found || strings.Contains(string(r.Args), "spooled while locked")
	}
	if !found {
		t.Error("the call spooled while the log was locked is not in it")
	}
}

// httpToolgate is `toolgate serve --http` as a process the test controls.
type httpToolgate struct {
	cmd    *exec.Cmd
	base   string
	stderr *toolgatetest.SyncBuffer
	done   chan struct{} // closed when the process has exited, err set
	err    error
}

func startHTTPProc(t *testing.T, cfg string) *httpToolgate {
	t.Helper()
	addr := toolgatetest.FreeAddr(t)
	g := &httpToolgate{stderr: &toolgatetest.SyncBuffer{}, done: make(chan struct{}), base: "http://" + addr}
	g.cmd = exec.Command(toolgateBin, "serve", "--config", cfg, "--http", addr)
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.err = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("toolgate stderr:\n%s", g.stderr.String())
		}
	})
	toolgatetest.EventuallyWithin(t, "/healthz", 20*time.Second, func() bool {
		resp, err := http.Get(g.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return g
}

// httpClient is an agent connected to url over streamable HTTP.
func httpClient(t *testing.T, url string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := connect(t, tr, opts...)
	return c
}

// TestOpsSIGTERMUnderLoad: SIGTERM while calls are in flight. toolgate exits
// 0, every call the agents saw succeed is recorded as ok, and no row is left
// started or pending.
func TestOpsSIGTERMUnderLoad(t *testing.T) {
	for _, tr := range []string{"http", "stdio"} {
		t.Run(tr, func(t *testing.T) {
			cfg, db := opsConfig(t, allowRules, "", "")
			var (
				clients []*client.Client
				exited  func() (error, bool) // waits up to 20s
				signal  func()
			)
			if tr == "http" {
				g := startHTTPProc(t, cfg)
				for range 6 {
					clients = append(clients, httpClient(t, g.base+"/mcp"))
				}
				exited = func() (error, bool) {
					select {
					case <-g.done:
						return g.err, true
					case <-time.After(20 * time.Second):
						return nil, false
					}
				}
				signal = func() { _ = g.cmd.Process.Signal(syscall.SIGTERM) }
			} else {
				// Over stdio, start toolgate by hand to signal it.
				cmd := exec.Command(toolgateBin, "serve", "--config", cfg)
				stdin, _ := cmd.StdinPipe()
				stdout, _ := cmd.StdoutPipe()
				stderr := &toolgatetest.SyncBuffer{}
				cmd.Stderr = stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				ch := make(chan error, 1)
				go func() { ch <- cmd.Wait() }()
				t.Cleanup(func() {
					_ = cmd.Process.Kill()
					if t.Failed() {
						t.Logf("toolgate stderr:\n%s", stderr.String())
					}
				})
				c, _ := connect(t, transport.NewIO(stdout, stdin, io.NopCloser(strings.NewReader(""))))
				clients = []*client.Client{c}
				exited = func() (error, bool) {
					select {
					case err := <-ch:
						return err, true
					case <-time.After(20 * time.Second):
						return nil, false
					}
				}
				signal = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
			}

			var ok atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := range 6 {
				c := clients[w%len(clients)]
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						var res *mcpgo.CallToolResult
						var err error
						if w < 2 { // some long calls, in flight at the signal
							res, err = callTool(ctx, c, "up__slow", map[string]any{"seconds": 0.4, "steps": 2}, "")
						} else {
							res, err = callTool(ctx, c, "up__echo", map[string]any{"text": fmt.Sprint(i)}, "")
						}
						cancel()
						if err != nil {
							return // the connection went away
						}
						if !res.IsError {
							ok.Add(1)
						}
					}
				})
			}
			time.Sleep(700 * time.Millisecond)
			signal()
			if err, ok := exited(); !ok {
				t.Fatal("toolgate did not exit within 20s of SIGTERM")
			} else if err != nil {
				t.Errorf("toolgate exited with %v after SIGTERM, want status 0", err)
			}
			close(stop)
			wg.Wait()

			recs := records(t, db)
			okRows := 0
			for _, r := range recs {
				switch r.Status {
				case toolgate.StatusOK:
					okRows++
				case toolgate.StatusStarted, toolgate.StatusPending:
					t.Errorf("call %s (%s) left %s after shutdown", r.ID, r.Tool, r.Status)
				}
			}
			if okRows < int(ok.Load()) || ok.Load() == 0 {
				t.Errorf("agents saw %d successful calls, the audit log records %d ok", ok.Load(), okRows)
			}
			t.Logf("%s: %d rows, %d ok (agents saw %d)", tr, len(recs), okRows, ok.Load())
		})
	}
}

// rawStdio speaks JSON-RPC lines to a toolgate serve over stdio.
type rawStdio struct {
	t      *testing.T
	stdin  io.WriteCloser
	lines  chan rawLine
	stderr *toolgatetest.SyncBuffer
	pid    int
}

// rawLine is one response line from toolgate, decoded and as sent.
type rawLine struct {
	m   map[string]any
	raw []byte
}

func startRawStdio(t *testing.T, cfg string) *rawStdio {
	t.Helper()
	return startRawStdioWith(t, cfg, `{}`)
}

// startRawStdioWith starts toolgate as an agent declaring capabilities
// (a JSON object) would. Its requests to the agent (elicitation/create)
// come through next like responses; notifications are dropped.
func startRawStdioWith(t *testing.T, cfg, capabilities string) *rawStdio {
	t.Helper()
	cmd := exec.Command(toolgateBin, "serve", "--config", cfg)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	r := &rawStdio{t: t, stdin: stdin, lines: make(chan rawLine, 16), stderr: &toolgatetest.SyncBuffer{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.pid = cmd.Process.Pid
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("toolgate did not exit when stdin closed")
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && (m["method"] == nil || m["id"] != nil) {
				r.lines <- rawLine{m, append([]byte(nil), sc.Bytes()...)}
			}
		}
		close(r.lines)
	}()
	r.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` + capabilities + `,"clientInfo":{"name":"raw","version":"0"}}}`)
	if m := r.next(); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	r.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return r
}

func (r *rawStdio) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.stdin, s+"\n"); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawStdio) next() map[string]any {
	r.t.Helper()
	return r.nextRaw().m
}

func (r *rawStdio) nextRaw() rawLine {
	r.t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			r.t.Fatalf("toolgate closed stdout; stderr:\n%s", r.stderr.String())
		}
		return l
	case <-time.After(20 * time.Second):
		r.t.Fatalf("no response; stderr:\n%s", r.stderr.String())
	}
	return rawLine{}
}

func callResult(m map[string]any) (text string, isError bool) {
	res, _ := m["result"].(map[string]any)
	isError, _ = res["isError"].(bool)
	content, _ := res["content"].([]any)
	for _, c := range content {
		if cm, ok := c.(map[string]any); ok {
			s, _ := cm["text"].(string)
			text += s
		}
	}
	return text, isError
}

// TestOpsBadArguments: arguments that are not an object are refused before
// any rule or upstream sees them; arguments of the wrong type for the
// schema are refused with a tool error naming the problem, and the upstream
// never sees them; oversized lines on stdio are answered and do not stop the
// server.
func TestOpsBadArguments(t *testing.T) {
	cfg, db := opsConfig(t, allowRules, "", "")
	r := startRawStdio(t, cfg)

	for i, args := range []string{`"rm -rf /"`, `[1,2]`, `42`} {
		r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"up__echo","arguments":%s}}`, 10+i, args))
		m := r.next()
		if text, isErr := callResult(m); !isErr || !strings.Contains(text, "input schema validation failed") || !strings.Contains(text, "object") {
			t.Errorf("arguments %s: got %v", args, m)
		}
	}

	// Wrong types for the schema: refused before the gate and the upstream.
	r.send(`{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"up__complex","arguments":{"mode":7,"n":"x"}}}`)
	if text, isErr := callResult(r.next()); !isErr || !strings.Contains(text, "input schema validation failed") || !strings.Contains(text, "mode") {
		t.Errorf("schema-mismatched arguments: isError %v, text %q; want a tool error naming the bad argument", isErr, text)
	}

	// Oversized lines: a 64 MiB call is refused by its id (written last,
	// as the TypeScript SDK does) without being held whole, 6 MiB of junk
	// is refused too, a 5 MiB response to nothing is dropped unanswered,
	// a 2 MiB argument is served.
	r.send(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"up__echo","arguments":{"text":"` + strings.Repeat("z", 64<<20) + `"}},"id":23}`)
	if m := r.next(); errCode(m) != -32600 || m["id"] != 23.0 || !strings.Contains(fmt.Sprint(m["error"]), "at most 4194304 bytes") {
		t.Errorf("64 MiB call: got %v, want error -32600 for id 23 naming the limit", m)
	}
	if hwm := peakRSS(t, r.pid); hwm > 128<<20 {
		t.Errorf("peak RSS after a 64 MiB line: %d MiB, want the line not held whole", hwm>>20)
	}
	r.send(strings.Repeat("x", 6<<20))
	if m := r.next(); errCode(m) != -32600 || m["id"] != nil {
		t.Errorf("6 MiB junk line: got %v, want error -32600 without an id", m)
	}
	r.send(`{"jsonrpc":"2.0","id":99,"result":{"content":"` + strings.Repeat("r", 5<<20) + `"}}`)
	big := strings.Repeat("y", 2<<20)
	r.send(`{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"` + big + `"}}}`)
	if text, isErr := callResult(r.next()); isErr || text != big {
		t.Errorf("2 MiB argument: isError %v, %d bytes back", isErr, len(text))
	}
	r.send(`{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"still here"}}}`)
	if text, _ := callResult(r.next()); text != "still here" {
		t.Errorf("after oversized input: %q", text)
	}

	var wrongType, objectless int
	for _, rec := range records(t, db) {
		if rec.Tool == "complex" {
			wrongType++
		}
		if rec.Tool == "echo" && len(rec.Args) == 0 {
			objectless++
		}
	}
	if wrongType != 0 || objectless != 0 {
		t.Errorf("audit: %d rows for the schema-mismatched call, %d for the non-object ones; want none (refused before the gate)", wrongType, objectless)
	}
}

// TestOpsResultHashIsWhatTheAgentGot: the recorded result size and hash
// are those of the result's bytes as the agent received them (over stdio,
// the upstream's own bytes, passed on undecoded).
func TestOpsResultHashIsWhatTheAgentGot(t *testing.T) {
	cfg, db := opsConfig(t, allowRules, "", "")
	r := startRawStdio(t, cfg)
	r.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"<b>caf\u00e9</b> & more"}}}`)
	l := r.nextRaw()
	if text, isErr := callResult(l.m); isErr || text != "<b>café</b> & more" {
		t.Fatalf("echo: %q isError %v", text, isErr)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(l.raw, &resp); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(resp.Result)
	want := hex.EncodeToString(sum[:])
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := records(t, db)
		if len(recs) == 1 && recs[0].Outcome != nil && recs[0].Status != toolgate.StatusStarted {
			if o := recs[0].Outcome; o.ResultHash != want || o.ResultSize != len(resp.Result) || recs[0].Status != toolgate.StatusOK {
				t.Errorf("recorded %s, size %d, hash %s; the agent got %d bytes, sha256 %s", recs[0].Status, o.ResultSize, o.ResultHash, len(resp.Result), want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no outcome recorded: %+v", recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestOpsNoLeaks runs -ops.calls calls (default 100,000; about 25 s) through the real
// rules (100), audit log, metrics and catalog, to an in-process upstream,
// from 4 goroutines, and checks that goroutines and file descriptors do not
// grow, and that nothing is left running once everything is closed.
func TestOpsNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ignore := goleak.IgnoreCurrent()
	ctx := context.Background()

	up := server.NewMCPServer("inproc", "1.0", server.WithToolCapabilities(true))
	up.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.GetString("text", "")), nil
	})
	cat, err := tools.New(tools.Options{Upstreams: []tools.Upstream{{Name: "up", Server: up}}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse("rules-100.yaml", []byte(bench.HundredRules("ops-100")))
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(ctx, filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	g, err := gate.New(gate.Options{Decider: set, Recorder: m.WrapRecorder(st), Forwarder: cat, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	cat.Start(ctx)
	tool, ok := cat.Lookup("up__echo")
	if !ok {
		t.Fatal("up__echo not in the catalog")
	}

	calls := func(n int) {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 4 {
			wg.Go(func() {
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					c := toolgate.Call{Server: "up", Tool: "echo", Name: tool.Name, SchemaHash: tool.SchemaHash, Args: map[string]any{"text": "x"}}
					if res := g.Handle(ctx, c); res.IsError {
						t.Errorf("call %d: %+v", i, res)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	calls(500) // warm up pools, the writer, the checkpointer
	runtime.GC()
	g0, f0 := runtime.NumGoroutine(), openFDs(t)
	start := time.Now()
	calls(*opsCalls)
	took := time.Since(start)
	runtime.GC()
	time.Sleep(100 * time.Millisecond) // let finished handlers' goroutines exit
	g1, f1 := runtime.NumGoroutine(), openFDs(t)
	t.Logf("%d calls in %s (%.0f/s): goroutines %d -> %d, fds %d -> %d", *opsCalls, took.Round(time.Millisecond), float64(*opsCalls)/took.Seconds(), g0, g1, f0, f1)
	if g1 > g0+5 {
		t.Errorf("goroutines grew from %d to %d over %d calls", g0, g1, *opsCalls)
	}
	if f1 > f0+3 {
		t.Errorf("open fds grew from %d to %d over %d calls", f0, f1, *opsCalls)
	}

	if err := cat.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

// rssKB reads a process's resident set size from /proc.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			_, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// TestOpsRSS measures toolgate's resident memory with three stdio upstreams
// and the 100-rule set after 3,000 calls over HTTP. The target is
// under 50 MB; the test fails only past 100 MB (RSS depends on the kernel
// and GC timing), and logs the figure.
func TestOpsRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	rf := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rf, []byte(bench.HundredRules("ops-100")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("servers:\n  a: {command: %q}\n  b: {command: %q}\n  c: {command: %q}\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n",
		upstreamBin, upstreamBin, upstreamBin, rf, filepath.Join(dir, "audit.db")))
	g := startHTTPProc(t, cfg)
	var wg sync.WaitGroup
	for w, srv := range []string{"a", "b", "c"} {
		c := httpClient(t, g.base+"/mcp")
		wg.Go(func() {
			for i := range 1000 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := callTool(ctx, c, srv+"__echo", map[string]any{"text": fmt.Sprint(w, i)}, "")
				cancel()
				if err != nil || res.IsError {
					t.Errorf("%s__echo: %v %v", srv, err, res)
					return
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	kb, err := rssKB(g.cmd.Process.Pid)
	if err != nil {
		t.Skip(err)
	}
	t.Logf("toolgate RSS after 3000 calls, 3 upstreams, 100 rules: %.1f MB", float64(kb)/1024)
	if kb > 100<<10 {
		t.Errorf("RSS %.1f MB, far above the 50 MB target", float64(kb)/1024)
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		t.Error("toolgate did not stop on SIGTERM")
	}
}

// fuzzServer is an in-process agent-facing server (real gate and rules, a
// no-op audit log, an echo forwarder) on a pipe pair, shared by all inputs.
// A goroutine reads its output continuously, as a real agent would (the
// pipes have no buffer).
type fuzzServer struct {
	in    *io.PipeWriter
	lines chan []byte // closed when the server closes its output
	done  chan error
}

type echoForwarder struct{}

func (echoForwarder) ForwardResult(_ context.Context, c toolgate.Call) (toolgate.Result, error) {
	b, _ := json.Marshal(c.Args)
	return tools.Decoded(mcpgo.NewToolResultText(string(b))), nil
}

type staticCatalog []tools.Tool

func (s staticCatalog) Tools() []tools.Tool { return s }

// FuzzStdioJSONRPC feeds arbitrary lines to the stdio server. Invariants:
// the server never dies or stalls (a ping after each input is answered),
// and everything it writes is a JSON-RPC 2.0 message.
func FuzzStdioJSONRPC(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi","_confidence":0.5}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":"str"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"up__echo","_meta":{"toolgate/model":{"name":1},"toolgate/confidence":"x","progressToken":{}}}}`,
		`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
		`{"jsonrpc":"1.0","id":6,"method":"ping"}`,
		`[{"jsonrpc":"2.0","id":7,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`,
		`{"jsonrpc":"2.0","id":8,"result":{}}`,
		`{"jsonrpc":"2.0","id":9,"method":"initialize","params":null}`,
		`{`, `null`, `""`, `[]`, "\x00\xff",
	} {
		f.Add(seed)
	}
	set, err := rules.Parse("allow.yaml", []byte(allowRules))
	if err != nil {
		f.Fatal(err)
	}
	g, err := gate.New(gate.Options{Decider: set, Recorder: toolgatetest.NopRecorder{}, Forwarder: echoForwarder{}})
	if err != nil {
		f.Fatal(err)
	}
	def := mcpgo.NewTool("echo", mcpgo.WithString("text"))
	srv, err := mcp.New(mcp.Options{Version: "fuzz", Gate: g, Catalog: staticCatalog{{Name: "up__echo", Server: "up", Def: def}}})
	if err != nil {
		f.Fatal(err)
	}
	srv.Sync()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	fs := &fuzzServer{in: inW, lines: make(chan []byte, 4096), done: make(chan error, 1)}
	go func() { fs.done <- srv.ServeStdio(ctx, inR, outW); outW.Close() }()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			fs.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(fs.lines)
		_, _ = io.Copy(io.Discard, outR)
	}()
	f.Cleanup(func() { cancel(); inW.Close(); <-fs.done })
	fs.send(f, `{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}}`)
	fs.until(f, "init")

	var n atomic.Int64
	f.Fuzz(func(t *testing.T, line string) {
		line = strings.NewReplacer("\n", " ", "\r", " ").Replace(line)
		fs.send(t, line)
		id := fmt.Sprintf("sentinel-%d", n.Add(1))
		fs.send(t, `{"jsonrpc":"2.0","id":"`+id+`","method":"ping"}`)
		fs.until(t, id)
	})
}

func (fs *fuzzServer) send(t testing.TB, line string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := io.WriteString(fs.in, line+"\n"); errc <- err }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server stopped reading stdin")
	}
}

// until reads messages until the response to id, checking each is JSON-RPC.
func (fs *fuzzServer) until(t testing.TB, id string) {
	t.Helper()
	for {
		var b []byte
		var ok bool
		select {
		case b, ok = <-fs.lines:
		case <-time.After(10 * time.Second):
			t.Fatalf("no response to %s within 10s", id)
		}
		if !ok {
			t.Fatalf("server closed stdout: %v", <-fs.done)
		}
		var m struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Result  json.RawMessage `json:"result"`
			Error   *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.JSONRPC != "2.0" {
			t.Fatalf("not a JSON-RPC 2.0 message: %q (%v)", b, err)
		}
		if m.Method == "" && (m.Result == nil) == (m.Error == nil) {
			t.Fatalf("response with neither or both result and error: %q", b)
		}
		if string(m.ID) == `"`+id+`"` {
			return
		}
	}
}

// peakRSS is process pid's peak resident set size (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
