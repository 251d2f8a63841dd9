package mcp

import (
	"bytes"
	"encoding/json"
	"testing"
)

// membersAndElements counts what countValues counts, from the tokens a
// JSON decoder reads (so duplicate keys count, as in the scan).
func membersAndElements(data []byte) int {
	type frame struct{ object, wantKey bool }
	var stack []frame
	n := 0
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.object && top.wantKey {
				top.wantKey = false // a key: its member counts with its value
				continue
			}
			n++
			top.wantKey = top.object
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
		}
	}
}

// FuzzCountValues holds countValues, a scan of the bytes, to a decoder's
// reading of the same JSON text: equal counts up to the limit, over past it.
func FuzzCountValues(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `[ ]`, `[[]]`, `[[],[ ],{}]`, `{"a":1,"b":[1,2,{"c":"x,y:z"}]}`,
		`{"k\"ey":"v\\","k2":["\"[",{},[]]}`, `[1, 2 ,3]`, ` [ "a" , [ [ ] ] ] `, `{"a":1,"a":2}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":{"text":"hi"}}}`,
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if !json.Valid(data) || limit < 0 {
			return
		}
		want := membersAndElements(data)
		n, over := countValues(data, limit)
		switch {
		case want > limit && !over:
			t.Fatalf("%q: %d values, limit %d, not over (counted %d)", data, want, limit, n)
		case want <= limit && (over || n != want):
			t.Fatalf("%q: counted %d (over %v), want %d", data, n, over, want)
		}
	})
}
