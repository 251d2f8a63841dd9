package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate/toolgatetest"
	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/sandbox"
)

// Binaries built once for this test binary by TestMain.
var (
	toolgateBin string
	upstreamBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "toolgate-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolgateBin = filepath.Join(dir, "toolgate")
	upstreamBin = filepath.Join(dir, "upstream")
	for _, b := range [][2]string{{toolgateBin, "."}, {upstreamBin, "../../testdata/upstream"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b[1], err, out)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "toolgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// upstreamConfig is a config with the test upstream as server "up", an
// allow-everything rule file (these tests are about the proxy, not policy)
// and the audit log in a temporary directory.
func upstreamConfig(t *testing.T, extra string) string {
	cfg, _ := upstreamConfigDB(t, extra)
	return cfg
}

// upstreamConfigDB is upstreamConfig, and the path of its audit log.
func upstreamConfigDB(t *testing.T, extra string) (cfg, db string) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\nlabel: gateway-tests\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "audit.db")
	return fmt.Sprintf("servers:\n  up:\n    command: %q\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n%s",
		upstreamBin, rulesFile, db, extra), db
}

// notes collects the notifications a client receives.
type notes struct {
	mu  sync.Mutex
	all []mcp.JSONRPCNotification
}

func (n *notes) add(x mcp.JSONRPCNotification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, x)
}

func (n *notes) count(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, x := range n.all {
		if x.Method == method {
			c++
		}
	}
	return c
}

// logLines are the data of the log messages (notifications/message) got.
func (n *notes) logLines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.all {
		if x.Method == string(mcp.MethodNotificationMessage) {
			out = append(out, fmt.Sprint(x.Params.AdditionalFields["data"]))
		}
	}
	return out
}

func (n *notes) progress(token string) []float64 {
	var out []float64
	for _, v := range n.progressField(token, "progress") {
		p, _ := v.(float64)
		out = append(out, p)
	}
	return out
}

// progressField returns field key of each progress notification with
// token, in order.
func (n *notes) progressField(token, key string) []any {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []any
	for _, x := range n.all {
		if x.Method == "notifications/progress" && x.Params.AdditionalFields["progressToken"] == token {
			out = append(out, x.Params.AdditionalFields[key])
		}
	}
	return out
}

// serveTestClient is the clientInfo connect and startStdio send.
var serveTestClient = mcp.Implementation{Name: "serve-test", Version: "1.0"}

func connect(t *testing.T, tr transport.Interface, opts ...client.ClientOption) (*client.Client, *notes) {
	t.Helper()
	return connectAs(t, tr, serveTestClient, opts...)
}

// connectAs is connect with the clientInfo the agent sends in initialize.
func connectAs(t *testing.T, tr transport.Interface, info mcp.Implementation, opts ...client.ClientOption) (*client.Client, *notes) {
	t.Helper()
	c := client.NewClient(tr, append([]client.ClientOption{client.WithProtocolVersion(mcp.ProtocolVersion20251125)}, opts...)...)
	// Start's ctx lives as long as the transport (stdio kills its child when it ends).
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := &notes{}
	c.OnNotification(n.add)
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = info
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, n
}

func startStdio(t *testing.T, cfgPath string, env ...string) (*client.Client, *notes, *toolgatetest.SyncBuffer) {
	t.Helper()
	return startStdioAs(t, cfgPath, serveTestClient, env...)
}

// startStdioAs is startStdio with the clientInfo the agent sends.
func startStdioAs(t *testing.T, cfgPath string, info mcp.Implementation, env ...string) (*client.Client, *notes, *toolgatetest.SyncBuffer) {
	t.Helper()
	stderr := &toolgatetest.SyncBuffer{}
	tr := transport.NewStdioWithOptions(toolgateBin, env, []string{"serve", "--config", cfgPath},
		transport.WithCommandStderrWriter(stderr))
	c, n := connectAs(t, tr, info)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("toolgate stderr:\n%s", stderr.String())
		}
	})
	return c, n, stderr
}

func callTool(ctx context.Context, c *client.Client, name string, args map[string]any, progressToken string) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	if progressToken != "" {
		req.Params.Meta = &mcp.Meta{ProgressToken: progressToken}
	}
	return c.CallTool(ctx, req)
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func mustCall(t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, name, args, "")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %s", name, resultText(res))
	}
	return resultText(res)
}

// rawTools lists tools as raw JSON (mcp-go's typed Tool drops schema keywords).
func rawTools(t *testing.T, c *client.Client) map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId("raw-list"), Method: "tools/list",
	})
	if err != nil || resp.Error != nil {
		t.Fatalf("raw tools/list: %v %+v", err, resp)
	}
	var res struct{ Tools []json.RawMessage }
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, raw := range res.Tools {
		var n struct{ Name string }
		_ = json.Unmarshal(raw, &n)
		out[n.Name] = raw
	}
	return out
}

// complexSchema is testdata/upstream's "complex" tool schema.
const complexSchema = `{"type":"object","$schema":"https://json-schema.org/draft/2020-12/schema","description":"top-level description","properties":{"mode":{"type":"string","enum":["a","b"]},"n":{"type":"integer","minimum":1}},"required":["mode"],"additionalProperties":false,"anyOf":[{"required":["n"]},{"properties":{"mode":{"const":"a"}}}]}`

func TestServeStdio(t *testing.T) {
	c, n, stderr := startStdio(t, writeConfig(t, upstreamConfig(t, "")))

	t.Run("definitions intact", func(t *testing.T) {
		raw := rawTools(t, c)
		for _, name := range []string{"up__echo", "up__slow", "up__crash", "up__add_tool", "up__stats", "up__complex"} {
			if raw[name] == nil {
				t.Fatalf("%s not listed; have %d tools", name, len(raw))
			}
		}
		var echo struct {
			Title, Description string
			Annotations        map[string]any
			InputSchema        struct {
				Properties map[string]map[string]any
				Required   []string
			}
		}
		if err := json.Unmarshal(raw["up__echo"], &echo); err != nil {
			t.Fatal(err)
		}
		if echo.Title != "Echo" || echo.Description != "Returns the text it is given." {
			t.Errorf("echo title/description = %q / %q", echo.Title, echo.Description)
		}
		if echo.Annotations["readOnlyHint"] != true || echo.Annotations["idempotentHint"] != true || echo.Annotations["destructiveHint"] != false {
			t.Errorf("echo annotations = %v", echo.Annotations)
		}
		if echo.InputSchema.Properties["text"]["description"] != "what to echo" || len(echo.InputSchema.Required) != 1 {
			t.Errorf("echo schema = %+v", echo.InputSchema)
		}
		conf := echo.InputSchema.Properties["_confidence"]
		if conf["type"] != "number" || conf["minimum"] != 0.0 || conf["maximum"] != 1.0 || !strings.Contains(conf["description"].(string), "confident") {
			t.Errorf("_confidence property = %v", conf)
		}

		// The complex schema, minus the added _confidence, is byte-for-byte
		// the upstream's after canonicalisation.
		var cx struct{ InputSchema map[string]any }
		if err := json.Unmarshal(raw["up__complex"], &cx); err != nil {
			t.Fatal(err)
		}
		delete(cx.InputSchema["properties"].(map[string]any), "_confidence")
		got, _ := json.Marshal(cx.InputSchema)
		gotC, _ := tools.CanonicalJSON(got)
		wantC, _ := tools.CanonicalJSON(json.RawMessage(complexSchema))
		if string(gotC) != string(wantC) {
			t.Errorf("complex schema:\n got %s\nwant %s", gotC, wantC)
		}
	})

	t.Run("call strips _confidence", func(t *testing.T) {
		if got := mustCall(t, c, "up__echo", map[string]any{"text": "hi", "_confidence": 0.8}); got != "hi" {
			t.Errorf("echo = %q", got)
		}
		if got := mustCall(t, c, "up__complex", map[string]any{"mode": "a", "_confidence": 0.5}); got != `{"mode":"a"}` {
			t.Errorf("upstream got arguments %s, want _confidence removed", got)
		}
	})

	t.Run("progress relayed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := callTool(ctx, c, "up__slow", map[string]any{"seconds": 0.3, "steps": 3}, "p-1")
		if err != nil || res.IsError {
			t.Fatalf("slow: %v %v", err, res)
		}
		// mcp-go servers write notifications on a different goroutine than
		// responses, so the last step may trail the result and be dropped
		// (progress after completion is not relayed); the earlier ones must come.
		toolgatetest.EventuallyWithin(t, "progress notifications", 5*time.Second, func() bool { return len(n.progress("p-1")) >= 2 })
		if p := n.progress("p-1"); p[0] != 1 || p[1] != 2 {
			t.Errorf("progress = %v", p)
		}
	})

	t.Run("cancellation reaches upstream", func(t *testing.T) {
		before := mustCall(t, c, "up__stats", nil)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := callTool(ctx, c, "up__slow", map[string]any{"seconds": 20, "steps": 200}, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("cancellation took %s", d)
		}
		var b, a struct{ Cancelled int }
		_ = json.Unmarshal([]byte(before), &b)
		toolgatetest.EventuallyWithin(t, "upstream to count the cancellation", 10*time.Second, func() bool {
			_ = json.Unmarshal([]byte(mustCall(t, c, "up__stats", nil)), &a)
			return a.Cancelled == b.Cancelled+1
		})
	})

	t.Run("list_changed propagates", func(t *testing.T) {
		before := n.count("notifications/tools/list_changed")
		if got := mustCall(t, c, "up__add_tool", nil); got != "extra_1" {
			t.Fatalf("add_tool = %q", got)
		}
		toolgatetest.EventuallyWithin(t, "tools/list_changed", 10*time.Second, func() bool { return n.count("notifications/tools/list_changed") > before })
		if rawTools(t, c)["up__extra_1"] == nil {
			t.Fatal("up__extra_1 not listed after list_changed")
		}
		if got := mustCall(t, c, "up__extra_1", nil); got != "extra_1" {
			t.Errorf("extra_1 = %q", got)
		}
	})

	t.Run("killed upstream restarted", func(t *testing.T) {
		var s1 struct{ Pid int }
		_ = json.Unmarshal([]byte(mustCall(t, c, "up__stats", nil)), &s1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := callTool(ctx, c, "up__crash", nil, "")
		if err != nil || !res.IsError || !strings.Contains(resultText(res), `upstream "up"`) {
			t.Fatalf("crash call: %v %+v", err, res)
		}
		start := time.Now()
		res, err = callTool(ctx, c, "up__echo", map[string]any{"text": "x"}, "")
		if err != nil || !res.IsError {
			t.Fatalf("call during outage: %v %+v", err, res)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("call during outage took %s", d)
		}
		if msg := resultText(res); !strings.Contains(msg, `upstream "up" is unavailable`) || !strings.Contains(msg, "crashing on purpose") {
			t.Errorf("outage message = %q", msg)
		}
		toolgatetest.EventuallyWithin(t, "the upstream to come back", 15*time.Second, func() bool {
			res, err := callTool(ctx, c, "up__echo", map[string]any{"text": "back"}, "")
			return err == nil && !res.IsError && resultText(res) == "back"
		})
		var s2 struct{ Pid int }
		_ = json.Unmarshal([]byte(mustCall(t, c, "up__stats", nil)), &s2)
		if s1.Pid == s2.Pid || s2.Pid == 0 {
			t.Errorf("pid %d -> %d: not restarted", s1.Pid, s2.Pid)
		}
		log := stderr.String()
		for _, want := range []string{"upstream down", "server=up", "crashing on purpose", "exit status 3"} {
			if !strings.Contains(log, want) {
				t.Errorf("toolgate log lacks %q", want)
			}
		}
	})
}

// TestServeStdioMalformed speaks raw JSON-RPC lines to toolgate's stdin.
func TestServeStdioMalformed(t *testing.T) {
	r := startRawStdio(t, writeConfig(t, upstreamConfig(t, "")))
	send, next := r.send, r.next

	send(`{this is not json`)
	if m := next(); errCode(m) != -32700 {
		t.Errorf("bad JSON: got %v, want parse error -32700", m)
	}
	send(`{"jsonrpc":"2.0","id":2,"method":"no/such/method"}`)
	if m := next(); errCode(m) != -32601 || m["id"] != 2.0 {
		t.Errorf("unknown method: got %v, want -32601", m)
	}
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__nope"}}`)
	if m := next(); errCode(m) == 0 {
		t.Errorf("unknown tool: got %v, want a JSON-RPC error", m)
	}
	send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"still here"}}}`)
	m := next()
	if b, _ := json.Marshal(m["result"]); !strings.Contains(string(b), "still here") {
		t.Errorf("server did not keep serving: %v", m)
	}
}

func errCode(m map[string]any) int {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return int(c)
}

func TestServeBadConfig(t *testing.T) {
	path := writeConfig(t, "servers:\n  fs:\n    comand: npx\nreview: {timeout: soon}\n")
	cmd := exec.Command(toolgateBin, "serve", "--config", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{
		path + `:3:5: unknown key "comand" in server "fs" (did you mean "command"?)`,
		path + `:4:19: invalid duration "soon"`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	// Usage errors exit 2; an unset ${VAR} is reported with its server.
	if err := exec.Command(toolgateBin, "serve", "--log-format", "xml").Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("bad flag: %v, want exit 2", err)
	}
	path = writeConfig(t, "servers:\n  r: {url: 'https://h/mcp', headers: {A: '${TG_TEST_UNSET_VAR}'}}\n")
	cmd = exec.Command(toolgateBin, "serve", "--config", path)
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); !errors.As(err, &ee) || !strings.Contains(stderr.String(), `server "r": headers.A: environment variable TG_TEST_UNSET_VAR is not set`) {
		t.Errorf("unset var: %v\n%s", err, stderr.String())
	}
}

// startHTTP runs `toolgate serve --http` and waits for /healthz.
func startHTTP(t *testing.T, cfgPath string, args ...string) string {
	t.Helper()
	addr := toolgatetest.FreeAddr(t)
	cmd := exec.Command(toolgateBin, append([]string{"serve", "--config", cfgPath, "--http", addr}, args...)...)
	stderr := &toolgatetest.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("toolgate exited with %v after SIGINT", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("toolgate did not stop on SIGINT")
		}
		if t.Failed() {
			t.Logf("toolgate stderr:\n%s", stderr.String())
		}
	})
	base := "http://" + addr
	toolgatetest.EventuallyWithin(t, "/healthz", 20*time.Second, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`

func post(t *testing.T, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServeHTTP(t *testing.T) {
	const token = "s3cret-token"
	base := startHTTP(t, writeConfig(t, upstreamConfig(t, "http: {max_request_bytes: 65536}\n")), "--auth-token", token)
	mcpURL := base + "/mcp"
	auth := map[string]string{"Authorization": "Bearer " + token}

	t.Run("guards", func(t *testing.T) {
		cases := []struct {
			name string
			hdr  map[string]string
			body string
			want int
		}{
			{"no token", nil, initBody, http.StatusUnauthorized},
			{"wrong token", map[string]string{"Authorization": "Bearer nope"}, initBody, http.StatusUnauthorized},
			{"not bearer", map[string]string{"Authorization": "Basic " + token}, initBody, http.StatusUnauthorized},
			{"foreign origin", map[string]string{"Authorization": "Bearer " + token, "Origin": "https://evil.example"}, initBody, http.StatusForbidden},
			{"oversized body", auth, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 70000) + `"}}`, http.StatusRequestEntityTooLarge},
			{"local origin", map[string]string{"Authorization": "Bearer " + token, "Origin": "http://localhost:6274"}, initBody, http.StatusOK},
			{"no origin", auth, initBody, http.StatusOK},
		}
		for _, tc := range cases {
			resp, body := post(t, mcpURL, tc.body, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate = %q", tc.name, resp.Header.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("malformed JSON-RPC", func(t *testing.T) {
		_, body := post(t, mcpURL, `{not json`, auth)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil || errCode(m) != -32700 {
			t.Errorf("malformed body: got %s, want a JSON-RPC parse error", body)
		}
		if resp, body := post(t, mcpURL, initBody, auth); resp.StatusCode != 200 || !strings.Contains(body, `"serverInfo"`) {
			t.Errorf("server stopped serving after malformed input: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("client", func(t *testing.T) {
		tr, err := transport.NewStreamableHTTP(mcpURL, transport.WithHTTPHeaders(map[string]string{
			"Authorization": "Bearer " + token, "X-Toolgate-Model": "test-model@1",
		}), transport.WithContinuousListening(), transport.WithHTTPLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		c, n := connect(t, tr)
		if got := mustCall(t, c, "up__echo", map[string]any{"text": "over http"}); got != "over http" {
			t.Errorf("echo = %q", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if res, err := callTool(ctx, c, "up__slow", map[string]any{"seconds": 0.3, "steps": 3}, "hp"); err != nil || res.IsError {
			t.Fatalf("slow: %v %+v", err, res)
		}
		toolgatetest.EventuallyWithin(t, "progress over HTTP", 5*time.Second, func() bool { return len(n.progress("hp")) >= 2 })
		before := n.count("notifications/tools/list_changed")
		mustCall(t, c, "up__add_tool", nil)
		toolgatetest.EventuallyWithin(t, "list_changed over HTTP", 10*time.Second, func() bool { return n.count("notifications/tools/list_changed") > before })
	})
}

// userAnswers is an agent's user answering every elicitation the same way.
type userAnswers struct{ asked chan string }

func (u userAnswers) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	u.asked <- req.Params.Message
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"branch": "main"}}}, nil
}

// TestServeRelaysUpstreamElicitation: an upstream's question during a call
// reaches the user of the agent over stdio, named as the upstream's, and
// the answer reaches the upstream.
func TestServeRelaysUpstreamElicitation(t *testing.T) {
	cfg, _ := opsConfig(t, allowRules, "", "")
	stderr := &toolgatetest.SyncBuffer{}
	user := userAnswers{asked: make(chan string, 1)}
	c, _ := connect(t, transport.NewStdioWithOptions(toolgateBin, nil, []string{"serve", "--config", cfg},
		transport.WithCommandStderrWriter(stderr)), client.WithElicitationHandler(user))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := callTool(ctx, c, "up__ask", nil, "")
	if err != nil {
		t.Fatalf("call: %v\n%s", err, stderr.String())
	}
	if got := resultText(res); res.IsError || got != "accept map[branch:main]" {
		t.Errorf("the upstream got %q (isError %v)", got, res.IsError)
	}
	select {
	case q := <-user.asked:
		if q != "[up] which branch?" {
			t.Errorf("the user was asked %q", q)
		}
	default:
		t.Error("the user was not asked")
	}
}

// TestWorkspaceLinks: the calls fenced off from the workspace's commands
// are those to a stdio server outside the sandbox (none set, or the none
// profile) and to an HTTP server on a loopback address, which the user
// started on this machine; not those to a remote one or the built-in
// tools. A sandboxed server's calls are fenced as commands. Of those
// outside, the servers started in the workspace or given it (their
// directory, an argument or an option's value, from the home too) are
// pointed at it.
func TestWorkspaceLinks(t *testing.T) {
	l := workspaceLinks("/home/u/ws", "/home/u", []tools.Upstream{
		{Name: "fs", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/home/u/ws"}},
		{Name: "fs-none", Command: "npx", Sandbox: sandbox.None},
		{Name: "fs-boxed", Command: "npx", Sandbox: "workspace-write"},
		{Name: "git", Command: "uvx", Args: []string{"mcp-server-git", "--repository=~/ws/sub"}},
		{Name: "here", Command: "x", Dir: "/home/u/ws"},
		{Name: "above", Command: "x", Dir: "/home/u", Args: []string{"/home/u/wsx", "ws"}},
		{Name: "local", URL: "http://localhost:8080/mcp"},
		{Name: "local4", URL: "http://127.0.0.2:8080/mcp"},
		{Name: "local6", URL: "http://[::1]:8080/mcp"},
		{Name: "dev", URL: "http://app.localhost/mcp"},
		{Name: "github", URL: "https://api.githubcopilot.com/mcp/"},
		{Name: "lan", URL: "http://10.0.0.5/mcp"},
		{Name: "workspace", Server: &mcpserver.MCPServer{}},
	})
	for what, got := range map[string][2][]string{
		"outside":   {l.Outside, {"fs", "fs-none", "git", "here", "above", "local", "local4", "local6", "dev"}},
		"sandboxed": {l.Sandboxed, {"fs-boxed"}},
		"pointed":   {l.Pointed, {"fs", "git", "here"}},
	} {
		if !slices.Equal(got[0], got[1]) {
			t.Errorf("%s: %v, want %v", what, got[0], got[1])
		}
	}
}
