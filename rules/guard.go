package rules

import (
	"regexp"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// Guards decide a match expression from the normalized call without
// running cel-go, when the parts of the expression that settle it are in
// the small fragment below: the normalized call's strings and lists, the
// tool's name, server and kind, list and string literals, indexing, size,
// comparisons, `in`, startsWith/endsWith/contains, literal matches, the
// logical operators and the exists and all macros. Most of the default
// pack's rules ask whether some command runs one of a few programs; a
// call that runs none of them is decided in a few comparisons instead of
// an interpretation of the whole rule.
//
// A guard evaluates with CEL's own semantics, errors included: anything
// outside the fragment, or that cel-go would evaluate to an error (an index
// out of range, a command that could not be analysed), is unknown, and
// unknown propagates as errors do in CEL (`false && x` is false and `true
// || x` true whatever x is; exists is true if any element is, all false if
// any element is). Only a true or false for the whole expression decides;
// otherwise cel-go evaluates the rule. A guard skips the evaluation's cost
// accounting, so it applies to a tracked expression only on calls within
// its cost bound (bound.go), where the limit cannot bite.

// gkind is a guard value's kind.
type gkind uint8

const (
	gUnknown gkind = iota
	gBool
	gInt
	gStr
	gList  // of strings
	gLists // of lists of strings
)

// gval is a guard value.
type gval struct {
	k  gkind
	b  bool
	i  int64
	s  string
	l  []string
	ll [][]string
}

var unknown = gval{}

func gbool(b bool) gval { return gval{k: gBool, b: b} }

// maxGuardDepth bounds the nesting of comprehensions a guard follows.
const maxGuardDepth = 8

// gnode evaluates one expression on a call; the comprehension variables
// in scope are in the activation's guardVars, by slot.
type gnode func(a *activation) gval

// guard is a compiled match expression's guard.
type guard struct{ root gnode }

// decide evaluates the guard on act's call; ok is false when the guard
// cannot tell, and cel-go must evaluate the expression.
func (g *guard) decide(act *activation) (matched, ok bool) {
	v := g.root(act)
	return v.b, v.k == gBool
}

// newGuard compiles the guard of a checked expression; nil when its
// root is outside the fragment.
func newGuard(checked *cel.Ast) *guard {
	na := checked.NativeRep()
	c := guardCompiler{refs: na.ReferenceMap(), scope: map[string]int{}}
	if n := c.compile(na.Expr()); n != nil {
		return &guard{root: n}
	}
	return nil
}

type guardCompiler struct {
	refs  map[int64]*ast.ReferenceInfo
	scope map[string]int // comprehension variables in scope, by slot
	depth int
}

// unknownNode is any expression outside the fragment.
func unknownNode(*activation) gval { return unknown }

// compile returns e's node; nil when e is outside the fragment (the
// caller then uses unknownNode).
func (c *guardCompiler) compile(e ast.Expr) gnode {
	if r, ok := c.refs[e.ID()]; ok && r.Value == nil && r.Name != "" &&
		(e.Kind() == ast.SelectKind || e.Kind() == ast.IdentKind && !c.inScope(e.AsIdent())) {
		return varNode(r.Name)
	}
	switch e.Kind() {
	case ast.LiteralKind:
		switch v := e.AsLiteral().(type) {
		case types.String:
			s := string(v)
			return func(*activation) gval { return gval{k: gStr, s: s} }
		case types.Int:
			i := int64(v)
			return func(*activation) gval { return gval{k: gInt, i: i} }
		case types.Bool:
			b := bool(v)
			return func(*activation) gval { return gbool(b) }
		}
	case ast.IdentKind:
		if slot, ok := c.scope[e.AsIdent()]; ok {
			return func(a *activation) gval { return a.guardVars[slot] }
		}
	case ast.ListKind:
		if len(e.AsList().OptionalIndices()) > 0 {
			return nil
		}
		var l []string
		for _, el := range e.AsList().Elements() {
			if el.Kind() != ast.LiteralKind {
				return nil
			}
			s, ok := el.AsLiteral().(types.String)
			if !ok {
				return nil
			}
			l = append(l, string(s))
		}
		return func(*activation) gval { return gval{k: gList, l: l} }
	case ast.CallKind:
		return c.call(e)
	case ast.ComprehensionKind:
		return c.comprehension(e.AsComprehension())
	}
	return nil
}

func (c *guardCompiler) inScope(name string) bool {
	_, ok := c.scope[name]
	return ok
}

// sub is compile, unknownNode for what is outside the fragment.
func (c *guardCompiler) sub(e ast.Expr) gnode {
	if n := c.compile(e); n != nil {
		return n
	}
	return unknownNode
}

func (c *guardCompiler) call(e ast.Expr) gnode {
	call := e.AsCall()
	args := call.Args()
	if call.IsMemberFunction() {
		target := c.sub(call.Target())
		switch fn := call.FunctionName(); {
		case fn == overloads.Size && len(args) == 0:
			return sizeNode(target)
		case len(args) == 1 && (fn == overloads.StartsWith || fn == overloads.EndsWith || fn == overloads.Contains):
			op := map[string]func(string, string) bool{
				overloads.StartsWith: strings.HasPrefix, overloads.EndsWith: strings.HasSuffix, overloads.Contains: strings.Contains,
			}[fn]
			arg := c.sub(args[0])
			return func(a *activation) gval {
				t, v := target(a), arg(a)
				if t.k != gStr || v.k != gStr {
					return unknown
				}
				return gbool(op(t.s, v.s))
			}
		case fn == overloads.Matches && len(args) == 1:
			return matchesNode(target, args[0])
		case fn == "trim" && len(args) == 0:
			return func(a *activation) gval {
				if v := target(a); v.k == gStr {
					return gval{k: gStr, s: strings.TrimSpace(v.s)}
				}
				return unknown
			}
		}
		return nil
	}
	switch fn := call.FunctionName(); {
	case fn == overloads.Size && len(args) == 1:
		return sizeNode(c.sub(args[0]))
	case fn == overloads.Matches && len(args) == 2:
		return matchesNode(c.sub(args[0]), args[1])
	case fn == operators.LogicalAnd || fn == operators.LogicalOr:
		nodes := make([]gnode, len(args))
		for i, a := range args {
			nodes[i] = c.sub(a)
		}
		return logicalNode(nodes, fn == operators.LogicalOr)
	case fn == operators.LogicalNot && len(args) == 1:
		x := c.sub(args[0])
		return func(a *activation) gval {
			if v := x(a); v.k == gBool {
				return gbool(!v.b)
			}
			return unknown
		}
	case fn == operators.Index && len(args) == 2:
		list, index := c.sub(args[0]), c.sub(args[1])
		return func(a *activation) gval {
			l, i := list(a), index(a)
			switch {
			case i.k != gInt:
			case l.k == gList && i.i >= 0 && i.i < int64(len(l.l)):
				return gval{k: gStr, s: l.l[i.i]}
			case l.k == gLists && i.i >= 0 && i.i < int64(len(l.ll)):
				return gval{k: gList, l: l.ll[i.i]}
			}
			return unknown
		}
	case fn == operators.In && len(args) == 2:
		x, list := c.sub(args[0]), c.sub(args[1])
		return func(a *activation) gval {
			v, l := x(a), list(a)
			if v.k != gStr || l.k != gList {
				return unknown
			}
			return gbool(slices.Contains(l.l, v.s))
		}
	case len(args) == 2 && slices.Contains([]string{operators.Equals, operators.NotEquals, operators.Less,
		operators.LessEquals, operators.Greater, operators.GreaterEquals}, fn):
		return compareNode(fn, c.sub(args[0]), c.sub(args[1]))
	}
	return nil
}

// logicalNode is && (or ||, when or) over its operands.
func logicalNode(nodes []gnode, or bool) gnode {
	return func(a *activation) gval {
		return combine(len(nodes), or, func(i int) gval { return nodes[i](a) })
	}
}

// combine joins n operands as CEL's && (or ||, when or) does: one false
// (true) operand decides, whatever the others are; otherwise an unknown
// one makes the result unknown.
func combine(n int, or bool, operand func(i int) gval) gval {
	all := true
	for i := range n {
		v := operand(i)
		if v.k != gBool {
			all = false
			continue
		}
		if v.b == or {
			return gbool(or)
		}
	}
	if all {
		return gbool(!or)
	}
	return unknown
}

// sizeNode is the size of a list (a string's size, in code points, is
// left to cel-go).
func sizeNode(x gnode) gnode {
	return func(a *activation) gval {
		switch v := x(a); v.k {
		case gList:
			return gval{k: gInt, i: int64(len(v.l))}
		case gLists:
			return gval{k: gInt, i: int64(len(v.ll))}
		}
		return unknown
	}
}

// matchesNode is x.matches(pattern) for a literal pattern; cel-go compiles
// it with regexp too. A pattern that does not compile is left to cel-go.
func matchesNode(x gnode, pattern ast.Expr) gnode {
	if pattern.Kind() != ast.LiteralKind {
		return nil
	}
	p, ok := pattern.AsLiteral().(types.String)
	if !ok {
		return nil
	}
	re, err := regexp.Compile(string(p))
	if err != nil {
		return nil
	}
	return func(a *activation) gval {
		if v := x(a); v.k == gStr {
			return gbool(re.MatchString(v.s))
		}
		return unknown
	}
}

// compareNode compares two strings or two ints; anything else (CEL's
// cross-type comparisons included) is left to cel-go.
func compareNode(op string, x, y gnode) gnode {
	return func(a *activation) gval {
		v, w := x(a), y(a)
		var c int
		switch {
		case v.k == gStr && w.k == gStr:
			c = strings.Compare(v.s, w.s)
		case v.k == gInt && w.k == gInt:
			c = compareInts(v.i, w.i)
		default:
			return unknown
		}
		switch op {
		case operators.Equals:
			return gbool(c == 0)
		case operators.NotEquals:
			return gbool(c != 0)
		case operators.Less:
			return gbool(c < 0)
		case operators.LessEquals:
			return gbool(c <= 0)
		case operators.Greater:
			return gbool(c > 0)
		}
		return gbool(c >= 0)
	}
}

func compareInts(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// comprehension follows the exists and all macros over a list; other
// comprehensions (map, filter, exists_one, cel.bind, two variables) are
// outside the fragment.
func (c *guardCompiler) comprehension(comp ast.ComprehensionExpr) gnode {
	if isBind(comp) && c.depth < maxGuardDepth {
		init := c.sub(comp.AccuInit())
		slot := c.depth
		body := c.scoped(comp.AccuVar(), slot, comp.Result())
		return func(a *activation) gval {
			a.guardVars[slot] = init(a)
			return body(a)
		}
	}
	if comp.HasIterVar2() || c.depth >= maxGuardDepth || comp.Result().Kind() != ast.IdentKind ||
		comp.Result().AsIdent() != comp.AccuVar() || comp.AccuInit().Kind() != ast.LiteralKind {
		return nil
	}
	init, ok := comp.AccuInit().AsLiteral().(types.Bool)
	step := comp.LoopStep()
	if !ok || step.Kind() != ast.CallKind || len(step.AsCall().Args()) != 2 {
		return nil
	}
	sargs := step.AsCall().Args()
	or := step.AsCall().FunctionName() == operators.LogicalOr
	if or == bool(init) || !or && step.AsCall().FunctionName() != operators.LogicalAnd ||
		sargs[0].Kind() != ast.IdentKind || sargs[0].AsIdent() != comp.AccuVar() {
		return nil
	}
	rng := c.sub(comp.IterRange())
	slot := c.depth
	pred := c.scoped(comp.IterVar(), slot, sargs[1])
	// exists (or) is true if any element is, false if all are false;
	// all is false if any element is, true if all are true.
	return func(a *activation) gval {
		r := rng(a)
		var n int
		switch r.k {
		case gList:
			n = len(r.l)
		case gLists:
			n = len(r.ll)
		default:
			return unknown
		}
		return combine(n, or, func(i int) gval {
			if r.k == gList {
				a.guardVars[slot] = gval{k: gStr, s: r.l[i]}
			} else {
				a.guardVars[slot] = gval{k: gList, l: r.ll[i]}
			}
			return pred(a)
		})
	}
}

// isBind says whether comp is cel.bind(var, init, body): a comprehension
// over an empty list whose accumulator is the variable.
func isBind(comp ast.ComprehensionExpr) bool {
	r, cond, step := comp.IterRange(), comp.LoopCondition(), comp.LoopStep()
	return !comp.HasIterVar2() && r.Kind() == ast.ListKind && len(r.AsList().Elements()) == 0 &&
		cond.Kind() == ast.LiteralKind && cond.AsLiteral() == types.False &&
		step.Kind() == ast.IdentKind && step.AsIdent() == comp.AccuVar()
}

// scoped compiles e with name bound to slot.
func (c *guardCompiler) scoped(name string, slot int, e ast.Expr) gnode {
	saved, shadowed := c.scope[name]
	c.scope[name] = slot
	c.depth++
	n := c.sub(e)
	c.depth--
	if shadowed {
		c.scope[name] = saved
	} else {
		delete(c.scope, name)
	}
	return n
}

// varNode reads a variable of the call; nil for one outside the fragment.
func varNode(name string) gnode {
	str := func(get func(*activation) string) gnode {
		return func(a *activation) gval { return gval{k: gStr, s: get(a)} }
	}
	switch name {
	case VarToolName:
		return str(func(a *activation) string { return a.c.Tool })
	case VarToolServer:
		return str(func(a *activation) string { return a.c.Server })
	case VarCallKind:
		return str(func(a *activation) string { return a.c.KindName() })
	case VarToolKind:
		return str(func(a *activation) string { return a.normalized().kind })
	case VarWorkspaceRoot, VarWorkspaceHome:
		return str(func(a *activation) string {
			switch {
			case a.ws == nil:
				return ""
			case name == VarWorkspaceRoot:
				return a.ws.Root
			}
			return a.ws.Home
		})
	}
	nv, ok := normVars[name]
	if !ok {
		return nil
	}
	return func(a *activation) gval {
		n := a.normalized()
		if n.err != nil {
			return unknown
		}
		switch nv {
		case nvCmdLine:
			return gval{k: gStr, s: n.line}
		case nvCmdCwd:
			return gval{k: gStr, s: n.cwd}
		case nvCmdArgv:
			return gval{k: gLists, ll: n.argv}
		case nvCmdCommands:
			return gval{k: gLists, ll: n.commands}
		}
		return gval{k: gList, l: n.strings(nv)}
	}
}
