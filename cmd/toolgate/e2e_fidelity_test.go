package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fidelityConfig is a config with testdata/upstream --fidelity as server
// "up", allow-everything rules and the audit log in a temporary directory.
func fidelityConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(allow, []byte("version: 1\nlabel: fidelity\ndefault: allow\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, fmt.Sprintf("servers:\n  up: {command: %q, args: [--fidelity]}\nworkspace: {enabled: false}\nrules: {file: %q}\naudit: {path: %q}\n",
		upstreamBin, allow, filepath.Join(dir, "audit.db")))
}

// rawAgent speaks JSON-RPC lines to a toolgate over stdio, so the test sees
// the bytes toolgate writes (key order included).
type rawAgent struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Reader
	id  int
}

func startRawAgent(t *testing.T, cfg string, capabilities string) *rawAgent {
	t.Helper()
	cmd := exec.Command(toolgateBin, "serve", "--config", cfg)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("toolgate stderr:\n%s", stderr.String())
		}
	})
	a := &rawAgent{t: t, in: in, out: bufio.NewReader(out)}
	a.request("initialize", `{"protocolVersion":"2025-11-25","capabilities":`+capabilities+`,"clientInfo":{"name":"raw-agent","version":"1"}}`)
	a.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return a
}

func (a *rawAgent) send(line string) {
	a.t.Helper()
	if _, err := io.WriteString(a.in, line+"\n"); err != nil {
		a.t.Fatal(err)
	}
}

// read returns the next line toolgate writes that is not a notification.
func (a *rawAgent) read() string {
	a.t.Helper()
	type result struct {
		line string
		err  error
	}
	for {
		ch := make(chan result, 1)
		go func() { l, err := a.out.ReadString('\n'); ch <- result{l, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				a.t.Fatalf("reading from toolgate: %v", r.err)
			}
			if strings.Contains(r.line, `"id"`) {
				return r.line
			}
		case <-time.After(20 * time.Second):
			a.t.Fatal("toolgate wrote nothing for 20s")
		}
	}
}

// request sends a request and returns the line that answers it.
func (a *rawAgent) request(method, params string) string {
	a.t.Helper()
	a.id++
	a.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, a.id, method, params))
	return a.read()
}

// TestFidelityStdioE2E: over stdio, what an upstream sends reaches the
// agent as sent: an elicitation form's field order, a JSON-RPC error's code
// and data, a result's _meta; a task-only tool is not listed.
func TestFidelityStdioE2E(t *testing.T) {
	a := startRawAgent(t, fidelityConfig(t), `{"elicitation":{}}`)

	list := a.request("tools/list", `{}`)
	if strings.Contains(list, `"up__task_required"`) || !strings.Contains(list, `"up__task_optional"`) || strings.Contains(list, `"execution"`) {
		t.Errorf("tools/list: want up__task_optional without execution and no up__task_required:\n%s", list)
	}

	// The form reaches the agent with its fields in the upstream's order.
	a.id++
	a.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"up__form","arguments":{}}}`, a.id))
	ask := a.read()
	var q struct {
		ID     json.RawMessage
		Method string
		Params struct{ RequestedSchema json.RawMessage }
	}
	if err := json.Unmarshal([]byte(ask), &q); err != nil || q.Method != "elicitation/create" {
		t.Fatalf("want an elicitation request, got %s", ask)
	}
	s := string(q.Params.RequestedSchema)
	if z, al, m := strings.Index(s, `"zeta"`), strings.Index(s, `"alpha"`), strings.Index(s, `"mid"`); !(z >= 0 && z < al && al < m) {
		t.Errorf("form fields reordered: %s", s)
	}
	a.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"action":"accept","content":{"zeta":"z","alpha":"a","mid":true}}}`, q.ID))
	if res := a.read(); !strings.Contains(res, `accept {\"alpha\":\"a\",\"mid\":true,\"zeta\":\"z\"}`) {
		t.Errorf("form result: %s", res)
	}

	// The upstream's JSON-RPC error, code and data, as it sent them.
	var e struct {
		Error struct {
			Code    int
			Message string
			Data    struct{ Elicitations []struct{ URL, ElicitationID string } }
		}
	}
	line := a.request("tools/call", `{"name":"up__url_needed","arguments":{}}`)
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Error.Code != -32042 || len(e.Error.Data.Elicitations) != 1 ||
		e.Error.Data.Elicitations[0].URL != "https://example.com/authorize" {
		t.Errorf("want JSON-RPC error -32042 with the upstream's data, got %s", line)
	}

	// _meta and structured content pass through.
	line = a.request("tools/call", `{"name":"up__with_meta","arguments":{}}`)
	var r struct {
		Result struct {
			Meta              map[string]any `json:"_meta"`
			StructuredContent map[string]any
		}
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.Result.Meta["com.example/trace"] != "t-1" || r.Result.StructuredContent["n"] != 1.0 {
		t.Errorf("with_meta result lost _meta or structured content: %s", line)
	}
}

// TestFidelityHTTPE2E: over HTTP the upstream's -32042 error keeps its code
// and data (mcp-go's server lets a handler return that one typed error),
// and _meta passes through.
func TestFidelityHTTPE2E(t *testing.T) {
	base := startHTTP(t, fidelityConfig(t), "--auth-token", "tok")
	hdr := map[string]string{"Authorization": "Bearer tok"}
	resp, _ := post(t, base+"/mcp", initBody, hdr)
	hdr["Mcp-Session-Id"] = resp.Header.Get("Mcp-Session-Id")
	hdr["Mcp-Protocol-Version"] = "2025-06-18"
	post(t, base+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr)

	_, body := post(t, base+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up__url_needed","arguments":{}}}`, hdr)
	body = sseData(body)
	var e struct {
		Error struct {
			Code int
			Data struct{ Elicitations []struct{ URL string } }
		}
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != -32042 || len(e.Error.Data.Elicitations) != 1 {
		t.Errorf("want JSON-RPC error -32042 with the upstream's data, got %s", body)
	}
	_, body = post(t, base+"/mcp", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__with_meta","arguments":{}}}`, hdr)
	if body = sseData(body); !strings.Contains(body, `"_meta":{"com.example/trace":"t-1"}`) {
		t.Errorf("with_meta over HTTP lost _meta: %s", body)
	}
}

// sseData returns the data of an SSE body's last event, or body if it is
// plain JSON.
func sseData(body string) string {
	var data string
	for _, l := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(l, "data: "); ok {
			data = d
		}
	}
	if data == "" {
		return body
	}
	return data
}
