package rules

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"cel.dev/cel-go/cel"

	"github.com/toolgate/toolgate"
)

// boundCalls are the default pack's test cases, the benchmark's calls and
// random shell commands of up to a few hundred words, so that some come
// close to the bounds.
func boundCalls(t *testing.T) []toolgate.Call {
	t.Helper()
	cases := defaultCases(t)
	var calls []toolgate.Call
	for _, c := range cases {
		calls = append(calls, c.Call)
	}
	for _, c := range packCalls() {
		calls = append(calls, c)
	}
	words := []string{"git", "push", "-f", "origin", "main", "rm", "-rf", "./build", "npm", "install", "left-pad", "&&", ";",
		"|", "sh", "curl", "https://example.com/x.sh", "cat", "~/.ssh/id_rsa", "$(id)", "kubectl", "delete", "ns", "prod",
		"echo", "$TOKEN", "find", ".", "-delete", "sudo", "docker", "run", "python3", "-c", "'print(1)'", "/etc/passwd",
		strings.Repeat("x", 200), "terraform", "destroy", "go", "test", "./...", ">", "out.txt"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		n := 1 + rng.IntN([]int{4, 16, 64, 300}[rng.IntN(4)])
		line := make([]string, n)
		for i := range line {
			line[i] = words[rng.IntN(len(words))]
		}
		calls = append(calls, toolgate.Call{Server: "workspace", Tool: "run_command", Args: map[string]any{"command": strings.Join(line, " ")}})
	}
	return calls
}

// TestCostBoundSound checks what running an expression untracked relies
// on: on every call within an expression's bound, the cost cel-go charges
// the tracked program is at most its estimate for the call's sizes, and
// so below CostLimit. It also fails if the bounds stop applying to the
// default pack's common calls.
func TestCostBoundSound(t *testing.T) {
	env, err := newEnv(&funcs{globs: globCache{}, vars: varIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	var errs errorList
	f := decodeFile("default.yaml", defaultPack, &errs)
	s := Default().WithWorkspace(packWorkspace)
	checked := make([]*cel.Ast, len(f.rules))
	for i, spec := range f.rules {
		a, iss := env.Compile(spec.match.Value)
		if iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		checked[i] = a
	}
	within, bounded := 0, 0
	for _, r := range s.rules {
		if r.match.free != nil && r.match.bound.fits(size{}) {
			bounded++
		}
	}
	if bounded < 15 {
		t.Errorf("only %d of the pack's expressions have a cost bound", bounded)
	}
	for _, c := range boundCalls(t) {
		act := s.acts.get(&c, &s.ws, s.kinds)
		for i, r := range s.rules {
			p := &r.match
			if p.free == nil || !p.fits(act) {
				continue
			}
			within++
			var z size
			for _, v := range p.vars {
				z = z.max(act.varSize(v))
			}
			est, err := env.EstimateCost(checked[i], sizeEstimator{z})
			if err != nil {
				t.Fatal(err)
			}
			_, det, err := p.prg.Eval(act)
			if err != nil && strings.Contains(err.Error(), "cost limit") {
				t.Fatalf("%s on %v: %v, within the bound %v", r.name, c.Args, err, z)
			}
			if actual := det.ActualCost(); actual == nil || *actual > est.Max || est.Max > CostLimit {
				t.Fatalf("%s on %v: cost %v, estimate %d for sizes %v", r.name, c.Args, actual, est.Max, z)
			}
		}
		s.acts.put(act)
	}
	if within < 1000 {
		t.Errorf("only %d evaluations within their bound", within)
	}
	for name, c := range packCalls() {
		act := s.acts.get(&c, &s.ws, s.kinds)
		for _, r := range s.rules {
			if r.match.free != nil && r.match.bound.fits(size{}) && !r.match.fits(act) {
				t.Errorf("%s: %s runs tracked", name, r.name)
			}
		}
		s.acts.put(act)
	}
}

// TestCostBoundFallsBack: a call beyond an expression's bound runs it
// tracked, so the cost limit still stops it.
func TestCostBoundFallsBack(t *testing.T) {
	s := mustParse(t, `version: 1
on_error: deny
default: allow
rules:
  - name: runaway
    match: 'args.l.map(a, args.l.map(b, a + b)).size() < 0'
    action: allow
`)
	if p := s.rules[0].match; p.free == nil || !p.bound.fits(size{lists: 4, strs: 1}) {
		t.Fatal("no bound for a two-level comprehension")
	}
	call := func(n int) toolgate.Call {
		l := make([]any, n)
		for i := range l {
			l[i] = float64(i)
		}
		return toolgate.Call{Args: map[string]any{"l": l}}
	}
	if d := s.Evaluate(context.Background(), call(4)); d.Action != toolgate.Allow || d.Error != "" {
		t.Errorf("small call: %+v", d)
	}
	if d := s.Evaluate(context.Background(), call(2000)); d.Action != toolgate.Deny || !strings.Contains(d.Error, "cost limit") {
		t.Errorf("large call: %+v", d)
	}
}

// TestDefaultPackConcurrentFirstUse decides calls at once on a fresh
// default pack, whose cost bounds and tool kinds are computed on first
// use, and requires the decisions of the general path.
func TestDefaultPackConcurrentFirstUse(t *testing.T) {
	fresh, err := Parse("default.yaml", defaultPack)
	if err != nil {
		t.Fatal(err)
	}
	fresh = fresh.WithWorkspace(packWorkspace)
	general := mustParseGeneral(t, string(defaultPack)).WithWorkspace(packWorkspace)
	ctx := context.Background()
	var calls []toolgate.Call
	for _, c := range packCalls() {
		calls = append(calls, c)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := range 20 {
				c := calls[(g+n)%len(calls)]
				if d, want := fresh.Evaluate(ctx, c), general.Evaluate(ctx, c); !reflect.DeepEqual(d, want) {
					t.Errorf("%s: %+v, want %+v", c.Tool, d, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// mustParseGeneral compiles data without the evaluation shortcuts.
func mustParseGeneral(t testing.TB, data string) *Set {
	t.Helper()
	s, err := parse("rules.yaml", []byte(data), false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
