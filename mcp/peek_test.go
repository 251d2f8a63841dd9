package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// peekCase is a line and whether peekMessage must accept it; an accepted
// line must decode exactly as json.Unmarshal decodes it.
type peekCase struct {
	name string
	line string
	ok   bool
}

func peekCases() []peekCase {
	return []peekCase{
		{"initialize", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"claude-code","version":"1.0.0"}}}` + "\n", true},
		{"tools/call nested", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fs__write_file","arguments":{"path":"/tmp/a.go","content":"package a\n\nfunc f() string { return \"}\\\"{\" }\n","opts":[1,-2.5e-3,true,false,null,{"x":[[]]}]},"_meta":{"progressToken":"p1"}}}` + "\n", true},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n", true},
		{"cancel notification", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"user"}}`, true},
		{"response result", `{"jsonrpc":"2.0","id":1,"result":{"action":"accept","content":{"ok":true}}}` + "\n", true},
		{"response error", `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"no"}}` + "\n", true},
		{"result null is present", `{"jsonrpc":"2.0","id":1,"result":null}`, true},
		{"error null is present", `{"id":1,"error":null}`, true},
		{"empty object", `{}`, true},
		{"empty object spaced", " \t{ \r\n} \r\n", true},
		{"whitespace between tokens", " {\n\"id\" :\t1 ,\r\n \"method\" : \"ping\" , \"params\" : [ 1 , { } , [ ] ] } \n", true},
		{"upper-case keys", `{"JSONRPC":"2.0","ID":3,"METHOD":"ping","RESULT":1,"ERROR":2}`, true},
		{"mixed-case keys", `{"Id":3,"mEtHoD":"ping","ReSuLt":{}}`, true},
		{"escaped key", `{"\u006dethod":"ping","\u0069\u0044":"x"}`, true},
		{"escaped slash key", `{"meth\/od":"ping","id":1}`, true},
		{"escaped method", `{"method":"tools\/call","id":"a\"b\u00e9"}`, true},
		{"non-ASCII method", `{"method":"pïng","id":"ü"}`, true},
		{"invalid UTF-8 method", "{\"method\":\"p\xffng\",\"id\":\"\xc3\"}", true},
		{"duplicate method last wins", `{"method":"a","method":"b"}`, true},
		{"duplicate method null keeps", `{"method":"a","method":null}`, true},
		{"duplicate id null clears", `{"id":1,"id":null}`, true},
		{"duplicate id object then number", `{"id":{"a":1},"id":2}`, true},
		{"duplicate result", `{"id":1,"result":1,"result":[2]}`, true},
		{"method null", `{"method":null,"id":1}`, true},
		{"id float", `{"method":"m","id":1.5}`, true},
		{"id negative zero", `{"method":"m","id":-0}`, true},
		{"id exponent", `{"method":"m","id":1E+3}`, true},
		{"id huge integer", `{"method":"m","id":123456789012345678901234567890}`, true},
		{"id bool", `{"method":"m","id":true}`, true},
		{"id object", `{"method":"m","id":{"a":[1,"x",null]}}`, true},
		{"id array", `{"method":"m","id":[1,2]}`, true},
		{"id empty string", `{"method":"m","id":""}`, true},
		{"unknown keys of any type", `{"a":"\\","b":{"c":"}"},"d":[["]"]],"e":-0.0e-0,"id":1}`, true},
		{"DEL and high bytes in strings", "{\"a\":\"\x7f\xfe\",\"id\":1}", true},

		// Declined: json.Unmarshal decides (fails, or needs its full rules).
		{"id out of range", `{"method":"m","id":1e400}`, false},
		{"method number", `{"method":1,"id":1}`, false},
		{"method object", `{"method":{},"id":1}`, false},
		{"method bool", `{"method":true}`, false},
		{"dotless i key", `{"ıd":1,"method":"m"}`, false},
		{"long s key", `{"id":1,"reſult":{}}`, false},
		{"escaped non-ASCII key", `{"\u0131d":1}`, false},
		{"non-ASCII unknown key", `{"é":1}`, false},
		{"not an object: array", `[{"id":1,"method":"m"}]`, false},
		{"not an object: null", `null`, false},
		{"not an object: string", `"x"`, false},
		{"empty line", "\n", false},
		{"trailing garbage", `{"id":1}x`, false},
		{"two objects", `{"id":1}{"id":2}`, false},
		{"unterminated", `{"id":1`, false},
		{"unterminated string", `{"id":"1}`, false},
		{"trailing comma", `{"id":1,}`, false},
		{"missing comma", `{"id":1 "method":"m"}`, false},
		{"missing colon", `{"id" 1}`, false},
		{"single quotes", `{'id':1}`, false},
		{"bad nested literal", `{"method":"m","params":{"a":tru}}`, false},
		{"nested literal prefix", `{"method":"m","params":[nullx]}`, false},
		{"leading zero", `{"method":"m","params":{"a":01}}`, false},
		{"bare dot", `{"method":"m","params":{"a":1.}}`, false},
		{"bare minus", `{"method":"m","params":{"a":-}}`, false},
		{"bare exponent", `{"method":"m","params":{"a":1e}}`, false},
		{"plus sign", `{"method":"m","params":{"a":+1}}`, false},
		{"control char in nested string", "{\"method\":\"m\",\"params\":{\"a\":\"x\ty\"}}", false},
		{"control char in key", "{\"i\nd\":1}", false},
		{"bad escape", `{"method":"m","params":{"a":"\x"}}`, false},
		{"short unicode escape", `{"method":"m","params":{"a":"\u12"}}`, false},
		{"non-hex unicode escape", `{"method":"m","params":{"a":"\u12g4"}}`, false},
		{"unbalanced nested", `{"method":"m","params":{"a":[1}}`, false},
		{"nested trailing comma", `{"method":"m","params":[1,]}`, false},
		{"too deep", `{"method":"m","params":` + strings.Repeat("[", maxPeekDepth+1) + strings.Repeat("]", maxPeekDepth+1) + `}`, false},
		{"BOM", "\ufeff{}", false},
	}
}

// sameMessage reports how got differs from want, as the dispatcher sees them.
func sameMessage(got, want message) error {
	switch {
	case got.Method != want.Method:
		return fmt.Errorf("method %q, want %q", got.Method, want.Method)
	case !reflect.DeepEqual(got.ID, want.ID):
		return fmt.Errorf("id %#v, want %#v", got.ID, want.ID)
	case (got.Result == nil) != (want.Result == nil) || !bytes.Equal(got.Result, want.Result):
		return fmt.Errorf("result %q (nil %t), want %q (nil %t)", got.Result, got.Result == nil, want.Result, want.Result == nil)
	case (got.Error == nil) != (want.Error == nil) || !bytes.Equal(got.Error, want.Error):
		return fmt.Errorf("error %q (nil %t), want %q (nil %t)", got.Error, got.Error == nil, want.Error, want.Error == nil)
	}
	return nil
}

// checkPeek is the differential invariant: an accepted line is one
// json.Unmarshal accepts too, with the same message.
func checkPeek(t *testing.T, line []byte) (ok bool) {
	t.Helper()
	got, ok := peekMessage(line)
	var want message
	err := json.Unmarshal(line, &want)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("peek accepted %q, json.Unmarshal fails: %v", line, err)
	}
	if err := sameMessage(got, want); err != nil {
		t.Fatalf("peek %q: %v", line, err)
	}
	return true
}

func TestPeekMessage(t *testing.T) {
	for _, tc := range peekCases() {
		t.Run(tc.name, func(t *testing.T) {
			if ok := checkPeek(t, []byte(tc.line)); ok != tc.ok {
				t.Errorf("peek accepted %t, want %t", ok, tc.ok)
			}
		})
	}
}

// TestPeekStringBytes puts each kind of byte at each offset of a string
// value, around the eight-byte steps of skipString: a line of plain
// top-level keys is accepted exactly when it is valid JSON.
func TestPeekStringBytes(t *testing.T) {
	for _, special := range []string{`"`, `\`, `\n`, `\u00e9`, `\u12`, `\x`, "\x00", "\x01", "\x1f", " ", "\x7f", "\x80", "\x9f", "\xa0", "\xff", "\xc3\xa9"} {
		for pos := range 20 {
			for tail := range 10 {
				line := []byte(`{"id":1,"a":"` + strings.Repeat("a", pos) + special + strings.Repeat("b", tail) + `"}` + "\n")
				if ok := checkPeek(t, line); ok != json.Valid(line) {
					t.Errorf("peek accepted %q: %t, json.Valid: %t", line, ok, !ok)
				}
			}
		}
	}
}

func FuzzPeek(f *testing.F) {
	for _, tc := range peekCases() {
		f.Add([]byte(tc.line))
	}
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"c","version":"0"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"abc"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"hi","n":[1,2,{"deep":{"er":"\ud83d\ude00"}}]},"_meta":{"toolgate/model":{"name":"m"},"progressToken":5}}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":1,"total":2}}`,
		`{"jsonrpc":"2.0","id":4,"result":{"action":"decline"}}`,
		`{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"Method not found","data":null}}`,
		`{"jsonrpc":"2.0","id":6,"method":"ping","params":{}}`,
		`{"id":1,"Method":"a","METHOD":"b","method":null}`,
		`{"ID":1e2,"iD":-1.25E-2,"Result":"\u0000","error":[]}`,
		`{"a":{"b":{"c":{"d":[[[["\"\\\/\b\f\n\r\t"]]]]}}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		checkPeek(t, line)
	})
}

// BenchmarkPeek compares routing a line by peekMessage with decoding it
// into message with json.Unmarshal (what the stdio reader did before).
func BenchmarkPeek(b *testing.B) {
	small := []byte(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"fs__read_file","arguments":{"path":"/home/u/src/main.go"}}}` + "\n")
	content, err := json.Marshal(strings.Repeat("func f(s string) error {\n\treturn fmt.Errorf(\"bad %q\", s)\n}\n", 8<<10/58))
	if err != nil {
		b.Fatal(err)
	}
	large := []byte(`{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"fs__write_file","arguments":{"path":"/home/u/src/f.go","content":` + string(content) + `}}}` + "\n")
	for _, line := range []struct {
		name string
		b    []byte
	}{{"small", small}, {"8KB", large}} {
		b.Run(line.name+"/peek", func(b *testing.B) {
			b.SetBytes(int64(len(line.b)))
			for b.Loop() {
				if _, ok := peekMessage(line.b); !ok {
					b.Fatal("declined")
				}
			}
		})
		b.Run(line.name+"/unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(line.b)))
			for b.Loop() {
				var m message
				if err := json.Unmarshal(line.b, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
