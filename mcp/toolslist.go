package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/toolgate/toolgate/mcp/agent"
)

// mcp-go's mcp.Tool always marshals an "annotations" member, so a tool its
// upstream listed without one would reach agents with "annotations": {}.
// The tools/list responses are rewritten on their way out instead (the
// stdio loop, and unannotatedHTTP for streamable HTTP): each tool whose
// upstream sent no annotations (tools.Tool.Unannotated) loses the member
// mcp-go added; every other byte of the entry stays as mcp-go wrote it.

// unannotated returns the exposed tools listed without annotations by
// their upstreams; nil when there are none.
func (s *Server) unannotated() map[string]bool {
	m := s.exposed.Load()
	if m == nil {
		return nil
	}
	var out map[string]bool
	for name, e := range *m {
		if e.tool.Unannotated {
			if out == nil {
				out = map[string]bool{}
			}
			out[name] = true
		}
	}
	return out
}

// dropAddedAnnotations returns the JSON-RPC message msg with the
// annotations of the bare tools removed from its result's tools, or msg
// itself when it is not a tools/list result or holds none of them.
func dropAddedAnnotations(msg []byte, bare map[string]bool) []byte {
	var top map[string]json.RawMessage
	if len(bare) == 0 || json.Unmarshal(msg, &top) != nil || top["result"] == nil {
		return msg
	}
	var result map[string]json.RawMessage
	var list []json.RawMessage
	if json.Unmarshal(top["result"], &result) != nil || result["tools"] == nil || json.Unmarshal(result["tools"], &list) != nil {
		return msg
	}
	changed := false
	for i, raw := range list {
		var def map[string]json.RawMessage
		if json.Unmarshal(raw, &def) != nil {
			continue
		}
		var name string
		_ = json.Unmarshal(def["name"], &name)
		if !bare[name] || def["annotations"] == nil {
			continue
		}
		delete(def, "annotations")
		if b, err := json.Marshal(def); err == nil {
			list[i], changed = b, true
		}
	}
	if !changed {
		return msg
	}
	var err error
	if result["tools"], err = json.Marshal(list); err != nil {
		return msg
	}
	if top["result"], err = json.Marshal(result); err != nil {
		return msg
	}
	out, err := json.Marshal(top)
	if err != nil {
		return msg
	}
	return out
}

// listResponse reports whether resp (from mcp-go's HandleMessage) answers
// tools/list.
func listResponse(resp mcpgo.JSONRPCMessage) bool {
	r, ok := resp.(mcpgo.JSONRPCResponse)
	if !ok {
		return false
	}
	switch r.Result.(type) {
	case mcpgo.ListToolsResult, *mcpgo.ListToolsResult:
		return true
	}
	return false
}

// unannotatedHTTP wraps the streamable HTTP handler: a POSTed tools/list
// gets its response (JSON, or an SSE stream) through dropAddedAnnotations.
// Other requests pass untouched.
func (s *Server) unannotatedHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bare := s.unannotated()
		if r.Method != http.MethodPost || r.Body == nil || len(bare) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if parseMessage(requestBytes(r)).Method != mcpgo.MethodToolsList {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		out := rec.body.Bytes()
		if strings.HasPrefix(rec.header.Get("Content-Type"), "text/event-stream") {
			lines := bytes.Split(out, []byte("\n"))
			for i, l := range lines {
				if d, ok := bytes.CutPrefix(l, []byte("data: ")); ok {
					lines[i] = append([]byte("data: "), dropAddedAnnotations(d, bare)...)
				}
			}
			out = bytes.Join(lines, []byte("\n"))
		} else {
			out = dropAddedAnnotations(bytes.TrimSpace(out), bare)
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.status)
		_, _ = w.Write(out)
	})
}

// bufferedResponse holds a response until the handler is done. Flush does
// nothing: a tools/list response is one message.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Flush()                      {}

// hideEliciting is the server's tool filter: an agent whose client cannot
// answer elicitation (it did not declare the capability, or its transport
// cannot send requests) is not shown the tools seen eliciting
// (tools.Tool.Elicits), which would fail for it. mcp-go applies it to
// tools/list and to tools/call.
func (s *Server) hideEliciting(ctx context.Context, ts []mcpgo.Tool) []mcpgo.Tool {
	if agent.CanElicit(ctx) == nil {
		return ts
	}
	hidden := func(t mcpgo.Tool) bool {
		e := s.lookup(t.Name)
		return e != nil && e.tool.Elicits
	}
	if !slices.ContainsFunc(ts, hidden) {
		return ts // the common case, and every tools/call of a shown tool: no copy
	}
	return slices.DeleteFunc(slices.Clone(ts), hidden)
}
