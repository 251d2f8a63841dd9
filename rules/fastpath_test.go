package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/bench"
)

// fastPathRules holds the shapes the fast paths replace, next to near
// misses they must leave alone, fed values of every type. Every rule but
// the last is a shadow rule, so each call evaluates all of them.
const fastPathRules = `version: 1
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

// fastPathValues are argument values of every JSON type, plus Go values a
// caller may pass that are normalized (ints) or rejected (a channel).
var fastPathValues = []any{
	nil, "", "a", "x", "e", "src/main.go", "README.md", "/home/u/.ssh/id_rsa", "/home/someone/projects/x/.ssh/authorized_keys", "proj/../.SSH/ID_RSA",
	"rm -rf /", "rm  -fr ~", "*", "**/*.go", "[", "{a,b", ".env", "k.pem",
	0.0, 1.0, 2.5, 3, true, false,
	[]any{}, []any{"a", "/home/u/.ssh/x"}, []any{1.0, nil},
	map[string]any{}, map[string]any{"b": "x"}, map[string]any{"b": 1.0},
	make(chan int),
}

var fastPathKeys = []string{"path", "n", "flag", "a", "command", "paths", "pattern", ""}

// parseBoth compiles src with the evaluation shortcuts and without.
func parseBoth(t testing.TB, src string) (fast, general *Set) {
	t.Helper()
	fast, err := parse("f.yaml", []byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	general, err = parse("f.yaml", []byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	return fast, general
}

// TestFastPathSameDecisions checks that the fast paths never change what a
// set decides or explains, over hand-written and random calls, for the
// rules above, the default pack with its test cases, and the benchmark set.
func TestFastPathSameDecisions(t *testing.T) {
	calls := []toolgate.Call{
		{Tool: "read_file"},
		{Tool: "read_file", Args: map[string]any{}},
		{Tool: "t", Args: map[string]any{"path": "/home/u/.ssh/id_rsa"}},
		{Tool: "t", Args: map[string]any{"path": 3.0}},
		{Tool: "t", Args: map[string]any{"path": nil}},
		{Tool: "t", Args: map[string]any{"path": []any{"a"}}},
		{Tool: "t", Args: map[string]any{"path": map[string]any{"b": "x"}}},
		{Tool: "t", Args: map[string]any{"path": make(chan int)}},
		{Tool: "t", Args: map[string]any{"n": 3}},
		{Tool: "t", Args: map[string]any{"a": map[string]any{"b": "x"}}},
		{Tool: "t", Args: map[string]any{"": "e"}},
		{Tool: "t", Annotations: toolgate.Annotations{ReadOnly: yes()}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		c := toolgate.Call{Tool: []string{"read_file", "run_command", "t"}[rng.IntN(3)], Args: map[string]any{}}
		for range rng.IntN(4) {
			c.Args[fastPathKeys[rng.IntN(len(fastPathKeys))]] = fastPathValues[rng.IntN(len(fastPathValues))]
		}
		if rng.IntN(10) == 0 {
			c.Args = nil
		}
		calls = append(calls, c)
	}

	cases := defaultCases(t)
	defaultCalls := append([]toolgate.Call(nil), calls...)
	for _, c := range cases {
		defaultCalls = append(defaultCalls, c.Call)
	}

	for _, tc := range []struct {
		name  string
		src   string
		calls []toolgate.Call
	}{
		{"fast path rules", fastPathRules, calls},
		{"default pack", string(defaultPack), defaultCalls},
		{"synthetic", synthFile(20, false), append(calls, benchCall)},
		{"synthetic indexed", synthFile(20, true), append(calls, benchCall)},
		{"fuzz rules", fuzzRules, calls},
		{"tgbench rules", bench.HundredRules("t"), calls},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast, slow := parseBoth(t, tc.src)
			for _, c := range tc.calls {
				ctx := context.Background()
				fd, fsteps, fskip := fast.Explain(ctx, c)
				sd, ssteps, sskip := slow.Explain(ctx, c)
				if !reflect.DeepEqual(fd, sd) || !reflect.DeepEqual(fsteps, ssteps) || fskip != sskip {
					t.Fatalf("call %+v:\nfast %+v\n     %+v\nslow %+v\n     %+v", c, fd, fsteps, sd, ssteps)
				}
				if d := fast.Evaluate(ctx, c); !reflect.DeepEqual(d, sd) {
					t.Fatalf("call %+v: Evaluate %+v, Explain %+v", c, d, sd)
				}
			}
		})
	}
}

// TestFastPathInstalled fails if the fast paths stop applying (say, after a
// cel-go upgrade changes its plan): the general path allocates twice per
// rule of the synthetic set (an optional and a string), the fast one only a
// few times per call.
func TestFastPathInstalled(t *testing.T) {
	const n = 100
	s := mustParse(t, synthFile(n, false))
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() { s.Evaluate(ctx, benchCall) })
	if allocs > n/10 {
		t.Errorf("%v allocations for %d rules: the fast paths are not installed", allocs, n)
	}
}

// TestFastPathNodes checks which expressions get fast-path nodes, so a
// cel-go upgrade that changes the plan they hook into is noticed.
func TestFastPathNodes(t *testing.T) {
	s := mustParse(t, fastPathRules+`  - {name: tracked, action: deny, match: 'args.?paths.orValue([]).exists(p, glob(p, "*"))'}
`)
	want := map[string]int{
		"glob-or":        2, // orValue and glob
		"glob-or-int":    2,
		"glob-strict":    1, // glob
		"glob-tool":      1,
		"glob-list":      1, // orValue; the list overload keeps cel-go's plan
		"glob-dyn":       2, // two orValues, cel-go's glob
		"or-eq":          1,
		"or-map-default": 0, // the default is not a literal
		"or-matches":     2, // orValue and matches
		"matches-global": 2,
		"matches-tool":   1,
		"or-index":       0, // args[?"path"] is another shape
		"tracked":        0, // cost tracking keeps cel-go's plan
	}
	for _, r := range s.rules {
		if n, ok := want[r.name]; ok && r.match.fast != n {
			t.Errorf("%s: %d fast nodes, want %d", r.name, r.match.fast, n)
		}
	}
	// tgbench's set: every argument check is a glob or a regex on an
	// orValue, two fast nodes each.
	for _, r := range mustParse(t, bench.HundredRules("t")).rules {
		var i int
		if _, err := fmt.Sscanf(r.name, "any-tool-%d", &i); err == nil && i%3 == 2 {
			continue // tool.server and confidence: nothing to replace
		}
		if want := 2; r.name != "allow-echo" && r.match.fast != want {
			t.Errorf("%s: %d fast nodes, want %d", r.name, r.match.fast, want)
		}
	}
}

// TestFastPathErrorsMatch spells out a few error messages: the fast paths
// hand anything unusual to cel-go, so they read as before.
func TestFastPathErrorsMatch(t *testing.T) {
	s := mustParse(t, fastPathRules)
	d, steps, _ := s.Explain(context.Background(), toolgate.Call{Tool: "t", Args: map[string]any{"path": 3.0}})
	if d.Action != toolgate.Allow {
		t.Fatalf("decision %+v", d)
	}
	got := map[string]string{}
	for _, st := range steps {
		got[st.Rule] = st.Error
	}
	for rule, want := range map[string]string{
		"glob-or":     "no such overload",
		"glob-or-int": "no such overload",
		"or-eq":       "",
		"or-num":      "",
	} {
		if !strings.Contains(got[rule], want) || want == "" && got[rule] != "" {
			t.Errorf("%s: error %q, want %q", rule, got[rule], want)
		}
	}
	if len(steps) != s.Len() {
		t.Errorf("%d steps for %d rules", len(steps), s.Len())
	}
}

// FuzzFastPath compares the fast and general paths on arbitrary JSON
// arguments.
func FuzzFastPath(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"path":"/home/u/.ssh/id_rsa"}`, `{"path":3}`, `{"path":null}`, `{"path":["a"]}`,
		`{"a":{"b":"x"}}`, `{"command":"rm -rf /"}`, `{"n":"5"}`, `{"":"e","flag":true}`,
	} {
		f.Add([]byte(seed))
	}
	fast, slow := parseBoth(f, fastPathRules)
	f.Fuzz(func(t *testing.T, data []byte) {
		var args map[string]any
		if json.Unmarshal(data, &args) != nil {
			return
		}
		for _, tool := range []string{"read_file", "t"} {
			c := toolgate.Call{Tool: tool, Args: args}
			fd, fsteps, _ := fast.Explain(context.Background(), c)
			sd, ssteps, _ := slow.Explain(context.Background(), c)
			if !reflect.DeepEqual(fd, sd) || !reflect.DeepEqual(fsteps, ssteps) {
				t.Fatalf("call %+v:\nfast %+v\n     %+v\nslow %+v\n     %+v", c, fd, fsteps, sd, ssteps)
			}
		}
	})
}

// TestEvaluateConcurrent checks that calls decided at once, which share
// the set's recycled activations, get the decisions they get one by one.
func TestEvaluateConcurrent(t *testing.T) {
	s := mustParse(t, fastPathRules)
	ctx := context.Background()
	var calls []toolgate.Call
	var want []toolgate.Decision
	for i, v := range fastPathValues {
		if _, ok := v.(chan int); ok {
			continue
		}
		c := toolgate.Call{Tool: "t", Args: map[string]any{fastPathKeys[i%len(fastPathKeys)]: v, "path": v}}
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
