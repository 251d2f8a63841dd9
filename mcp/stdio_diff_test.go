package mcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// stdioLines are agent lines of every kind ServeStdio dispatches on its
// own: requests (tools/call and others, any id type), notifications,
// answers to requests toolgate never sent, and lines that are not messages.
var stdioLines = []string{
	`{"jsonrpc":"2.0","id":"list","method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":2,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi"}}}`,
	`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}`,
	`{"jsonrpc":"2.0","id":5.5,"method":"tools/call","params":{"name":"up__free","arguments":{"x":[1,"\u2028"]}}}`,
	`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":6,"method":"no/such/method"}`,
	`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`,
	`{"jsonrpc":"2.0","method":"notifications/unknown"}`,
	`{"jsonrpc":"2.0","id":7,"method":"logging/setLevel","params":{"level":"debug"}}`,
	`{"jsonrpc":"2.0","id":99,"result":{}}`,
	`{"jsonrpc":"2.0","id":98,"error":{"code":-1,"message":"no"}}`,
	`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`,
	`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"up__echo","task":{"ttl":1000}}}`,
	`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":[1]}`,
	`{"jsonrpc":"2.0","id":10,"method":"resources/list"}`,
	`[1,2]`,
	`"text"`,
	`{"jsonrpc":"2.0","id":11`,
	``,
	`   `,
	`{}`,
}

// stdioSession ids differ by design (see newStdioSessionID); mcp-go's
// StdioServer has one constant session.
var stdioSessionIDs = regexp.MustCompile(`stdio-[0-9a-f]{12}`)

// TestServeStdioLikeStdioServer holds ServeStdio's own reader pool and
// dispatch to mcp-go's StdioServer: every agent line gets the same answers
// (or none) from both, on servers alike but for their stdio front.
func TestServeStdioLikeStdioServer(t *testing.T) {
	compareStdio(t, stdioLines)
}

func FuzzServeStdio(f *testing.F) {
	f.Add(strings.Join(stdioLines, "\n"))
	for _, l := range stdioLines {
		f.Add(l)
	}
	for _, l := range fastCallLines {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, input string) {
		compareStdio(t, strings.Split(input, "\n"))
	})
}

// compareStdio sends an initialize, then lines, to ServeStdio and to
// mcp-go's StdioServer, each on a fresh server, and fails if their answers
// differ. (The initialize comes first because StdioServer's one session
// is global to the process and keeps the last client's info.)
func compareStdio(t *testing.T, lines []string) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, `"sync-`) || strings.Contains(l, `"init-`) {
			return // would be taken for the transcript's own requests
		}
	}
	lines = append([]string{
		`{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"agent","version":"9"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	}, lines...)
	own := stdioTranscript(t, func(ctx context.Context, in io.Reader, out io.Writer) error {
		srv, _ := fastCallServer(t)
		return srv.ServeStdio(ctx, in, out)
	}, lines)
	for i := range own {
		own[i] = stdioSessionIDs.ReplaceAllString(own[i], "stdio")
	}
	theirs := stdioTranscript(t, func(ctx context.Context, in io.Reader, out io.Writer) error {
		srv, _ := fastCallServer(t)
		return server.NewStdioServer(srv.mcp).Listen(ctx, in, out)
	}, lines)
	if !slices.Equal(own, theirs) {
		t.Errorf("ServeStdio and mcp-go's StdioServer answer %q differently:\n ServeStdio:\n  %s\n StdioServer:\n  %s",
			lines, strings.Join(own, "\n  "), strings.Join(theirs, "\n  "))
	}
}

// stdioTranscript serves lines through serve and returns every line written
// back, in a canonical order (requests are served concurrently). After each
// line it sends a ping and reads until that ping's answer and, for a
// request, the request's own answer.
func stdioTranscript(t *testing.T, serve func(ctx context.Context, in io.Reader, out io.Writer) error, lines []string) []string {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, inR, outW)
		_ = outW.Close()
	}()
	got := make(chan string)
	go func() {
		defer close(got)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			got <- sc.Text()
		}
	}()

	var out []string
	seen := map[string]bool{} // canonical ids answered
	waitFor := func(ids ...string) {
		timeout := time.After(10 * time.Second)
		for slices.ContainsFunc(ids, func(id string) bool { return !seen[id] }) {
			select {
			case l, ok := <-got:
				if !ok {
					t.Fatalf("the output ended while waiting for %v", ids)
				}
				var m struct {
					ID json.RawMessage `json:"id"`
				}
				_ = json.Unmarshal([]byte(l), &m)
				seen[canonicalID(m.ID)] = true
				if !strings.Contains(l, `"sync-`) {
					out = append(out, l)
				}
			case <-timeout:
				t.Fatalf("no answer for %v", ids)
			}
		}
	}
	for i, l := range lines {
		ping := fmt.Sprintf(`"sync-%d"`, i)
		if _, err := io.WriteString(inW, l+"\n"+`{"jsonrpc":"2.0","id":`+ping+`,"method":"ping"}`+"\n"); err != nil {
			t.Fatal(err)
		}
		want := []string{ping}
		var req struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		if json.Unmarshal([]byte(l), &req) == nil && req.Method != "" && canonicalID(req.ID) != "null" && isScalar(req.ID) {
			want = append(want, canonicalID(req.ID))
		}
		waitFor(want...)
	}
	_ = inW.Close()
	for l := range got {
		out = append(out, l)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	slices.Sort(out)
	return out
}

// canonicalID is a JSON-RPC id as JSON text, numbers in Go's float form.
func canonicalID(raw json.RawMessage) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func isScalar(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}
