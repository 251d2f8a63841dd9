package tools

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSchemaTapKeepsFieldOrder(t *testing.T) {
	const schema = `{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number","minimum":1.5},"mid":{"type":"boolean"}}}`
	stream := strings.Join([]string{
		`{"jsonrpc":"2.0","id":"toolgate-call-1","result":{"content":[]}}`,
		`{"jsonrpc":"2.0","id":3,"method":"elicitation/create","params":{"message":"m","requestedSchema":` + schema + `}}`,
		`{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", maxTappedLine) + `"}]}}`,
		`event: message`,
		`data: {"jsonrpc":"2.0","id":5,"method":"elicitation/create","params":{"message":"sse","requestedSchema":{"properties":{"b":{},"a":{}}}}}`,
		``,
	}, "\n")
	var tap schemaTap
	// One byte at a time: lines are reassembled across reads.
	got, err := io.ReadAll(tap.reader(iotest.OneByteReader(strings.NewReader(stream))))
	if err != nil || string(got) != stream {
		t.Fatalf("the tap changed the stream (err %v)", err)
	}
	for _, want := range []string{schema, `{"properties":{"b":{},"a":{}}}`} {
		var decoded any // as mcp-go's transport decodes the params
		if err := json.Unmarshal([]byte(want), &decoded); err != nil {
			t.Fatal(err)
		}
		out, ok := tap.original(decoded).(json.RawMessage)
		if !ok || string(out) != want {
			t.Errorf("original = %s, want %s", out, want)
		}
		if _, again := tap.original(decoded).(json.RawMessage); again {
			t.Error("a schema was handed back twice")
		}
	}
	// A schema never seen comes back as it is.
	m := map[string]any{"type": "object"}
	if out, ok := tap.original(m).(map[string]any); !ok || out["type"] != "object" {
		t.Errorf("unseen schema: %v", out)
	}
}

// BenchmarkSchemaTap is the tap's cost on an upstream's output: 8 KB result
// lines read through one tap (as one connection's are), against the same
// lines read directly.
func BenchmarkSchemaTap(b *testing.B) {
	line := []byte(`{"jsonrpc":"2.0","id":"toolgate-call-1","result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 8<<10) + `"}]}}` + "\n")
	buf := make([]byte, 4096) // bufio.Reader's default size, as mcp-go reads
	for _, tapped := range []bool{false, true} {
		b.Run(map[bool]string{false: "direct", true: "tapped"}[tapped], func(b *testing.B) {
			src := &repeatReader{line: line}
			var r io.Reader = src
			if tapped {
				var tap schemaTap
				r = tap.reader(src)
			}
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				for src.lines == 0 {
					if _, err := r.Read(buf); err != nil {
						b.Fatal(err)
					}
				}
				src.lines = 0
			}
		})
	}
}

// repeatReader reads line over and over, counting the ends it hands out.
type repeatReader struct {
	line  []byte
	off   int
	lines int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.line[r.off:])
	if r.off += n; r.off == len(r.line) {
		r.off, r.lines = 0, r.lines+1
	}
	return n, nil
}
