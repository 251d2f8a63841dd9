package rules

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// fuzzRules reads args in every way that can fail: missing keys, wrong
// types, nested access, arithmetic, shell parsing and globbing. Its default
// is allow, so any evaluation error that leaked into an allow would show.
const fuzzRules = `version: 1
default: allow
on_error: review
rules:
  - name: nested
    match: 'args.a.b.c == "x"'
    action: allow
  - name: arith
    match: 'args.?n.orValue(0.0) + 1.0 > 10.0'
    action: allow
  - name: shell
    match: 'shell.commands(args.?command.orValue("")).exists(c, shell.unwrap(c).size() > 3)'
    action: allow
  - name: glob
    match: 'glob(path.clean(args.?path.orValue("")), ["**/.ssh/**", "**/*.{pem,key}"])'
    action: deny
  - name: lists
    match: 'args.?paths.orValue([]).exists(p, p.startsWith("/"))'
    action: allow
    mode: shadow
  - name: reason
    match: 'size(args) > 3'
    action: allow
    reason_expr: '"keys: " + args.map(k, k).join(",")'
`

func FuzzEvaluateArgs(f *testing.F) {
	for _, seed := range []string{
		`{}`,                               // no args: every strict read fails
		`{"a":{"b":{"c":"x"}}}`,            // nested match
		`{"a":{"b":1}}`,                    // wrong type inside
		`{"a":[1,2]}`,                      // list where a map is expected
		`{"n":"5"}`,                        // string where a number is expected
		`{"n":1e308}`,                      // huge number
		`{"command":"echo 'unterminated"}`, // shell parse error
		`{"command":"sudo env A=1 nohup rm -rf /"}`,
		`{"path":"/home/u/.ssh/id_rsa"}`,          // deny
		`{"path":["not","a","string"]}`,           // wrong type for glob
		`{"paths":[1,null,"/x"]}`,                 // mixed list
		`{"w":1,"x":2,"y":3,"z":{"deep":[[[]]]}}`, // reason_expr over many keys
		`{"\u0000":"\udfff"}`,                     // odd strings
	} {
		f.Add([]byte(seed))
	}
	s := mustParse(f, fuzzRules)
	f.Fuzz(func(t *testing.T, data []byte) {
		var args map[string]any
		if json.Unmarshal(data, &args) != nil {
			return
		}
		d := s.Evaluate(context.Background(), toolgate.Call{Tool: "t", Args: args})
		switch d.Action {
		case toolgate.Allow, toolgate.Deny, toolgate.Review:
		default:
			t.Fatalf("invalid action %q", d.Action)
		}
		if d.Error != "" && d.Action == toolgate.Allow {
			t.Fatalf("an evaluation error allowed the call: %+v", d)
		}
		if d.Version == "" {
			t.Fatal("no version")
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(basicFile))
	// (The default pack is not a seed: at ~15 compiled rules it makes each
	// execution, and so minimization, too slow to fuzz well.)
	f.Add([]byte(""))                                                                            // empty
	f.Add([]byte("version: 1\n---\nversion: 1\n"))                                               // two documents
	f.Add([]byte("version: 1\nrules: [{name: a}]\n"))                                            // missing fields
	f.Add([]byte("version: 1\nrules:\n  - name: a\n    match: |\n      )(\n    action: deny\n")) // syntax error in a block
	f.Add([]byte("a: &x [*x]\n"))                                                                // recursive alias
	f.Add([]byte("version: 1\nrules:\n  - name: a\n    match: \"\\u00e9 == 1 &&\"\n    action: deny\n"))
	f.Add([]byte("\t- : : :")) // not YAML
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err == nil {
			if s == nil || s.Version() == "" {
				t.Fatal("nil set without error")
			}
			d := s.Evaluate(context.Background(), toolgate.Call{Tool: "read_file", Args: map[string]any{"path": "x"}})
			if d.Action == "" || d.Error != "" && d.Action == toolgate.Allow {
				t.Fatalf("bad decision %+v", d)
			}
			return
		}
		// Every error carries a position inside the file.
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range errs {
			var pe *Error
			if !errors.As(e, &pe) {
				t.Fatalf("error without position: %v", e)
			}
			if pe.Line < 1 || pe.Column < 1 || pe.Line > lines+1 {
				t.Fatalf("position %d:%d outside the file (%d lines): %v", pe.Line, pe.Column, lines, pe)
			}
		}
	})
}
