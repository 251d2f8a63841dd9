package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

// scanID runs an idScan over b, split at the given points.
func scanID(b []byte, splits ...int) (id string, method bool) {
	var s idScan
	prev := 0
	for _, at := range splits {
		if at > prev && at < len(b) {
			s.write(b[prev:at])
			prev = at
		}
	}
	s.write(b[prev:])
	return string(s.id), s.method
}

func TestIDScan(t *testing.T) {
	for _, c := range []struct {
		in, id string
		method bool
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}`, "7", false},
		{`{"result":{"content":[{"type":"text","text":"hi"}]},"jsonrpc":"2.0","id":7}`, "7", false},
		{`{"id":"a\"b\\","result":{}}`, `"a\"b\\"`, false},
		{` { "id" : -3.5e2 , "result" : 1 } `, "-3.5e2", false},
		{`{"result":{"id":9,"x":[{"id":8}]},"id":1}`, "1", false},
		{`{"result":{"id":9}}`, "", false},
		{`{"a":"id","b":"id:","c":"\"id\":5"}`, "", false},
		{`{"text":"\\\\","id":4}`, "4", false},
		{`{"text":"x\\\"id\":5,","id":6}`, "6", false},
		{`{"id":null,"result":1}`, "", false},
		{`{"id":{"x":1},"result":1}`, "", false},
		{`{"id":[1],"result":1}`, "", false},
		{`{"id":true}`, "", false},
		{`{"id":"` + strings.Repeat("x", maxIDLen) + `"}`, "", false},
		{`{"id":1,"id":2}`, "2", false},
		{`{"method":"notifications/message","params":{"id":3}}`, "", true},
		{`{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage","params":{}}`, "5", true},
		{`[{"id":1}]`, "", false},
	} {
		for _, split := range []int{0, 1, 5, 9, 14, 20} {
			id, method := scanID([]byte(c.in), split)
			if id != c.id || method != c.method {
				t.Errorf("scan %s split at %d: id %q method %v, want %q %v", c.in, split, id, method, c.id, c.method)
			}
		}
		// Byte by byte, so that every escape and quote straddles a write.
		var s idScan
		for i := range len(c.in) {
			s.write([]byte{c.in[i]})
		}
		if string(s.id) != c.id || s.method != c.method {
			t.Errorf("scan %s byte by byte: id %q method %v, want %q %v", c.in, s.id, s.method, c.id, c.method)
		}
	}
}

// FuzzIDScan holds the scan to encoding/json: for a JSON object, the id
// it finds is the top-level "id" member's value when that is a string
// or number, and method says whether "method" is a member. Keys written
// with escapes are not recognised (servers do not write them), so such
// inputs may find nothing, never something else.
func FuzzIDScan(f *testing.F) {
	f.Add([]byte(`{"result":{"content":[{"type":"text","text":"a\"b"}]},"jsonrpc":"2.0","id":7}`), uint16(3), uint16(40))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x\\","method":"m"}`), uint16(12), uint16(14))
	f.Add([]byte(`{"a":{"id":1},"id":[2],"b":"\"id\":3"}`), uint16(0), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, s1, s2 uint16) {
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		want := ""
		if v, ok := m["id"]; ok && len(v) <= maxIDLen && (v[0] == '"' || v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
			want = string(v)
		}
		_, wantMethod := m["method"]
		lo, hi := int(s1)%(len(b)+1), int(s2)%(len(b)+1)
		if lo > hi {
			lo, hi = hi, lo
		}
		id, method := scanID(b, lo, hi)
		escaped := bytes.IndexByte(b, '\\') >= 0
		if id != want && !(escaped && id == "") {
			t.Fatalf("scan %q (split %d, %d) found id %q, encoding/json %q", b, lo, hi, id, want)
		}
		if method != wantMethod && !(escaped && !method) {
			t.Fatalf("scan %q found method %v, encoding/json %v", b, method, wantMethod)
		}
	})
}

// limited reads input through a lineLimit of max bytes, delivered by r's
// chunking.
func limited(t *testing.T, input string, max int, sse bool, chunk func(io.Reader) io.Reader) (string, []string) {
	t.Helper()
	var dropped []string
	l := newLineLimit(chunk(strings.NewReader(input)), max, sse, "too large", func(id []byte, n int64) { dropped = append(dropped, string(id)) })
	out, err := io.ReadAll(l)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), dropped
}

func TestLineLimit(t *testing.T) {
	small := `{"jsonrpc":"2.0","id":1,"result":{}}`
	bigFirst := `{"jsonrpc":"2.0","id":2,"result":{"text":"` + strings.Repeat("a\\\"", 200) + `"}}`
	bigLast := `{"result":{"text":"` + strings.Repeat("b", 600) + `"},"jsonrpc":"2.0","id":"q"}`
	bigNote := `{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"` + strings.Repeat("c", 600) + `"}}`
	exact := `{"id":3,"result":"` + strings.Repeat("d", 100-len(`{"id":3,"result":""}`)) + `"}`
	input := strings.Join([]string{small, bigFirst, small, bigLast, bigNote, exact, small}, "\n") + "\n"
	reply := func(id string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":-32603,"message":"too large","data":` + tooLargeData + `}}`
	}
	chunkings := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"random":   func(r io.Reader) io.Reader { return &randReader{r: r, rnd: rand.New(rand.NewPCG(1, 2))} },
	}
	for name, chunk := range chunkings {
		out, dropped := limited(t, input, 100, false, chunk)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := []string{small, bigFirst[:100], reply("2"), small, bigLast[:100], reply(`"q"`), bigNote[:100], exact, small}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: got lines\n%s\nwant\n%s", name, strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		if strings.Join(dropped, ",") != `2,"q",` {
			t.Errorf("%s: dropped ids %q", name, dropped)
		}
	}

	// On an SSE stream the cut ends the event, and the reply is the data
	// of the event the stream's own blank line then ends.
	sse := "event: message\ndata: " + bigLast + "\n\nevent: message\ndata: " + small + "\n\n"
	out, _ := limited(t, sse, 100, true, iotest.OneByteReader)
	cut := ("data: " + bigLast)[:100-len("event: message")]
	want := "event: message\n" + cut + "\n\n" + "data: " + reply(`"q"`) + "\n\nevent: message\ndata: " + small + "\n\n"
	if out != want {
		t.Errorf("sse: got\n%q\nwant\n%q", out, want)
	}
}

// TestLineLimitPadding: a message whose JSON ends before the cut, padded
// with white space past max, reaches the client whole (it parses what it
// gets as that message), so nothing replaces it and no drop is reported;
// one with anything else before the cut is still answered for its id.
func TestLineLimitPadding(t *testing.T) {
	padded := `{"jsonrpc":"2.0","id":4,"result":{}}` + strings.Repeat(" ", 300)
	junk := `{"jsonrpc":"2.0","id":5,"result":{}} x` + strings.Repeat(" ", 300)
	request := `{"jsonrpc":"2.0","id":6,"method":"elicitation/create","params":{}}` + strings.Repeat("\t", 300)
	small := `{"jsonrpc":"2.0","id":1,"result":{}}`
	input := strings.Join([]string{padded, small, junk, request, small}, "\n") + "\n"
	for name, chunk := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
	} {
		out, dropped := limited(t, input, 100, false, chunk)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 6 || lines[0] != padded[:100] || lines[1] != small || lines[2] != junk[:100] ||
			!strings.Contains(lines[3], `"id":5,"error"`) || lines[4] != request[:100] || lines[5] != small {
			t.Errorf("%s: got lines\n%s", name, strings.Join(lines, "\n"))
		}
		if strings.Join(dropped, ",") != "5" {
			t.Errorf("%s: dropped ids %q, want only the one with junk before the cut", name, dropped)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Errorf("%s: the padded message does not parse as the client reads it: %v", name, err)
		}
	}

	sse := "event: message\ndata: " + padded + "\n\nevent: message\ndata: " + small + "\n\n"
	out, dropped := limited(t, sse, 100, true, iotest.OneByteReader)
	cut := ("data: " + padded)[:100-len("event: message")]
	if want := "event: message\n" + cut + "\n\nevent: message\ndata: " + small + "\n\n"; out != want || len(dropped) != 0 {
		t.Errorf("sse: got\n%q (dropped %q)\nwant\n%q", out, dropped, want)
	}
}

// TestLineLimitSSEEvents: on an SSE stream a message is an event, however
// many data lines it comes in. One over max in total is cut and answered
// for its id, wherever the id is; one of so many lines that the client's
// joining them would copy more than sseCopyFactor*max bytes is too; and
// one within both passes as it came, CRLF or LF.
func TestLineLimitSSEEvents(t *testing.T) {
	reply := func(id, msg string) string {
		return `data: {"jsonrpc":"2.0","id":` + id + `,"error":{"code":-32603,"message":"` + msg + `","data":` + tooLargeData + "}}\n\n"
	}
	small := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}\n\n"
	// The attack: 100-byte data lines that add up to far more than max.
	split := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"result\":{\"content\":[\n" +
		strings.Repeat("data: {\"type\":\"text\",\"text\":\""+strings.Repeat("A", 60)+"\"},\n", 40) +
		"data: {\"type\":\"text\",\"text\":\"END\"}]},\ndata: \"id\":\"s\"}\n\n"
	// Many one-byte lines: within max, but quadratic to join.
	many := "data: {\"id\":7,\"result\":\n" + strings.Repeat("data: \n", 3000) + "data: {}}\n\n"
	pretty := "id: 4\r\nevent: message\r\ndata: {\r\ndata:   \"jsonrpc\": \"2.0\",\r\ndata:   \"id\": 5,\r\ndata:   \"result\": {}\r\ndata: }\r\n\r\n"
	for name, chunk := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"random":   func(r io.Reader) io.Reader { return &randReader{r: r, rnd: rand.New(rand.NewPCG(3, 4))} },
	} {
		var dropped []string
		l := newLineLimit(chunk(strings.NewReader(split+small+many+pretty+small)), 1000, true, "too large", func(id []byte, n int64) { dropped = append(dropped, string(id)) })
		l.lines = "too many lines"
		b, err := io.ReadAll(l)
		if err != nil {
			t.Fatal(err)
		}
		out := string(b)
		cutSplit := split[:1000+strings.Count(split[:1000], "\n")]
		cutSplit = cutSplit[:strings.LastIndexByte(cutSplit, '\n')+1] // whole lines up to the one cut
		if !strings.HasPrefix(out, cutSplit) {
			t.Fatalf("%s: the split event's first lines were not passed on:\n%.300q", name, out)
		}
		rest := out[len(cutSplit):]
		i := strings.Index(rest, "\n\n")
		if i < 0 || i > 1000 {
			t.Fatalf("%s: the split event was not cut within max: %.300q", name, rest)
		}
		rest = rest[i+2:]
		want := reply(`"s"`, "too large") + small
		if !strings.HasPrefix(rest, want) {
			t.Fatalf("%s: after the cut, got\n%.400q\nwant\n%q", name, rest, want)
		}
		rest = rest[len(want):]
		// The many-line event: passed on until the copying passes its bound.
		if !strings.HasPrefix(rest, "data: {\"id\":7,\"result\":\ndata: \n") {
			t.Fatalf("%s: many lines: %.200q", name, rest)
		}
		j := strings.Index(rest, "\n\n")
		if j < 0 {
			t.Fatalf("%s: the many-line event was never ended", name)
		}
		if lines := strings.Count(rest[:j], "\n") + 1; lines >= 3000 {
			t.Fatalf("%s: all %d lines of the many-line event passed", name, lines)
		}
		rest = rest[j+2:]
		if want := reply("7", "too many lines") + pretty + small; rest != want {
			t.Fatalf("%s: after the many-line event, got\n%q\nwant\n%q", name, rest, want)
		}
		if strings.Join(dropped, ",") != `"s",7` {
			t.Errorf("%s: dropped %q", name, dropped)
		}
	}
}

// FuzzLineLimitSSE: a stream of SSE events each within max (and joined
// within the copy bound) passes unchanged, however it is chunked; and
// whatever the stream, no event passed on is longer than max bytes of
// lines, so the client never holds more.
func FuzzLineLimitSSE(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"id\":1}\n\ndata: a\ndata: b\r\n\r\n"), uint8(40), uint64(1))
	f.Add([]byte("data: "+strings.Repeat("x", 100)+"\n\ndata: {\"id\":2,\n\n"), uint8(30), uint64(2))
	f.Add([]byte(strings.Repeat("data:\n", 200)+"\n"), uint8(10), uint64(3))
	f.Fuzz(func(t *testing.T, in []byte, max uint8, seed uint64) {
		limit := int(max) + 1
		l := newLineLimit(&randReader{r: bytes.NewReader(in), rnd: rand.New(rand.NewPCG(seed, 0))}, limit, true, "too large", nil)
		out, err := io.ReadAll(l)
		if err != nil {
			t.Fatal(err)
		}
		if sseWithin(in, limit) && !bytes.Equal(out, in) {
			t.Fatalf("a stream within the limits changed:\n in %q\nout %q", in, out)
		}
		for _, ev := range sseEvents(out) {
			if ev.n > int64(limit) && !bytes.Contains(ev.text, []byte(tooLargeData)) {
				t.Fatalf("an event of %d bytes of lines (max %d) passed: %q", ev.n, limit, ev.text)
			}
		}
	})
}

type sseEvent struct {
	text   []byte
	n      int64 // bytes of its lines, without line ends
	copied int64 // bytes a client copies joining its lines
}

// sseEvents splits an SSE stream into events at blank lines (LF or CRLF),
// as a client reads it.
func sseEvents(b []byte) []sseEvent {
	var evs []sseEvent
	var cur sseEvent
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if i >= 0 && (len(line) == 0 || string(line) == "\r") {
			evs = append(evs, cur)
			cur = sseEvent{}
			continue
		}
		if i >= 0 {
			cur.copied += cur.n
		}
		cur.n += int64(len(line))
		cur.text = append(append(cur.text, line...), '\n')
	}
	if cur.n > 0 {
		evs = append(evs, cur)
	}
	return evs
}

// sseWithin says whether every event of b is within limit and its lines
// within the copy bound.
func sseWithin(b []byte, limit int) bool {
	for _, ev := range sseEvents(b) {
		if ev.n > int64(limit) || ev.copied > sseCopyFactor*int64(limit) {
			return false
		}
	}
	return true
}

type randReader struct {
	r   io.Reader
	rnd *rand.Rand
}

func (r *randReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1+r.rnd.IntN(len(p))]
	}
	return r.r.Read(p)
}

// TestMaxMessageUpstream: a response over MaxMessage fails its call with
// a message saying so, from a stdio server and an HTTP one (a JSON body
// and an SSE stream), and the same connection serves the next call.
func TestMaxMessageUpstream(t *testing.T) {
	s := server.NewMCPServer("big", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(req.GetString("text", "")), nil
	})
	// A notification first makes mcp-go answer the POST with an SSE stream.
	s.AddTool(mcp.NewTool("streamed", mcp.WithString("text")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if err := s.SendNotificationToClient(ctx, "notifications/message", map[string]any{"level": "info", "data": "starting"}); err != nil {
			return nil, err
		}
		return mcp.NewToolResultText(req.GetString("text", "")), nil
	})
	// As many text items as the text has bytes, after a notification.
	s.AddTool(mcp.NewTool("items", mcp.WithString("text")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if err := s.SendNotificationToClient(ctx, "notifications/message", map[string]any{"level": "info", "data": "starting"}); err != nil {
			return nil, err
		}
		text := req.GetString("text", "")
		if len(text) < 100 {
			return mcp.NewToolResultText(text), nil
		}
		res := &mcp.CallToolResult{}
		for range len(text) / 50 {
			res.Content = append(res.Content, mcp.NewTextContent(strings.Repeat("i", 20)))
		}
		return res, nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(srv.Close)
	// The same server, with each SSE event's data split into a line per
	// content item: every line is short, the event is not.
	split := httptest.NewServer(toolgatetest.SplitSSEData(server.NewStreamableHTTPServer(s)))
	t.Cleanup(split.Close)

	const max = 64 << 10
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "up", Command: upstreamBin, MaxMessage: max},
		{Name: "r", URL: srv.URL + "/mcp", MaxMessage: max},
		{Name: "split", URL: split.URL + "/mcp", MaxMessage: max},
	}})
	big := strings.Repeat("z", max)
	for _, tool := range []string{"up__echo", "r__echo", "r__streamed", "split__items"} {
		t.Run(tool, func(t *testing.T) {
			toolgatetest.Eventually(t, tool+" listed", func() bool { _, ok := c.Lookup(tool); return ok })
			pid := func() any { return nil }
			if tool == "up__echo" {
				pid = func() any { return stats(t, c)["pid"] }
			}
			before := pid()
			res, err := c.Forward(context.Background(), call(c, tool, map[string]any{"text": big}))
			if err == nil {
				t.Fatalf("a %d-byte answer passed a %d-byte limit: %d bytes of text", len(big), max, len(text(res)))
			}
			if !strings.Contains(err.Error(), "max_message_bytes") {
				t.Errorf("error %q does not say the answer was too large", err)
			}
			// The call's own error, which the agent's model reads, not the
			// upstream's JSON-RPC error passed on.
			if _, ok := errors.AsType[*toolgate.RPCError](err); ok {
				t.Errorf("error %q is a JSON-RPC error", err)
			}
			if res, err := c.Forward(context.Background(), call(c, tool, map[string]any{"text": "next"})); err != nil || text(res) != "next" {
				t.Fatalf("the next call: %q, %v", text(res), err)
			}
			if after := pid(); after != before {
				t.Errorf("the server was restarted: pid %v, then %v", before, after)
			}
		})
	}
}

// BenchmarkLineLimit: what the limit costs an upstream's stream, for
// small answers (an echo) and a large one (a file read, mostly string
// content, which IndexByte skips).
func BenchmarkLineLimit(b *testing.B) {
	for _, c := range []struct {
		name string
		line string
	}{
		{"echo", `{"jsonrpc":"2.0","id":"toolgate-call-12","result":{"content":[{"type":"text","text":"hello, toolgate"}]}}`},
		{"1MB", `{"result":{"content":[{"type":"text","text":"` + strings.Repeat(`0123456789\n`, 1<<20/12) + `"}]},"jsonrpc":"2.0","id":7}`},
	} {
		in := []byte(strings.Repeat(c.line+"\n", max(1, 64<<10/len(c.line))))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			r := bytes.NewReader(in)
			l := newLineLimit(r, DefaultMaxMessage, false, "too large", nil)
			buf := make([]byte, 32<<10)
			for b.Loop() {
				r.Reset(in)
				l.err = nil
				for {
					if _, err := l.Read(buf); err != nil {
						break
					}
				}
			}
		})
	}
}

// TestMaxMessageServerRequest: a request the server makes that is over
// the limit (an elicitation with a huge message) is answered with an
// error naming the limit, so the server's tool goes on at once, and the
// next call is served.
func TestMaxMessageServerRequest(t *testing.T) {
	// The same tool over streamable HTTP, where the request comes as an
	// SSE event on the call's response.
	s := server.NewMCPServer("big", "1", server.WithToolCapabilities(true), server.WithElicitation())
	s.AddTool(mcp.NewTool("ask_as", mcp.WithString("message")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		_, err := s.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{Message: req.GetString("message", ""),
			RequestedSchema: map[string]any{"type": "object"}}})
		if err != nil {
			return mcp.NewToolResultError("no answer: " + err.Error()), nil
		}
		return mcp.NewToolResultText("answered"), nil
	})
	s.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(req.GetString("text", "")), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(srv.Close)

	const max = 64 << 10
	c := startCatalog(t, Options{Upstreams: []Upstream{
		{Name: "up", Command: upstreamBin, MaxMessage: max, Timeout: 20 * time.Second},
		{Name: "r", URL: srv.URL + "/mcp", MaxMessage: max, Timeout: 20 * time.Second},
	}})
	for _, up := range []string{"up", "r"} {
		t.Run(up, func(t *testing.T) {
			toolgatetest.Eventually(t, up+"__ask_as listed", func() bool { _, ok := c.Lookup(up + "__ask_as"); return ok })
			res, err := c.Forward(context.Background(), call(c, up+"__ask_as", map[string]any{"message": strings.Repeat("q", max)}))
			if err != nil {
				t.Fatal(err)
			}
			if got := text(res); !res.IsError || !strings.Contains(got, "no answer:") || !strings.Contains(got, "max_message_bytes") {
				t.Fatalf("the server's tool got %q (error %v), not an error naming the limit", got, res.IsError)
			}
			if res, err := c.Forward(context.Background(), call(c, up+"__echo", map[string]any{"text": "next"})); err != nil || text(res) != "next" {
				t.Fatalf("the next call: %q, %v", text(res), err)
			}
		})
	}
}
