package rules

import (
	"regexp"
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// A need is what a match expression cannot be true without: at least one
// of its atoms holds in the call. The atoms are "the normalized variable
// (a list, cmd.line or cmd.cwd) is not empty" (a bit of vars, by normVar)
// and "tool.kind is one of kinds". Most of the default pack's rules look
// only at what a command runs or a path names, so a call that runs no
// command and names no path skips them without evaluating them. A need
// with no atoms is an expression that is never true.
//
// The analysis claims more than "not true": when no atom holds, evaluating
// the expression runs only the parts the analysis looked at, each on empty
// lists and strings, and it ends false, never in an error. So it cannot
// reach a cost limit either (matchNeed bounds the expression's size), and
// skipping it decides as evaluating would. cel-go evaluates && and || left
// to right and stops at the first term that decides, so a need comes from
// an operand that runs first, or from both; cel.bind's value always runs,
// so it too must be one the analysis reads. Any expression shape not
// recognised below has no need, and runs.
type need struct {
	vars  uint32
	kinds []string
}

func (n need) or(o need) need {
	kinds := slices.Clone(n.kinds)
	for _, k := range o.kinds {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return need{vars: n.vars | o.vars, kinds: kinds}
}

// holds says whether the call might satisfy the need: some atom holds, or
// the command could not be analysed (every normalized list is then an
// error value, which the expression must see).
func (n *need) holds(a *activation) bool {
	nc := a.normalized()
	if nc.err != nil || slices.Contains(n.kinds, nc.kind) {
		return true
	}
	for v := range numNormVars {
		if n.vars&(1<<v) == 0 {
			continue
		}
		var l int
		switch v {
		case nvCmdLine:
			l = len(nc.line)
		case nvCmdCwd:
			l = len(nc.cwd)
		case nvCmdArgv:
			l = len(nc.argv)
		case nvCmdCommands:
			l = len(nc.commands)
		default:
			l = len(nc.strings(v))
		}
		if l > 0 {
			return true
		}
	}
	return false
}

// matchNeed returns the need of a checked boolean expression; ok false
// when it has none.
func matchNeed(checked *cel.Ast) (need, bool) {
	na := checked.NativeRep()
	nodes := 0
	ast.PostOrderVisit(na.Expr(), ast.NewExprVisitor(func(ast.Expr) { nodes++ }))
	if nodes > maxNeedNodes {
		return need{}, false
	}
	w := needWalker{refs: na.ReferenceMap(), scope: map[string]*bound{}}
	return w.when(na.Expr(), true)
}

// maxNeedNodes bounds the size of an expression given a need: evaluated
// on empty inputs, each node costs a few units at most, far from CostLimit.
const maxNeedNodes = CostLimit / 100

// bound is what the analysis knows of a variable cel.bind binds: the needs
// of its value being empty (a list), false and true (a bool), by index
// emptyIdx, 0 and 1, each with its ok.
type bound struct {
	needs [3]need
	ok    [3]bool
}

const emptyIdx = 2

// needWalker computes needs, knowing the comprehension variables in scope
// (nil: a variable it knows nothing of, which shadows any declared one).
type needWalker struct {
	refs  map[int64]*ast.ReferenceInfo
	scope map[string]*bound
}

// idx is a bool's index in bound.
func idx(v bool) int {
	if v {
		return 1
	}
	return 0
}

// when is the need of e evaluating to v. The two are duals: what || is
// for true, && is for false.
func (w needWalker) when(e ast.Expr, v bool) (need, bool) {
	both, either := operators.LogicalOr, operators.LogicalAnd
	if !v {
		both, either = either, both
	}
	switch e.Kind() {
	case ast.LiteralKind:
		if b, ok := e.AsLiteral().(types.Bool); ok && bool(b) != v {
			return need{}, true
		}
	case ast.IdentKind:
		if b := w.scope[e.AsIdent()]; b != nil && b.ok[idx(v)] {
			return b.needs[idx(v)], true
		}
	case ast.ComprehensionKind:
		return w.comprehension(e, v)
	case ast.CallKind:
		call := e.AsCall()
		args := call.Args()
		fn := call.FunctionName()
		switch {
		case fn == both:
			// Both sides must not be v.
			l, lok := w.when(args[0], v)
			r, rok := w.when(args[1], v)
			return l.or(r), lok && rok
		case fn == either:
			// The first side, run first, decides when it is not v.
			return w.when(args[0], v)
		case fn == operators.LogicalNot:
			return w.when(args[0], !v)
		case v && (fn == operators.Equals || fn == operators.In) || !v && fn == operators.NotEquals:
			if kinds, ok := w.kindIn(call); ok {
				return need{kinds: kinds}, true
			}
		}
		if !v {
			// L.size() == 0 is false only for a list that is not empty.
			if fn == operators.Equals {
				return w.sizeCompared(call, func(n int64) bool { return n == 0 })
			}
			return need{}, false
		}
		switch fn {
		case overloads.Matches, overloads.StartsWith, overloads.EndsWith, overloads.Contains:
			return w.stringTest(call)
		case operators.Equals:
			return w.sizeCompared(call, func(n int64) bool { return n >= 1 })
		case operators.Greater:
			return w.sizeCompared(call, func(n int64) bool { return n >= 0 })
		case operators.GreaterEquals:
			return w.sizeCompared(call, func(n int64) bool { return n >= 1 })
		case operators.NotEquals:
			return w.sizeCompared(call, func(n int64) bool { return n == 0 })
		}
	}
	return need{}, false
}

// nonEmpty is the need of the list e not being empty: when no atom holds,
// e evaluates to an empty list.
func (w needWalker) nonEmpty(e ast.Expr) (need, bool) {
	switch e.Kind() {
	case ast.ListKind:
		if len(e.AsList().Elements()) == 0 {
			return need{}, true
		}
	case ast.IdentKind, ast.SelectKind:
		if e.Kind() == ast.IdentKind {
			if b, local := w.scope[e.AsIdent()]; local {
				if b != nil && b.ok[emptyIdx] {
					return b.needs[emptyIdx], true
				}
				return need{}, false
			}
		}
		if v, ok := normVars[w.varName(e)]; ok && v != nvKind && v != nvCmdLine && v != nvCmdCwd {
			return need{vars: 1 << v}, true
		}
	case ast.ComprehensionKind:
		// filter and map: an empty range leaves the empty list they start with.
		c := e.AsComprehension()
		init := c.AccuInit()
		if w.isAccu(c) && init.Kind() == ast.ListKind && len(init.AsList().Elements()) == 0 {
			return w.inner(c).nonEmpty(c.IterRange())
		}
	}
	return need{}, false
}

// comprehension is the need of a comprehension's value being v: through
// its result for cel.bind, whose range is the empty list; through its range
// for exists (for v false, all), whose value on an empty range is its
// initial false (true).
func (w needWalker) comprehension(e ast.Expr, v bool) (need, bool) {
	c := e.AsComprehension()
	r := c.IterRange()
	if r.Kind() == ast.ListKind && len(r.AsList().Elements()) == 0 {
		// cel.bind(accu, init, result): the loop never runs.
		init := c.AccuInit()
		b := &bound{}
		b.needs[emptyIdx], b.ok[emptyIdx] = w.nonEmpty(init)
		for _, bv := range []bool{false, true} {
			b.needs[idx(bv)], b.ok[idx(bv)] = w.when(init, bv)
		}
		if !slices.Contains(b.ok[:], true) {
			return need{}, false // init runs, and could be costly
		}
		in := w.inner(c)
		in.scope[c.AccuVar()] = b
		return in.when(c.Result(), v)
	}
	if !w.isAccu(c) || c.AccuInit().Kind() != ast.LiteralKind {
		return need{}, false
	}
	if b, ok := c.AccuInit().AsLiteral().(types.Bool); ok && bool(b) != v {
		return w.nonEmpty(r)
	}
	return need{}, false
}

// isAccu says whether c's result is its accumulator, so that its value on
// an empty range is its initial value.
func (w needWalker) isAccu(c ast.ComprehensionExpr) bool {
	res := c.Result()
	return res.Kind() == ast.IdentKind && res.AsIdent() == c.AccuVar()
}

// inner is w inside comprehension c, whose variables shadow any outside.
func (w needWalker) inner(c ast.ComprehensionExpr) needWalker {
	scope := make(map[string]*bound, len(w.scope)+3)
	for k, v := range w.scope {
		scope[k] = v
	}
	scope[c.IterVar()], scope[c.AccuVar()] = nil, nil
	if c.HasIterVar2() {
		scope[c.IterVar2()] = nil
	}
	return needWalker{refs: w.refs, scope: scope}
}

// varName is the declared variable e refers to, "" for none.
func (w needWalker) varName(e ast.Expr) string {
	if r, ok := w.refs[e.ID()]; ok && r.Value == nil {
		return r.Name
	}
	if e.Kind() == ast.IdentKind {
		return e.AsIdent()
	}
	return ""
}

// kindIn reads `tool.kind == "x"`, `"x" == tool.kind`, `tool.kind != "x"`
// and `tool.kind in ["x", ...]` as the kinds named.
func (w needWalker) kindIn(call ast.CallExpr) ([]string, bool) {
	args := call.Args()
	if len(args) != 2 {
		return nil, false
	}
	isKind := func(e ast.Expr) bool {
		if e.Kind() == ast.IdentKind {
			if _, local := w.scope[e.AsIdent()]; local {
				return false
			}
		}
		return w.varName(e) == VarToolKind
	}
	str := func(e ast.Expr) (string, bool) {
		if e.Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().(types.String)
		return string(s), ok
	}
	if call.FunctionName() == operators.In {
		if !isKind(args[0]) || args[1].Kind() != ast.ListKind {
			return nil, false
		}
		var kinds []string
		for _, el := range args[1].AsList().Elements() {
			s, ok := str(el)
			if !ok {
				return nil, false
			}
			kinds = append(kinds, s)
		}
		return kinds, true
	}
	for i := range 2 {
		if s, ok := str(args[1-i]); ok && isKind(args[i]) {
			return []string{s}, true
		}
	}
	return nil, false
}

// sizeCompared reads `L.size() OP n` (or `size(L) OP n`) for a list L and
// an int literal n that lit accepts, as L's nonEmpty need.
func (w needWalker) sizeCompared(call ast.CallExpr, lit func(int64) bool) (need, bool) {
	args := call.Args()
	if len(args) != 2 || args[0].Kind() != ast.CallKind || args[1].Kind() != ast.LiteralKind {
		return need{}, false
	}
	n, ok := args[1].AsLiteral().(types.Int)
	if !ok || !lit(int64(n)) {
		return need{}, false
	}
	size := args[0].AsCall()
	if size.FunctionName() != overloads.Size {
		return need{}, false
	}
	switch {
	case size.IsMemberFunction() && len(size.Args()) == 0:
		return w.nonEmpty(size.Target())
	case !size.IsMemberFunction() && len(size.Args()) == 1:
		return w.nonEmpty(size.Args()[0])
	}
	return need{}, false
}

// stringTest reads `s.matches(re)`, `s.startsWith(lit)`, `s.endsWith(lit)`
// and `s.contains(lit)` for cmd.line or cmd.cwd and a literal no empty
// string passes, as the need of s not being empty.
func (w needWalker) stringTest(call ast.CallExpr) (need, bool) {
	if !call.IsMemberFunction() || len(call.Args()) != 1 || call.Args()[0].Kind() != ast.LiteralKind {
		return need{}, false
	}
	lit, ok := call.Args()[0].AsLiteral().(types.String)
	if !ok {
		return need{}, false
	}
	if call.FunctionName() == overloads.Matches {
		re, err := regexp.Compile(string(lit))
		if err != nil || re.MatchString("") {
			return need{}, false
		}
	} else if lit == "" {
		return need{}, false
	}
	t := call.Target()
	if t.Kind() == ast.IdentKind {
		if _, local := w.scope[t.AsIdent()]; local {
			return need{}, false
		}
	}
	if v, ok := normVars[w.varName(t)]; ok && (v == nvCmdLine || v == nvCmdCwd) {
		return need{vars: 1 << v}, true
	}
	return need{}, false
}
