package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadLine holds readLine to bufio's ReadBytes: the same lines, those
// longer than max cut to their first max bytes with a *lineTooLongError,
// and the lines after them read whole, whatever the buffer's size.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("ab\ncdefgh\n\nij"), 3, 16)
	f.Add([]byte("abc\nabcd\n"), 3, 16)
	f.Add(bytes.Repeat([]byte("x"), 40), 20, 16)
	f.Fuzz(func(t *testing.T, in []byte, max, size int) {
		max, size = max&63+1, size&63+16
		got := bufio.NewReaderSize(bytes.NewReader(in), size)
		want := bufio.NewReader(bytes.NewReader(in))
		for {
			line, err := readLine(got, int64(max))
			wline, werr := want.ReadBytes('\n')
			body := bytes.TrimSuffix(wline, []byte("\n"))
			var big *lineTooLongError
			switch {
			case werr == nil && len(body) > max:
				if !errors.As(err, &big) || !bytes.Equal(line, wline[:max]) {
					t.Fatalf("line of %d, max %d: got %q, %v; want its first %d bytes and a lineTooLongError", len(body), max, line, err, max)
				}
			case werr != nil && len(wline) > max:
				if err != werr || !bytes.Equal(line, wline[:max]) {
					t.Fatalf("last line %q, max %d: got %q, %v; want its first %d bytes and %v", wline, max, line, err, max, werr)
				}
			case err != werr || !bytes.Equal(line, wline):
				t.Fatalf("max %d: got %q, %v; want %q, %v", max, line, err, wline, werr)
			}
			if werr != nil {
				return
			}
		}
	})
}

// FuzzTopLevel holds topLevel to encoding/json on every JSON object: the
// same top-level "id" (a string or an int64 of at most maxIDBytes), and
// the same answer to "a response, not a request?", fed in pieces of any
// size.
func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"x":"y"}}}`,
		`{"method":"tools/call","params":{"id":3,"x":"}"},"jsonrpc":"2.0","id":"a\"b"}`,
		`{"result":{"id":1},"id":9}`, `{"error":{},"id":"x","method":"m"}`, `{"id":1,"id":2}`,
		`{ "id" : 12 , "p" : [ {"id":4} ] }`, `{"id":1.5}`, `{"id":null,"result":1}`, `["id",1]`,
		`{"id":"` + strings.Repeat("a", maxIDBytes-2) + `"   }`, `{"id":"` + strings.Repeat("a", maxIDBytes-1) + `"}`,
		`{"id":  "a b"  ,"method":"x"}`,
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, piece int) {
		var m map[string]json.RawMessage
		if json.Unmarshal(in, &m) != nil {
			return
		}
		var tl topLevel
		for rest, piece := in, piece&15+1; len(rest) > 0; rest = rest[min(piece, len(rest)):] {
			tl.feed(rest[:min(piece, len(rest))])
		}
		got := tl.result()
		var want any
		if raw, ok := m["id"]; ok && len(raw) <= maxIDBytes {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				want = s
			} else if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				want = n
			}
		}
		_, method := m["method"]
		_, result := m["result"]
		_, rpcErr := m["error"]
		if got.id != want || got.response != (!method && (result || rpcErr)) {
			t.Fatalf("%s: got id %#v, response %v; encoding/json reads id %#v, method %v, result %v, error %v", in, got.id, got.response, want, method, result, rpcErr)
		}
	})
}
