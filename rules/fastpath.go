package rules

import (
	"regexp"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// Fast paths for the shapes nearly every argument check is built from:
// `args.?k.orValue(lit)`, `glob(x, "lit")` and `x.matches("lit")`. cel-go
// evaluates the first through an attribute resolution that allocates an
// optional per call, the second through a guarded overload and a
// pattern-cache lookup, and the third through a variadic call that
// allocates its argument slice; the nodes below compute the same values
// directly. Each falls back to the plan cel-go built whenever its inputs
// are not the plain case (args is not a map, the argument is not a string,
// a lookup errs), so errors and their messages are cel-go's own.
//
// They are installed only in programs that run without cost tracking (see
// compileExpr): the nodes do not report costs, so a tracked program keeps
// cel-go's plan and its exact cost accounting.

// fastPaths returns the program options that install the fast paths in
// one program; none when the expression has no node they apply to. Planning
// the program adds the number of fast nodes it installs to *installed.
func fastPaths(a *cel.Ast, adapter types.Adapter, globs globCache, installed *int) []cel.ProgramOption {
	orValues := argOrValues(a)
	hasGlob, hasMatches := false, false
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.CallKind {
			switch e.AsCall().FunctionName() {
			case FuncGlob:
				hasGlob = true
			case overloads.Matches:
				hasMatches = true
			}
		}
	}))
	var opts []cel.ProgramOption
	if len(orValues) > 0 || hasGlob {
		opts = append(opts, cel.CustomDecoratorV2(func(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
			if n, ok := orValues[i.ID()]; ok {
				*installed++
				return &argOrValue{id: i.ID(), key: n.key, def: n.def, adapter: adapter, orig: i}, nil
			}
			if n := newGlobLit(i, globs); n != nil {
				*installed++
				return n, nil
			}
			return i, nil
		}))
	}
	if hasMatches {
		// cel-go picks a regex optimization by overload id before function
		// name, so these take the place of its own for matches calls.
		factory := func(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
			n, err := newRegexLit(call, pattern)
			if err == nil {
				*installed++
			}
			return n, err
		}
		opts = append(opts, cel.OptimizeRegex(
			&interpreter.RegexOptimization{Function: overloads.Matches, OverloadID: overloads.MatchesString, RegexIndex: 1, Factory: factory},
			&interpreter.RegexOptimization{Function: overloads.Matches, OverloadID: overloads.Matches, RegexIndex: 1, Factory: factory},
		))
	}
	return opts
}

// argOrValues finds every `args.?k.orValue(lit)` in a checked expression,
// by the id of its orValue call.
func argOrValues(a *cel.Ast) map[int64]*argOrValue {
	na := a.NativeRep()
	refs := na.ReferenceMap()
	out := map[int64]*argOrValue{}
	ast.PreOrderVisit(na.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		if call.FunctionName() != "orValue" || !call.IsMemberFunction() || len(call.Args()) != 1 {
			return
		}
		if r, ok := refs[e.ID()]; ok && (len(r.OverloadIDs) != 1 || r.OverloadIDs[0] != "optional_orValue_value") {
			return
		}
		def := call.Args()[0]
		if def.Kind() != ast.LiteralKind {
			return
		}
		sel := call.Target()
		if sel.Kind() != ast.CallKind || sel.AsCall().FunctionName() != operators.OptSelect || len(sel.AsCall().Args()) != 2 {
			return
		}
		operand, field := sel.AsCall().Args()[0], sel.AsCall().Args()[1]
		if operand.Kind() != ast.IdentKind || operand.AsIdent() != VarArgs || field.Kind() != ast.LiteralKind {
			return
		}
		key, ok := field.AsLiteral().(types.String)
		if !ok {
			return
		}
		out[e.ID()] = &argOrValue{key: key, def: def.AsLiteral()}
	}))
	return out
}

// argOrValue is `args.?key.orValue(def)`: args' value at key, or def when
// args has no such key.
type argOrValue struct {
	id      int64
	key     types.String
	def     ref.Val
	adapter types.Adapter
	orig    interpreter.InterpretableV2 // cel-go's plan, for anything unusual
}

// stringKeyFinder is how cel-go's attribute resolution looks a field up
// in a map value first (the args map has it); the raw value it returns is
// then converted with the environment's adapter.
type stringKeyFinder interface {
	FindStringKey(string) (any, bool)
}

// ID implements interpreter.Interpretable.
func (n *argOrValue) ID() int64 { return n.id }

// Eval implements interpreter.Interpretable.
func (n *argOrValue) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, n.Exec)
}

// Exec implements interpreter.InterpretableV2. A present key yields its
// value converted as cel-go converts it (the optional cel-go would wrap it
// in is unwrapped at once by orValue); an absent one yields def. Anything
// else takes cel-go's plan.
//
// In the frame Eval starts with, whose scope is the call's activation, args
// is the activation's, and the lookup is cached for the whole call. In any
// other frame (there is none in a program without comprehensions, the only
// kind the node is installed in) args is resolved through the frame, as
// cel-go does, so a local variable named args would be honoured.
func (n *argOrValue) Exec(f *interpreter.ExecutionFrame) ref.Val {
	var (
		val ref.Val
		res argResult
	)
	if act, ok := f.Scope().(*activation); ok {
		val, res = act.arg(n.key, n.adapter)
	} else if v, found := f.ResolveName(VarArgs); found {
		val, res = lookupArg(v, n.key, n.adapter)
	}
	switch res {
	case argPresent:
		return val
	case argAbsent:
		return n.def
	}
	return n.orig.Exec(f)
}

// argResult is what looking a key up in args found.
type argResult uint8

const (
	argOther   argResult = iota // not a plain lookup: let cel-go decide
	argPresent                  // the key's value
	argAbsent                   // no such key
)

// lookupArg looks key up in the value args resolved to, as cel-go's
// optional field selection does: first the map's FindStringKey, converting
// the raw value it returns with the environment's adapter, then, when that
// misses, the map's Find.
func lookupArg(v any, key types.String, adapter types.Adapter) (ref.Val, argResult) {
	m, ok := v.(stringKeyFinder)
	if !ok {
		return nil, argOther
	}
	if raw, ok := m.FindStringKey(string(key)); ok {
		return adapter.NativeToValue(raw), argPresent
	}
	if mp, ok := v.(traits.Mapper); ok {
		if val, found := mp.Find(key); !found && (val == nil || !types.IsError(val)) {
			return nil, argAbsent
		}
	}
	return nil, argOther
}

// globLit is `glob(x, "pattern")` with the pattern compiled at load time.
type globLit struct {
	id   int64
	name interpreter.InterpretableV2
	g    globPattern
	orig interpreter.InterpretableV2
}

// newGlobLit returns the fast node for i, or nil if i is not a glob call
// with a literal pattern compiled at load time.
func newGlobLit(i interpreter.InterpretableV2, globs globCache) *globLit {
	call, ok := i.(interpreter.InterpretableCall)
	if !ok || call.Function() != FuncGlob || call.OverloadID() != "glob_string_string" || len(call.Args()) != 2 {
		return nil
	}
	c, ok := call.Args()[1].(interpreter.InterpretableConst)
	if !ok {
		return nil
	}
	p, ok := c.Value().(types.String)
	if !ok {
		return nil
	}
	g, ok := globs[string(p)]
	if !ok {
		return nil
	}
	return &globLit{id: i.ID(), name: call.Args()[0], g: g, orig: i}
}

// ID implements interpreter.Interpretable.
func (n *globLit) ID() int64 { return n.id }

// Eval implements interpreter.Interpretable.
func (n *globLit) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, n.Exec)
}

// Exec implements interpreter.InterpretableV2. Anything but a string name
// (an error, a value of another type) is left to cel-go's plan, which
// evaluates the name again: expressions have no side effects.
func (n *globLit) Exec(f *interpreter.ExecutionFrame) ref.Val {
	if s, ok := n.name.Exec(f).(types.String); ok {
		return types.Bool(n.g.match(string(s)))
	}
	return n.orig.Exec(f)
}

// regexLit is `x.matches("pattern")` (or `matches(x, "pattern")`) with the
// pattern compiled at load time. gen is the node cel-go's own regex
// optimization (interpreter.MatchesRegexOptimization) would have built.
type regexLit struct {
	interpreter.InterpretableCall
	name interpreter.InterpretableV2
	re   *regexp.Regexp
}

// newRegexLit is an interpreter.RegexOptimization factory. It compiles the
// pattern and builds cel-go's node exactly as MatchesRegexOptimization
// does, so errors and fallbacks are the same, and wraps it.
func newRegexLit(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	gen := interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(), func(values ...ref.Val) ref.Val {
		if len(values) != 2 {
			return types.NoSuchOverloadErr()
		}
		in, ok := values[0].Value().(string)
		if !ok {
			return types.NoSuchOverloadErr()
		}
		return types.Bool(re.MatchString(in))
	})
	return &regexLit{InterpretableCall: gen, name: call.Args()[0], re: re}, nil
}

// Eval implements interpreter.Interpretable.
func (n *regexLit) Eval(act interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(act, n.Exec)
}

// Exec implements interpreter.InterpretableV2. Anything but a string is
// left to cel-go's node, which evaluates the name again: expressions have
// no side effects.
func (n *regexLit) Exec(f *interpreter.ExecutionFrame) ref.Val {
	if s, ok := n.name.Exec(f).(types.String); ok {
		return types.Bool(n.re.MatchString(string(s)))
	}
	return n.InterpretableCall.Exec(f)
}
