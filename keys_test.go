package toolgate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func TestCaseAmbiguity(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{`{"script":"ls","Script":"id"}`, `both "Script" and "script", keys that differ only in letter case`},
		{`{"a":{"x":[{"host":"localhost","HOST":"evil"}]}}`, `both "HOST" and "host"`},
		{`{"σ":1,"ς":2}`, `both "ς" and "σ"`},
		{`{"script":"ls","ſcript":"id"}`, `the key "ſcript", whose U+017F reads as an ASCII letter where keys are matched ignoring case`},
		{`{"ſ":1}`, `the key "ſ"`},
		{`{"cmd":"ls","wor\u212adir":"/etc"}`, "the key \"wor\u212adir\", whose U+212A reads"},
		{`{"script":"ls","scrıpt":"id"}`, `both "script" and "scrıpt"`},
		{`{"x":{"İd":1,"id":2}}`, `both "id" and "İd"`},
		{`{"meta":{"başlık":"Türkçe","İl":"x"}}`, ""},
		{`[{"a":1},{"x":{"ſ":1}}]`, `the key "ſ"`},
		{`{"script":"ls","scripts":"id","k":2,"名前":"x"}`, ""},
		{`{"text":"ſcript script \u212a"}`, ""},
		{`[{"a":1},{"A":2}]`, ""},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.args), &v); err != nil {
			t.Fatal(err)
		}
		if got := CaseAmbiguity(v); tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
			t.Errorf("CaseAmbiguity(%s) = %q; want %q", tc.args, got, tc.want)
		}
	}
}

func TestUndeclaredCase(t *testing.T) {
	schema := json.RawMessage(`{"type":"object","properties":{"command":{"type":"string"},"cwd":{"type":"string","description":"the \"CWD\" to run in"},"script":{"type":"string"},
		"options":{"type":"object","properties":{"cwd":{"type":"string"},"env":{"type":"object"}}},
		"steps":{"type":"array","items":{"type":"object","properties":{"run":{"type":"string"}}}}}}`)
	for _, tc := range []struct{ args, want string }{
		{`{"command":"ls","cwd":"."}`, ""},
		{`{"command":"ls","CWD":".git/hooks"}`, `the key "CWD", which the tool does not declare and servers that match keys ignoring case read as its "cwd"`},
		{`{"Command":"ls"}`, `the key "Command"`},
		{`{"scrıpt":"id"}`, `the key "scrıpt", which the tool does not declare and servers that match keys ignoring case read as its "script"`},
		{`{"cwı":"x","extra":1}`, ""},
		{`{"command":"ls","cwD":"/"}`, `the key "cwD"`},
		// In an object property, and in an array's items.
		{`{"command":"ls","options":{"env":{},"Cwd":"/"}}`, `the key "options.Cwd", which the tool does not declare and servers that match keys ignoring case read as its "options.cwd"`},
		{`{"options":{"cwd":"."},"steps":[{"run":"ls"},{"run":"ls","RUN":"id"}]}`, `the key "steps[1].RUN"`},
		{`{"options":{"cwd":".","extra":{"Cwd":"x"}}}`, ""},
		{`{"steps":[{"run":"ls"}],"scripts":[{"RUN":"x"}]}`, ""},
	} {
		var args map[string]any
		if err := json.Unmarshal([]byte(tc.args), &args); err != nil {
			t.Fatal(err)
		}
		if got := UndeclaredCase(args, schema); tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
			t.Errorf("UndeclaredCase(%s) = %q; want %q", tc.args, got, tc.want)
		}
	}
}

// TestCaseAmbiguityLikeEncodingJSON: two keys are reported exactly when
// Go's encoding/json gives a struct field named as one the value of the
// other, for every rune in a key that folds to another.
func TestCaseAmbiguityLikeEncodingJSON(t *testing.T) {
	for r := rune(0x41); r <= unicode.MaxRune; r++ {
		f := unicode.SimpleFold(r)
		if f == r || !unicode.IsPrint(r) {
			continue
		}
		field := "x" + string(r)
		typ := reflect.StructOf([]reflect.StructField{{Name: "X", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`json:"` + field + `"`)}})
		decodes := func(key string) bool {
			raw, _ := json.Marshal(map[string]string{key: "v"})
			dst := reflect.New(typ)
			if err := json.Unmarshal(raw, dst.Interface()); err != nil {
				t.Fatal(err)
			}
			return dst.Elem().Field(0).String() == "v"
		}
		if !decodes(field) {
			continue // not a name encoding/json takes from a tag (a mark is no letter)
		}
		for g := f; g != r; g = unicode.SimpleFold(g) {
			twin := "x" + string(g)
			decoded := decodes(twin)
			twins := CaseAmbiguity(map[string]any{field: "a", twin: "b"}) != ""
			if decoded != twins {
				t.Fatalf("%q and %q: encoding/json matches %v, CaseAmbiguity %v", field, twin, decoded, twins)
			}
		}
	}
}

// FuzzUndeclaredCase: on any arguments and schema, UndeclaredCase does not
// panic, names a key only when it reports one, and reports nothing when
// the fast path (every key named in the schema) and the walk disagree on
// no key: the walk alone finds what the fast path lets through.
func FuzzUndeclaredCase(f *testing.F) {
	f.Add(`{"options":{"Cwd":"/"}}`, `{"properties":{"options":{"properties":{"cwd":{}}}}}`)
	f.Add(`{"steps":[{"RUN":"x"}]}`, `{"properties":{"steps":{"items":{"properties":{"run":{}}}}}}`)
	f.Add(`{"a":1}`, `{"properties":{"A":{}}}`)
	f.Fuzz(func(t *testing.T, argsJSON, schema string) {
		var args map[string]any
		if json.Unmarshal([]byte(argsJSON), &args) != nil {
			return
		}
		got := UndeclaredCase(args, json.RawMessage(schema))
		if got != "" && !strings.HasPrefix(got, "the key ") {
			t.Fatalf("UndeclaredCase = %q", got)
		}
		if walk := undeclaredCase(args, json.RawMessage(schema), ""); got != walk && got != "" {
			t.Fatalf("UndeclaredCase = %q, the walk %q", got, walk)
		}
		if got == "" && allNamed(args, json.RawMessage(schema)) == false {
			if walk := undeclaredCase(args, json.RawMessage(schema), ""); walk != "" {
				t.Fatalf("UndeclaredCase = %q, the walk %q", got, walk)
			}
		}
	})
}
