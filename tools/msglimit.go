package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// DefaultMaxMessage is the largest message an upstream may send, when
// Upstream.MaxMessage is 0: a result an agent can use is far smaller,
// while a client decodes a message whole, several copies at once, so one
// unbounded result (a huge file read) could exhaust toolgate's memory
// and take every session down with it.
const DefaultMaxMessage = 8 << 20

// lineLimit passes an upstream's messages on while they are at most max
// bytes long: one per line on stdio, one per event on an SSE stream. A
// longer message is cut where it passes max and ended there, so the
// client drops what it has as malformed; the rest is skipped, and what
// replaces it is a JSON-RPC error answering the message's id, so the one
// call fails with a message saying why while the connection and every
// other call go on. A request the server makes (it has a method and an
// id) is replaced by one that the client answers with an error at once;
// a message without a top-level id (a notification) is only dropped. The
// id is found by scanning every message as it passes, since servers put
// it first (mcp-go) or last (the TypeScript SDK); the client holds at
// most max bytes of a dropped message. A message whose JSON value ends
// before the cut, with only white space after it up to there (padding),
// reaches the client whole: nothing replaces it, and it is not a drop.
type lineLimit struct {
	r      io.Reader
	max    int
	sse    bool                     // an SSE stream (handleSSE)
	reason string                   // the error message of a reply
	lines  string                   // the error message of an SSE event of too many lines
	onDrop func(id []byte, n int64) // told of each dropped message
	buf    []byte                   // read from r, not yet handled
	in     []byte                   // buf's unhandled part
	out    []byte                   // to return before handling more
	obuf   []byte                   // out's buffer, kept between lines
	err    error                    // r's error, returned once in and out are empty
	n      int64                    // the current message's length so far
	over   bool                     // the current message passed max and is being skipped
	whole  bool                     // what the client got of it, cut, is still the whole message
	scan   idScan

	// SSE only: the current line's length so far, its first byte, and
	// how it is scanned (only the value of a data field is: skip is what
	// is left of its "data: ", noScan marks another field); the bytes the
	// client has copied joining the event's lines; why it was cut.
	lineN  int64
	first  byte
	skip   int
	noScan bool
	copied int64
	cause  string
}

// sseCopyFactor bounds, as a multiple of max, the bytes a client copies
// joining the data lines of one SSE event: mcp-go copies the event's data
// so far for each line, so an event of many short lines would cost time
// quadratic in its size. A server writes a message as one data line; a
// pretty-printed one of a few thousand lines stays well within this.
const sseCopyFactor = 64

func newLineLimit(r io.Reader, max int, sse bool, reason string, onDrop func([]byte, int64)) *lineLimit {
	return &lineLimit{r: r, max: max, sse: sse, reason: reason, onDrop: onDrop, buf: make([]byte, 32<<10)}
}

func (l *lineLimit) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if len(l.in) == 0 {
			if l.err != nil {
				return 0, l.err
			}
			var n int
			n, l.err = l.r.Read(l.buf)
			l.in = l.buf[:n]
			if n == 0 && l.err == nil {
				continue
			}
		}
		if l.sse {
			l.out = l.handleSSE(l.obuf[:0])
		} else {
			l.out = l.handle(l.obuf[:0])
		}
		l.obuf = l.out[:0]
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

// handle appends l.in to out, cutting and replacing over-long lines.
func (l *lineLimit) handle(out []byte) []byte {
	for len(l.in) > 0 {
		i := bytes.IndexByte(l.in, '\n')
		line := l.in
		if i >= 0 {
			line = l.in[:i]
		}
		if l.over {
			l.scan.write(line)
			l.n += int64(len(line))
			if i < 0 {
				l.in = nil
				return out
			}
			l.in = l.in[i+1:]
			out = append(out, l.reply()...)
			l.endLine()
			continue
		}
		if room := int64(l.max) - l.n; int64(len(line)) > room {
			l.scan.write(line[:room])
			out = append(out, line[:room]...)
			out = append(out, '\n')
			l.n += room
			l.in = l.in[room:]
			l.over, l.whole = true, l.scan.whole()
			continue
		}
		l.scan.write(line)
		if i < 0 {
			out = append(out, line...)
			l.n += int64(len(line))
			l.in = nil
			return out
		}
		out = append(out, l.in[:i+1]...)
		l.in = l.in[i+1:]
		l.endLine()
	}
	return out
}

// handleSSE is handle for an SSE stream. A message is an event: its data
// lines, which the client joins, up to the blank line that ends it. The
// event counts whole, and an event whose lines would make the client copy
// more than sseCopyFactor*max bytes joining them is cut as well. What
// replaces a dropped event is an event of its own.
func (l *lineLimit) handleSSE(out []byte) []byte {
	for len(l.in) > 0 {
		i := bytes.IndexByte(l.in, '\n')
		seg := l.in
		if i >= 0 {
			seg = l.in[:i]
		}
		if l.lineN == 0 && len(seg) > 0 {
			l.startLine(seg)
		}
		total := l.lineN + int64(len(seg))
		blank := i >= 0 && (total == 0 || total == 1 && l.first == '\r')
		if l.over {
			l.scanSSE(seg)
			l.n += int64(len(seg))
			if i < 0 {
				l.lineN, l.in = total, nil
				return out
			}
			l.in, l.lineN = l.in[i+1:], 0
			if blank {
				if r := l.reply(); r != nil {
					out = append(append(out, "data: "...), r...)
					out = append(out, '\n')
				}
				l.endEvent()
			}
			continue
		}
		if blank {
			out = append(out, l.in[:i+1]...)
			l.in, l.lineN = l.in[i+1:], 0
			l.endEvent()
			continue
		}
		if room := max(int64(l.max)-l.n, 0); int64(len(seg)) > room {
			l.scanSSE(seg[:room])
			out = append(out, seg[:room]...)
			out = append(out, "\n\n"...)
			l.n += room
			l.lineN += room
			l.in = l.in[room:]
			l.over, l.whole = true, l.scan.whole()
			continue
		}
		before := l.n - l.lineN
		l.scanSSE(seg)
		l.n += int64(len(seg))
		if i < 0 {
			out = append(out, seg...)
			l.lineN, l.in = total, nil
			return out
		}
		out = append(out, seg...)
		l.in, l.lineN = l.in[i+1:], 0
		// The client joins this line to the event so far, copying it.
		if l.copied += before; l.copied > sseCopyFactor*int64(l.max) {
			out = append(out, "\n\n"...)
			l.over, l.whole, l.cause = true, l.scan.whole(), l.lines
			continue
		}
		out = append(out, '\n')
	}
	return out
}

// startLine notes how the SSE line starting with seg is scanned.
func (l *lineLimit) startLine(seg []byte) {
	l.first, l.skip, l.noScan = seg[0], 0, false
	switch {
	case bytes.HasPrefix(seg, []byte("data:")):
		l.skip = len("data:")
		if len(seg) > l.skip && seg[l.skip] == ' ' {
			l.skip++
		}
	case bytes.HasPrefix(seg, []byte("event:")), bytes.HasPrefix(seg, []byte("id:")),
		bytes.HasPrefix(seg, []byte("retry:")), seg[0] == ':':
		l.noScan = true
	}
}

// scanSSE scans seg, the next bytes of the current SSE line, if they are
// part of a data field's value.
func (l *lineLimit) scanSSE(seg []byte) {
	if l.noScan {
		return
	}
	k := min(l.skip, len(seg))
	l.skip -= k
	l.scan.write(seg[k:])
}

func (l *lineLimit) endEvent() {
	l.endLine()
	l.copied, l.cause = 0, ""
}

// reply is what replaces a dropped message: an error answering its id,
// or nothing.
func (l *lineLimit) reply() []byte {
	if l.whole {
		return nil
	}
	id := l.scan.id
	if l.onDrop != nil {
		l.onDrop(id, l.n)
	}
	if len(id) == 0 {
		return nil
	}
	if l.scan.method {
		// A request the client knows no method of takes its place: the
		// client answers it with an error naming the method, so the server
		// stops waiting for an answer instead of waiting out its timeout.
		m, _ := json.Marshal(fmt.Sprintf("toolgate: a request of more than %d bytes, the limit on what this server may send (max_message_bytes), was dropped", l.max))
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":%s}`+"\n", id, m)
	}
	reason := l.reason
	if l.cause != "" {
		reason = l.cause
	}
	msg, _ := json.Marshal(reason)
	var b []byte
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":{"code":-32603,"message":`...)
	b = append(b, msg...)
	b = append(b, `,"data":`...)
	b = append(b, tooLargeData...)
	return append(b, "}}\n"...)
}

func (l *lineLimit) endLine() {
	l.n, l.over, l.whole = 0, false, false
	l.scan = idScan{key: l.scan.key[:0], val: l.scan.val[:0], id: l.scan.id[:0]}
}

// idScan finds, in a stream of bytes holding one JSON object, the raw
// value of its top-level "id" member (when it is a string or number of a
// sane length) and whether it has a top-level "method". It never holds
// more than a few bytes: string content is skipped with IndexByte.
type idScan struct {
	depth    int
	inStr    bool
	esc      bool   // inside a string, the previous byte was an unescaped backslash
	key      []byte // a depth-1 string, while it may be a key of interest
	keyLong  bool   // that string is longer than any key of interest
	afterStr bool   // a depth-1 string just ended: a ':' next makes it a key
	val      []byte // the id's value, while it is read
	inVal    bool
	valBad   bool   // the id's value is not a short scalar
	id       []byte // empty: none found
	method   bool
	ended    bool // the top-level value closed
	trailing bool // a byte other than white space came after it
}

// whole says whether what was scanned is one closed JSON value followed
// by white space only: the client parses that as the whole message, so a
// message cut after it (padding past the limit) was delivered, not dropped.
func (s *idScan) whole() bool { return s.ended && !s.trailing }

const maxIDLen = 128

func (s *idScan) write(b []byte) {
	for len(b) > 0 {
		if s.inStr {
			b = s.str(b)
			continue
		}
		c := b[0]
		b = b[1:]
		if s.ended && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			s.trailing = true
		}
		if s.inVal {
			switch {
			case s.depth == 1 && (c == ',' || c == '}'):
				s.endVal()
			case c == '{' || c == '[':
				s.valBad = true
			default:
				s.valByte(c)
			}
		}
		switch c {
		case '"':
			s.inStr, s.esc = true, false
			s.afterStr = false
			if s.depth == 1 {
				s.key, s.keyLong = s.key[:0], false
			}
		case ':':
			if s.depth == 1 && s.afterStr && !s.keyLong {
				switch string(s.key) {
				case "id":
					s.inVal, s.valBad, s.val = true, false, s.val[:0]
				case "method":
					s.method = true
				}
			}
			s.afterStr = false
		case '{', '[':
			s.depth++
			s.afterStr = false
		case '}', ']':
			s.depth--
			s.afterStr = false
			s.ended = s.ended || s.depth == 0
		case ' ', '\t', '\r', '\n':
		default:
			s.afterStr = false
		}
	}
}

// str consumes string content up to and including the closing quote.
func (s *idScan) str(b []byte) []byte {
	q := bytes.IndexByte(b, '"')
	content := b
	if q >= 0 {
		content = b[:q]
	}
	if s.depth == 1 {
		s.keyByte(content)
	}
	if s.inVal {
		for _, c := range content {
			s.valByte(c)
		}
	}
	// The backslashes that end content, with one carried from before when
	// content is all backslashes, say whether what follows is escaped.
	k := len(content) - len(bytes.TrimRight(content, `\`))
	odd := k%2 == 1
	if k == len(content) {
		odd = odd != s.esc
	}
	if q < 0 {
		s.esc = odd
		return nil
	}
	s.esc = false
	if s.inVal {
		s.valByte('"')
	}
	if odd { // an escaped quote: still in the string
		if s.depth == 1 {
			s.keyByte([]byte{'"'})
		}
		return b[q+1:]
	}
	s.inStr = false
	s.afterStr = s.depth == 1
	return b[q+1:]
}

func (s *idScan) keyByte(b []byte) {
	if s.keyLong {
		return
	}
	if len(s.key)+len(b) > len("method") {
		s.keyLong = true
		return
	}
	s.key = append(s.key, b...)
}

func (s *idScan) valByte(c byte) {
	if len(s.val) >= maxIDLen {
		s.valBad = true
		return
	}
	s.val = append(s.val, c)
}

func (s *idScan) endVal() {
	s.inVal = false
	v := bytes.TrimSpace(s.val)
	if s.valBad || len(v) == 0 || !json.Valid(v) || (v[0] != '"' && v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		s.id = s.id[:0]
		return
	}
	s.id = append(s.id[:0], v...)
}

// errMessageTooLarge ends a JSON response body over the limit.
var errMessageTooLarge = errors.New("message too large")

// tooLargeData marks the error replies of lineLimit: for a tools/call,
// the error is the call's own (a tool error the model reads), not the
// upstream's JSON-RPC error passed on. An upstream sending it itself
// gains nothing: its message becomes a tool error.
const tooLargeData = `{"toolgate":"message_too_large"}`

func isTooLarge(d *mcp.JSONRPCErrorDetails) bool {
	if d.Code != mcp.INTERNAL_ERROR {
		return false
	}
	b, err := json.Marshal(d.Data)
	return err == nil && string(b) == tooLargeData
}

// limitTransport bounds the bodies of an HTTP upstream's responses: an
// SSE stream's lines by lineLimit, any other body whole (a JSON body is
// one message, and it fails with a read error past max).
type limitTransport struct {
	next   http.RoundTripper
	max    int
	reason string
	lines  string // the reason for an SSE event of too many lines
	onDrop func([]byte, int64)
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	var r io.Reader
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		l := newLineLimit(resp.Body, t.max, true, t.reason, t.onDrop)
		l.lines = t.lines
		r = l
	} else {
		r = &capReader{r: resp.Body, left: int64(t.max), err: fmt.Errorf("%w: %s", errMessageTooLarge, t.reason)}
	}
	resp.Body = tapBody{Reader: r, Closer: resp.Body}
	return resp, nil
}

// capReader reads at most left bytes, then fails with err.
type capReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n - 1, c.err
	}
	return n, err
}
