package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// request sends a request and returns the line that answers it.
func (r *rawStdio) request(id int, method, params string) string {
	r.t.Helper()
	r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params))
	return string(r.nextRaw().raw)
}

// TestFidelityStdioE2E: over stdio, what an upstream sends reaches the
// agent as sent: an elicitation form's field order, a JSON-RPC error's code
// and data, a result's _meta; a task-only tool is listed and runs.
func TestFidelityStdioE2E(t *testing.T) {
	a := startRawStdioWith(t, fidelityConfig(t), `{"elicitation":{}}`)

	list := a.request(1, "tools/list", `{}`)
	if !strings.Contains(list, `"up__task_required"`) || !strings.Contains(list, `"up__task_optional"`) || strings.Contains(list, `"execution"`) {
		t.Errorf("tools/list: want both task tools, without execution:\n%s", list)
	}
	// The task-only tool runs (as a task, upstream); the optional one too.
	for i, want := range map[string]string{"up__task_required": "task", "up__task_optional": "sync"} {
		line := a.request(10, "tools/call", `{"name":"`+i+`","arguments":{}}`)
		if !strings.Contains(line, `"text":"`+want+`"`) || strings.Contains(line, `"isError":true`) {
			t.Errorf("%s: %s", i, line)
		}
	}

	// The form reaches the agent with its fields in the upstream's order.
	a.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up__form","arguments":{}}}`)
	ask := string(a.nextRaw().raw)
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
	if res := string(a.nextRaw().raw); !strings.Contains(res, `accept {\"alpha\":\"a\",\"mid\":true,\"zeta\":\"z\"}`) {
		t.Errorf("form result: %s", res)
	}

	// The upstream's JSON-RPC error, code and data, as it sent them.
	var e struct {
		Error struct {
			Code    int
			Message string
			Data    struct {
				Elicitations []struct{ URL, ElicitationID string }
			}
		}
	}
	line := a.request(3, "tools/call", `{"name":"up__url_needed","arguments":{}}`)
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Error.Code != -32042 || len(e.Error.Data.Elicitations) != 1 ||
		e.Error.Data.Elicitations[0].URL != "https://example.com/authorize" {
		t.Errorf("want JSON-RPC error -32042 with the upstream's data, got %s", line)
	}

	// _meta and structured content pass through.
	line = a.request(4, "tools/call", `{"name":"up__with_meta","arguments":{}}`)
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
