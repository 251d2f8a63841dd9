package tools

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// An upstream's elicitation form lists its fields in the order the user
// should fill them, but mcp-go's client transports decode the request's
// params into map[string]any before toolgate's handler sees them, and a
// map marshals with its keys sorted: the agent's user would get the form
// in alphabetical order. schemaTap keeps the order: it watches the bytes
// an upstream sends (a stdio process's stdout, an HTTP upstream's SSE
// streams), keeps the raw requestedSchema of each elicitation/create
// request it sees, and hands it back, by content, to the relay, which
// sends the agent those bytes instead of the map.

// maxTappedLine bounds the line schemaTap reassembles; a longer line is
// passed through unexamined (its form, if any, then comes sorted).
const maxTappedLine = 1 << 20

// maxTappedSchemas bounds how many schemas wait for their relay.
const maxTappedSchemas = 32

// schemaTap holds the raw requestedSchemas seen and not yet relayed, by
// the canonical form of their decoding. The zero value is ready to use.
type schemaTap struct {
	mu      sync.Mutex
	schemas map[string]json.RawMessage
	order   []string // keys, oldest first, for the bound
}

// keyOf is the key of a schema given as decoded by mcp-go (v) or as bytes
// (decoded the same way first): its json.Marshal, keys sorted.
func keyOf(v any) (string, bool) {
	if raw, ok := v.(json.RawMessage); ok {
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", false
		}
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// see examines one line from the upstream.
func (t *schemaTap) see(line []byte) {
	if !bytes.Contains(line, []byte(`"elicitation/create"`)) {
		return
	}
	line = bytes.TrimSpace(line)
	line = bytes.TrimSpace(bytes.TrimPrefix(line, []byte("data:"))) // an SSE event's data line
	var m struct {
		Method string `json:"method"`
		Params struct {
			RequestedSchema json.RawMessage `json:"requestedSchema"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil || m.Method != "elicitation/create" || len(m.Params.RequestedSchema) == 0 {
		return
	}
	key, ok := keyOf(m.Params.RequestedSchema)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.schemas == nil {
		t.schemas = map[string]json.RawMessage{}
	}
	if _, dup := t.schemas[key]; !dup {
		t.order = append(t.order, key)
	}
	t.schemas[key] = bytes.Clone(m.Params.RequestedSchema)
	for len(t.order) > maxTappedSchemas {
		delete(t.schemas, t.order[0])
		t.order = t.order[1:]
	}
}

// original returns the schema as the upstream wrote it, for schema as
// mcp-go decoded it, or schema itself when it was not seen.
func (t *schemaTap) original(schema any) any {
	key, ok := keyOf(schema)
	if !ok {
		return schema
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	raw, found := t.schemas[key]
	if !found {
		return schema
	}
	delete(t.schemas, key)
	if i := indexOf(t.order, key); i >= 0 {
		t.order = append(t.order[:i], t.order[i+1:]...)
	}
	return raw
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

// reader returns r with its lines shown to t as they are read.
//
// Only lines naming elicitation/create in their first headLen bytes are
// kept whole: JSON-RPC requests put method before params in the SDKs'
// encodings (field order, or sorted keys), so the others are passed on
// after a look at their head, without being copied. A request written
// otherwise reaches the agent with its form sorted.
func (t *schemaTap) reader(r io.Reader) io.Reader { return &tapReader{r: r, tap: t} }

// headLen is how much of a line decides whether it is kept.
const headLen = 256

type tapReader struct {
	r    io.Reader
	tap  *schemaTap
	line []byte // the current line so far, while it may be kept
	// decided: the head was examined; keep: the line is being kept.
	decided, keep bool
}

var elicitMethod = []byte(`"elicitation/create"`)

func (tr *tapReader) Read(p []byte) (int, error) {
	n, err := tr.r.Read(p)
	rest := p[:n]
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk = rest[:i]
		}
		switch {
		case !tr.decided:
			take := min(len(chunk), headLen-len(tr.line))
			tr.line = append(tr.line, chunk[:take]...)
			if len(tr.line) >= headLen || i >= 0 {
				tr.decided, tr.keep = true, bytes.Contains(tr.line, elicitMethod)
			}
			if tr.keep {
				tr.line = append(tr.line, chunk[take:]...)
			}
		case tr.keep:
			tr.line = append(tr.line, chunk...)
		}
		if tr.keep && len(tr.line) > maxTappedLine {
			tr.keep = false
		}
		if i < 0 {
			break
		}
		if tr.keep {
			tr.tap.see(tr.line)
		}
		tr.line, tr.decided, tr.keep = tr.line[:0], false, false
		if cap(tr.line) > 4*headLen {
			tr.line = nil // a kept long line's buffer is not held
		}
		rest = rest[i+1:]
	}
	return n, err
}

// roundTripper returns next with the SSE response bodies shown to t.
func (t *schemaTap) roundTripper(next http.RoundTripper) http.RoundTripper {
	return tapTransport{next: next, tap: t}
}

type tapTransport struct {
	next http.RoundTripper
	tap  *schemaTap
}

func (tt tapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tt.next.RoundTrip(req)
	if err == nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body = tapBody{Reader: tt.tap.reader(resp.Body), Closer: resp.Body}
	}
	return resp, err
}

type tapBody struct {
	io.Reader
	io.Closer
}
