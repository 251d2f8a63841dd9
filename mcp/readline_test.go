package mcp

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzReadLine holds readLine to bufio's ReadBytes: the same lines, those
// longer than max cut to their first max bytes with errLineTooLong, and
// the lines after them read whole, whatever the buffer's size.
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
			switch {
			case werr == nil && len(body) > max:
				if !errors.Is(err, errLineTooLong) || !bytes.Equal(line, wline[:max]) {
					t.Fatalf("line of %d, max %d: got %q, %v; want its first %d bytes and errLineTooLong", len(body), max, line, err, max)
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

func TestLineID(t *testing.T) {
	for in, want := range map[string]any{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"x":"yyy`: int64(7),
		`{"id":"a","params":`:                        "a",
		`{"method":"tools/call","params":{"id":3,"x`: nil, // an id inside params is not the request's
		`{"params":{"x":"yyy`:                        nil,
		`{"id":1.5,"x":`:                             nil,
		`["id",1]`:                                   nil,
		`{"params":{},"id":9}`:                       int64(9),
	} {
		if got := lineID([]byte(in)); got != want {
			t.Errorf("lineID(%s) = %#v, want %#v", in, got, want)
		}
	}
}
