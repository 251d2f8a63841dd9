package rules

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/toolgate/toolgate"
)

// argRules reads the arguments in the shapes rules are written in,
// fed values of every type. Every rule but
// the last is a shadow rule, so each call evaluates all of them.
const argRules = `version: 1
default: review
on_error: deny
rules:
  - {name: glob-or, mode: shadow, action: deny, match: 'glob(args.?path.orValue(""), "**/.ssh/**")'}
  - {name: glob-or-brace, mode: shadow, action: deny, match: 'glob(args.?path.orValue(""), "*.{go,md}")'}
  - {name: glob-or-int, mode: shadow, action: deny, match: 'glob(args.?path.orValue(1), "**")'}
  - {name: glob-or-null, mode: shadow, action: deny, match: 'glob(args.?path.orValue(null), "**")'}
  - {name: glob-strict, mode: shadow, action: deny, match: 'glob(args.path, "src/*")'}
  - {name: glob-clean, mode: shadow, action: deny, match: 'glob(path.clean(args.?path.orValue("")).lowerAscii(), "**/id_rsa*")'}
  - {name: glob-tool, mode: shadow, action: deny, match: 'glob(tool.name, "read_*")'}
  - {name: glob-list, mode: shadow, action: deny, match: 'glob(args.?path.orValue(""), ["**/.env", "**/*.pem"])'}
  - {name: glob-dyn, mode: shadow, action: deny, match: 'glob(args.?path.orValue(""), args.?pattern.orValue("*"))'}
  - {name: or-eq, mode: shadow, action: deny, match: 'args.?path.orValue("") == "a"'}
  - {name: or-num, mode: shadow, action: deny, match: 'args.?n.orValue(0.0) > 1.0'}
  - {name: or-num-int, mode: shadow, action: deny, match: 'args.?n.orValue(0) > 1'}
  - {name: or-bool, mode: shadow, action: deny, match: 'args.?flag.orValue(false) == true'}
  - {name: or-type, mode: shadow, action: deny, match: 'type(args.?path.orValue(null)) == string'}
  - {name: or-size, mode: shadow, action: deny, match: 'args.?a.orValue([]).size() > 1'}
  - {name: or-nested, mode: shadow, action: deny, match: 'args.?a.orValue({}).?b.orValue("") == "x"'}
  - {name: or-map-default, mode: shadow, action: deny, match: 'args.?a.orValue({"b": "x"}).b == "x"'}
  - {name: or-matches, mode: shadow, action: deny, match: 'args.?command.orValue("").matches("^rm -rf")'}
  - {name: matches-global, mode: shadow, action: deny, match: 'matches(args.?command.orValue(""), "rm\\s+-[a-z]*r")'}
  - {name: matches-dyn, mode: shadow, action: deny, match: 'args.?n.orValue(1).matches("^[0-9]")'}
  - {name: matches-tool, mode: shadow, action: deny, match: 'tool.name.matches("^read_")'}
  - {name: matches-strict, mode: shadow, action: deny, match: 'args.command.matches("^rm")'}
  - {name: or-twice, mode: shadow, action: deny, match: 'args.?path.orValue("") == args.?path.orValue("x")'}
  - {name: or-empty-key, mode: shadow, action: deny, match: 'args[?""].orValue("") == "e"'}
  - {name: or-index, mode: shadow, action: deny, match: 'args[?"path"].orValue("") == "a"'}
  - {name: has, mode: shadow, action: deny, match: 'has(args.path) && args.?path.hasValue()'}
  - {name: in-comprehension, mode: shadow, action: deny, match: 'args.?paths.orValue([]).exists(p, glob(string(p), "**/.ssh/**"))'}
  - {name: annotations, mode: shadow, action: deny, match: 'tool.annotations.?readOnlyHint.orValue(false)'}
  - name: reason
    mode: shadow
    action: deny
    match: 'args.?path.orValue("") != ""'
    reason_expr: '"path " + args.?path.orValue("none")'
  - {name: last, action: allow, match: 'glob(args.?path.orValue(""), "**") || true'}
`

// argValues are argument values of every JSON type, plus Go values a
// caller may pass that are normalized (ints) or rejected (a channel).
var argValues = []any{
	nil, "", "a", "x", "e", "src/main.go", "README.md", "/home/u/.ssh/id_rsa", "/home/someone/projects/x/.ssh/authorized_keys", "proj/../.SSH/ID_RSA",
	"rm -rf /", "rm  -fr ~", "*", "**/*.go", "[", "{a,b", ".env", "k.pem",
	0.0, 1.0, 2.5, 3, true, false,
	[]any{}, []any{"a", "/home/u/.ssh/x"}, []any{1.0, nil},
	map[string]any{}, map[string]any{"b": "x"}, map[string]any{"b": 1.0},
	make(chan int),
}

var argKeys = []string{"path", "n", "flag", "a", "command", "paths", "pattern", ""}

// TestEvaluateConcurrent checks that calls decided at once, which share
// the set's recycled activations, get the decisions they get one by one.
func TestEvaluateConcurrent(t *testing.T) {
	s := mustParse(t, argRules)
	ctx := context.Background()
	var calls []toolgate.Call
	var want []toolgate.Decision
	for i, v := range argValues {
		if _, ok := v.(chan int); ok {
			continue
		}
		c := toolgate.Call{Tool: "t", Args: map[string]any{argKeys[i%len(argKeys)]: v, "path": v}}
		calls = append(calls, c)
		want = append(want, s.Evaluate(ctx, c))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(calls)
				if d := s.Evaluate(ctx, calls[i]); !reflect.DeepEqual(d, want[i]) {
					t.Errorf("call %d: %+v, want %+v", i, d, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}
