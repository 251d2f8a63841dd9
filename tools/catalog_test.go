package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

var upstreamBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "toolgate-tools-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	upstreamBin = filepath.Join(dir, "upstream")
	out, err := exec.Command("go", "build", "-o", upstreamBin, "../testdata/upstream").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building test upstream: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const rawSchema = `{"type":"object","$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"b":{"type":"string"},"a":{"type":"integer"}},"oneOf":[{"required":["a"]},{"required":["b"]}]}`

// newInProcess returns an MCP server with a few tools, and a channel
// receiving the _meta of every "meta" call.
func newInProcess(t *testing.T) (*server.MCPServer, chan map[string]any) {
	t.Helper()
	metas := make(chan map[string]any, 4)
	s := server.NewMCPServer("inproc", "9.9", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("echoes"), mcp.WithString("text"),
		mcp.WithReadOnlyHintAnnotation(true), mcp.WithOpenWorldHintAnnotation(false), mcp.WithTitleAnnotation("Echo!")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("text", "")), nil
		})
	s.AddTool(mcp.NewToolWithRawSchema("raw", "raw schema", json.RawMessage(rawSchema)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		})
	s.AddTool(mcp.NewTool("meta"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var m map[string]any
		if req.Params.Meta != nil {
			m = req.Params.Meta.AdditionalFields
		}
		metas <- m
		return mcp.NewToolResultText("ok"), nil
	})
	s.AddTool(mcp.NewTool("prog"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tok := req.Params.Meta.ProgressToken
		for i := 1; i <= 3; i++ {
			if err := s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{"progressToken": tok, "progress": i, "total": 3, "message": fmt.Sprint("step ", i)}); err != nil {
				return nil, err
			}
		}
		// In-process notifications travel apart from the response; progress
		// arriving after the result is (rightly) dropped, so give them time.
		time.Sleep(100 * time.Millisecond)
		return mcp.NewToolResultText("done"), nil
	})
	return s, metas
}

func startCatalog(t *testing.T, o Options) *Catalog {
	t.Helper()
	if o.MinBackoff == 0 {
		o.MinBackoff = 300 * time.Millisecond
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func call(c *Catalog, name string, args map[string]any) toolgate.Call {
	t, ok := c.Lookup(name)
	if !ok {
		return toolgate.Call{Server: strings.Split(name, "__")[0], Tool: strings.SplitN(name, "__", 2)[1], Name: name, Args: args}
	}
	return toolgate.Call{Server: t.Server, Tool: t.Def.Name, Name: t.Name, Args: args}
}

func text(r *mcp.CallToolResult) string {
	if r == nil || len(r.Content) == 0 {
		return ""
	}
	if tc, ok := r.Content[0].(mcp.TextContent); ok {
		return tc.Text
	}
	return fmt.Sprintf("%T", r.Content[0])
}

func TestInProcessCatalog(t *testing.T) {
	srv, metas := newInProcess(t)
	changed := make(chan struct{}, 8)
	c := startCatalog(t, Options{
		Upstreams: []Upstream{{Name: "ws", Server: srv}},
		Version:   "1.0",
		OnChange:  func() { changed <- struct{}{} },
	})

	names := map[string]Tool{}
	for _, tl := range c.Tools() {
		names[tl.Name] = tl
	}
	for _, n := range []string{"ws__echo", "ws__raw", "ws__meta", "ws__prog"} {
		if _, ok := names[n]; !ok {
			t.Fatalf("tool %s missing; have %v", n, names)
		}
	}
	echo := names["ws__echo"]
	if echo.Server != "ws" || echo.ServerVersion != "9.9" || echo.Def.Name != "echo" || echo.Def.Description != "echoes" {
		t.Errorf("echo = %+v", echo)
	}
	if echo.Annotations.ReadOnly == nil || !*echo.Annotations.ReadOnly || echo.Annotations.OpenWorld == nil || *echo.Annotations.OpenWorld || echo.Annotations.Title != "Echo!" {
		t.Errorf("annotations = %+v", echo.Annotations)
	}
	raw := names["ws__raw"]
	got, _ := CanonicalJSON(raw.Def.RawInputSchema)
	want, _ := CanonicalJSON(json.RawMessage(rawSchema))
	if string(got) != string(want) {
		t.Errorf("raw schema changed:\n got %s\nwant %s", got, want)
	}
	if h, _ := SchemaHash(json.RawMessage(rawSchema)); raw.SchemaHash != h {
		t.Errorf("schema hash %s, want %s", raw.SchemaHash, h)
	}

	res, err := c.Forward(context.Background(), call(c, "ws__echo", map[string]any{"text": "hi"}))
	if err != nil || text(res) != "hi" {
		t.Fatalf("echo: %v %v", res, err)
	}

	// _meta: reserved keys are not forwarded, others are.
	cl := call(c, "ws__meta", nil)
	cl.Meta = map[string]any{"com.example/trace": "t1", "toolgate/model": "m", "io.modelcontextprotocol/clientInfo": map[string]any{}, "progressToken": 7}
	if _, err := c.Forward(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	if m := <-metas; len(m) != 1 || m["com.example/trace"] != "t1" {
		t.Errorf("upstream saw _meta %v, want only com.example/trace", m)
	}

	// Progress goes to the toolgate.ProgressFunc in ctx.
	var mu sync.Mutex
	var steps []string
	ctx := toolgate.WithProgress(context.Background(), func(p, total float64, msg string) {
		mu.Lock()
		steps = append(steps, fmt.Sprintf("%g/%g %s", p, total, msg))
		mu.Unlock()
	})
	if res, err := c.Forward(ctx, call(c, "ws__prog", nil)); err != nil || text(res) != "done" {
		t.Fatalf("prog: %v %v", res, err)
	}
	toolgatetest.Eventually(t, "3 progress notifications", func() bool { mu.Lock(); defer mu.Unlock(); return len(steps) == 3 })
	if steps[0] != "1/3 step 1" || steps[2] != "3/3 step 3" {
		t.Errorf("progress = %v", steps)
	}

	// list_changed: a new upstream tool appears and OnChange fires.
	drain(changed)
	srv.AddTool(mcp.NewTool("late"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("late"), nil
	})
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("OnChange not called after list_changed")
	}
	if _, ok := c.Lookup("ws__late"); !ok {
		t.Fatal("ws__late not listed after list_changed")
	}

	if _, err := c.Forward(context.Background(), toolgate.Call{Server: "nope", Tool: "x"}); !errors.Is(err, ErrUnknownTool) {
		t.Errorf("unknown server: %v", err)
	}
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func stats(t *testing.T, c *Catalog) map[string]float64 {
	t.Helper()
	res, err := c.Forward(context.Background(), call(c, "up__stats", nil))
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	var m map[string]float64
	if err := json.Unmarshal([]byte(text(res)), &m); err != nil {
		t.Fatalf("stats %q: %v", text(res), err)
	}
	return m
}

func TestStdioCrashAndRestart(t *testing.T) {
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "up", Command: upstreamBin}}})
	if _, ok := c.Lookup("up__echo"); !ok {
		t.Fatalf("up__echo not listed: %v", c.Tools())
	}
	pid := stats(t, c)["pid"]

	if _, err := c.Forward(context.Background(), call(c, "up__crash", nil)); err == nil {
		t.Fatal("crash call succeeded")
	}
	start := time.Now()
	_, err := c.Forward(context.Background(), call(c, "up__echo", map[string]any{"text": "x"}))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call during outage: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("call during outage took %s", d)
	}
	for _, want := range []string{`upstream "up" is unavailable`, "exit status 3", "crashing on purpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("outage error %q lacks %q", err, want)
		}
	}
	// Tools stay listed while it is down.
	if _, ok := c.Lookup("up__echo"); !ok {
		t.Error("tools dropped while upstream down")
	}

	toolgatetest.Eventually(t, "restart", func() bool {
		res, err := c.Forward(context.Background(), call(c, "up__echo", map[string]any{"text": "back"}))
		return err == nil && text(res) == "back"
	})
	if newPid := stats(t, c)["pid"]; newPid == pid {
		t.Errorf("same pid %v after restart", pid)
	}
	st := c.Status()
	if len(st) != 1 || !st[0].Up || st[0].Restarts < 1 || !strings.Contains(st[0].LastError, "exit status 3") || st[0].ServerName != "upstream" {
		t.Errorf("status = %+v", st)
	}
}

func TestStdioFailStartIsolated(t *testing.T) {
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "bad", Command: upstreamBin, Args: []string{"--fail-start"}},
		{Name: "up", Command: upstreamBin},
		{Name: "missing", Command: filepath.Join(t.TempDir(), "no-such-binary")},
	}})
	for _, tl := range c.Tools() {
		if tl.Server != "up" {
			t.Errorf("tool %s listed from a server that never started", tl.Name)
		}
	}
	_, err := c.Forward(context.Background(), toolgate.Call{Server: "bad", Tool: "echo", Name: "bad__echo"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "missing API key") || !strings.Contains(err.Error(), "exit status 2") {
		t.Errorf("bad upstream error = %v", err)
	}
	_, err = c.Forward(context.Background(), toolgate.Call{Server: "missing", Tool: "echo"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no-such-binary") {
		t.Errorf("missing binary error = %v", err)
	}
	res, err := c.Forward(context.Background(), call(c, "up__echo", map[string]any{"text": "fine"}))
	if err != nil || text(res) != "fine" {
		t.Errorf("healthy upstream affected: %v %v", res, err)
	}
}

func TestStdioCancelProgressTimeout(t *testing.T) {
	changed := make(chan struct{}, 8)
	c := startCatalog(t, Options{
		Upstreams: []Upstream{{Name: "up", Command: upstreamBin}, {Name: "short", Command: upstreamBin, Timeout: 300 * time.Millisecond}},
		OnChange:  func() { changed <- struct{}{} },
	})

	t.Run("progress", func(t *testing.T) {
		var mu sync.Mutex
		var got []float64
		ctx := toolgate.WithProgress(context.Background(), func(p, total float64, msg string) {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
		})
		res, err := c.Forward(ctx, call(c, "up__slow", map[string]any{"seconds": 0.3, "steps": 3}))
		if err != nil || text(res) != "slept 0.3s" {
			t.Fatalf("slow: %v %v", res, err)
		}
		// The last step may trail the response (mcp-go writes notifications
		// on another goroutine) and is then dropped; earlier ones must come.
		toolgatetest.Eventually(t, "progress", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
		mu.Lock()
		if got[0] != 1 || got[1] != 2 {
			t.Errorf("progress = %v", got)
		}
		mu.Unlock()
	})

	t.Run("cancel reaches upstream", func(t *testing.T) {
		before := stats(t, c)["cancelled"]
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Forward(ctx, call(c, "up__slow", map[string]any{"seconds": 10, "steps": 100}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cancel took %s", d)
		}
		toolgatetest.Eventually(t, "upstream to see the cancellation", func() bool { return stats(t, c)["cancelled"] == before+1 })
	})

	t.Run("timeout", func(t *testing.T) {
		_, err := c.Forward(context.Background(), call(c, "short__slow", map[string]any{"seconds": 10, "steps": 100}))
		if err == nil || !strings.Contains(err.Error(), `upstream "short": slow timed out after 300ms`) {
			t.Fatalf("timeout error = %v", err)
		}
	})

	t.Run("list_changed", func(t *testing.T) {
		drain(changed)
		res, err := c.Forward(context.Background(), call(c, "up__add_tool", nil))
		if err != nil || text(res) != "extra_1" {
			t.Fatalf("add_tool: %v %v", res, err)
		}
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatal("no OnChange after upstream list_changed")
		}
		res, err = c.Forward(context.Background(), call(c, "up__extra_1", nil))
		if err != nil || text(res) != "extra_1" {
			t.Fatalf("extra_1: %v %v", res, err)
		}
	})
}

func TestNewRejects(t *testing.T) {
	for name, o := range map[string]Options{
		"no name":   {Upstreams: []Upstream{{Command: "x"}}},
		"twice":     {Upstreams: []Upstream{{Name: "a", Command: "x"}, {Name: "a", Command: "y"}}},
		"two kinds": {Upstreams: []Upstream{{Name: "a", Command: "x", URL: "http://h"}}},
		"none":      {Upstreams: []Upstream{{Name: "a"}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStripMeta(t *testing.T) {
	got := StripMeta(map[string]any{"io.modelcontextprotocol/x": 1, "toolgate/confidence": 0.5, "progressToken": 1, "a/b": 2})
	if len(got) != 1 || got["a/b"] != 2 {
		t.Errorf("StripMeta = %v", got)
	}
	if StripMeta(map[string]any{"toolgate/model": "x"}) != nil {
		t.Error("StripMeta of only reserved keys is not nil")
	}
}

// Upstreams that come up at the same moment each rebuild the catalog; none
// of those rebuilds may leave out an upstream that is up.
func TestConcurrentStartListsEveryUpstream(t *testing.T) {
	for round := range 20 {
		var ups []Upstream
		for i := range 12 {
			srv, _ := newInProcess(t)
			ups = append(ups, Upstream{Name: fmt.Sprintf("u%d", i), Server: srv})
		}
		c := startCatalog(t, Options{Upstreams: ups})
		if got, want := len(c.Tools()), 12*4; got != want {
			t.Fatalf("round %d: %d tools after Start, want %d", round, got, want)
		}
	}
}

// TestStdioSettle: a call that must settle (toolgate.Call.Settle), given up
// on without its answer, has its server stopped before Forward returns: its
// process is gone, and the calls made meanwhile are told toolgate stopped
// it. Such stops are no crashes: however many in a row, the restart waits
// no longer than the first.
func TestStdioSettle(t *testing.T) {
	const minBackoff = 300 * time.Millisecond
	c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "up", Command: upstreamBin}}, MinBackoff: minBackoff})
	for i := range 4 {
		var pid float64
		toolgatetest.Eventually(t, "the upstream up", func() bool {
			res, err := c.Forward(context.Background(), call(c, "up__stats", nil))
			if err != nil {
				return false
			}
			var st map[string]float64
			_ = json.Unmarshal([]byte(text(res)), &st)
			pid = st["pid"]
			return pid > 0
		})
		ctx, cancel := context.WithCancel(context.Background())
		slow := call(c, "up__slow", map[string]any{"seconds": 10, "steps": 100})
		slow.Settle = true
		time.AfterFunc(200*time.Millisecond, cancel)
		if _, err := c.Forward(ctx, slow); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop %d: the cancelled call: %v", i, err)
		}
		if toolgatetest.Alive(int(pid)) {
			t.Fatalf("stop %d: process %v still runs once Forward returned", i, pid)
		}
		_, err := c.Forward(context.Background(), call(c, "up__echo", map[string]any{"text": "x"}))
		ue, ok := errors.AsType[*UnavailableError](err)
		if !ok || !strings.Contains(ue.Reason, "stopped by toolgate") || ue.RetryIn > minBackoff {
			t.Fatalf("stop %d: a call meanwhile: %v (%+v), want it told toolgate stopped it, a restart within %v", i, err, ue, minBackoff)
		}
	}
}

// TestStdioSecretsHidden: a stdio server that fails printing a value of
// its configured environment (a token it was given) or a credential to
// stderr: the outage error a call gets, the upstream's status and the
// log show neither.
func TestStdioSecretsHidden(t *testing.T) {
	const token = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	const ghp = "ghp_SECRETSECRETSECRETSECRETSECRET1234"
	var log toolgatetest.SyncBuffer
	c := startCatalog(t, Options{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Upstreams: []Upstream{{Name: "up", Command: "sh", Env: []string{"GITHUB_TOKEN=" + token},
			Args: []string{"-c", `echo "could not connect as app using $GITHUB_TOKEN and ` + ghp + `" >&2; exit 1`}}}})
	_, err := c.Forward(context.Background(), call(c, "up__x", nil))
	if err == nil {
		t.Fatal("a call to a server that failed to start succeeded")
	}
	st := c.Status()
	for what, text := range map[string]string{"the call's error": err.Error(), "status": st[0].LastError, "the log": log.String()} {
		if strings.Contains(text, token) || strings.Contains(text, "SECRETSECRET") {
			t.Errorf("%s holds a secret: %s", what, text)
		}
	}
	if !strings.Contains(err.Error(), "could not connect as app using") {
		t.Errorf("the error lost the server's words: %v %+v", err, st[0])
	}
}
