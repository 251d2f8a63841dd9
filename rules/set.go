package rules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"go.yaml.in/yaml/v3"

	"github.com/toolgate/toolgate"
)

// Limits applied to every expression that can loop (uses a comprehension
// such as exists, all, map, filter or cel.bind). Expressions without one run
// in time linear in the call's size and skip cost tracking, which would
// otherwise triple their cost.
const (
	// CostLimit is the most CEL cost units one evaluation of one expression
	// may spend (about 0.1 s of work); beyond it the evaluation fails and
	// on_error applies.
	CostLimit = 1_000_000
	// interruptEvery is how many comprehension iterations run between checks
	// of the context's cancellation.
	interruptEvery = 100
)

// Set is a compiled, immutable rule set. Safe for concurrent use; evaluation
// has no side effects. *Set implements the gate's Decider.
type Set struct {
	name      string
	version   string
	source    []byte // the file's contents, as compiled
	label     string
	def       toolgate.Action
	onError   toolgate.Action
	rules     []*rule
	byTool    map[string][]int // indexed rules per tool name, in file order
	unindexed []int            // rules any tool may match, in file order
	hasShadow bool
	// limits are the file-level confidence thresholds, applied to every call.
	limits limits
	acts   activations // recycled per-call state
	kinds  *kindCache  // tool.kind per tool definition
	// ws is where calls run, for the normalized call (WithWorkspace).
	ws Workspace
}

// limits are confidence thresholds that tighten; < 0 means not set.
type limits struct {
	denyBelow, reviewBelow float64
}

// rule is one compiled rule.
type rule struct {
	name          string
	line          int
	action        toolgate.Action
	shadow        bool
	reason        string
	match         program
	reasonExpr    *program
	autoApproveAt float64 // < 0: not set
	limits        limits  // the rule's own thresholds
	sandbox       string
	sessionGrant  time.Duration
	review        toolgate.ReviewPolicy
	tools         []string
	// toolKinds and callKinds, when not nil, are the only tool.kind and
	// call.kind values the match can be true for (see conjunctStrings);
	// matches skips the program for the others, deciding "no match" as the
	// program would: both variables are always strings (tool.kind even when
	// the command cannot be analysed), so the guarding conjunct is false,
	// never an error. Like the tool.name index, a guard that is not the
	// first conjunct also spares the call an earlier conjunct's cost-limit
	// error; the default pack's guards all come first.
	toolKinds []string
	callKinds []string
	// need, when not nil, is what the match cannot be true without (see
	// need.go); matches skips the program for a call that lacks it.
	need *need
	// reads says which call inputs that differ on every call the rule's
	// expressions read (see Memo).
	reads reads
}

// reads names the variables of one call's own that expressions read.
type reads struct{ now, session bool }

// add records the variables checked reads: every identifier the checker
// resolved to a declared variable.
func (r *reads) add(checked *cel.Ast) {
	for _, ref := range checked.NativeRep().ReferenceMap() {
		switch {
		case ref.Value != nil:
		case ref.Name == VarNow:
			r.now = true
		case ref.Name == VarSessionID:
			r.session = true
		}
	}
}

// program is a compiled expression; tracked ones run with cost limits and
// context checks, each in a frame of its own, while the others share one
// frame per call (activation.execFrame).
type program struct {
	prg     cel.Program
	tracked bool
	// free is a tracked expression's program without cost tracking, run
	// instead of prg on calls whose inputs (the variables vars names) are
	// within bound, where the expression cannot reach CostLimit (see
	// bound.go); nil for an untracked expression.
	free  cel.Program
	bound *costBound
	vars  []varRef
}

// fits says whether act's call is within p's bound.
func (p *program) fits(act *activation) bool {
	var z size
	for _, v := range p.vars {
		z = z.max(act.varSize(v))
	}
	return p.bound.fits(z)
}

func (p *program) eval(ctx context.Context, act *activation) (ref.Val, error) {
	var (
		v   ref.Val
		err error
	)
	if p.tracked {
		// As prg.ContextEval, in the call's shared tracked frame: the
		// tracker left by the previous program is dropped, so the cost
		// limit applies to each program alone.
		f, ferr := act.trackedFrame(ctx)
		if ferr != nil {
			return nil, ferr
		}
		prg := p.prg
		if p.free != nil && p.fits(act) {
			prg = p.free
		}
		f.SetCostTracker(nil)
		v, _, err = prg.Eval(f)
		f.SetCostTracker(nil)
		if err != nil && errors.Is(err, interpreter.InterruptError{}) {
			err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
	} else {
		f, ferr := act.execFrame()
		if ferr != nil {
			return nil, ferr
		}
		v, _, err = p.prg.Eval(f)
	}
	if err != nil {
		return nil, err
	}
	if types.IsError(v) {
		if e, ok := v.(*types.Err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("%v", v)
	}
	return v, nil
}

// Parse compiles a rules file's contents; name is used in error positions.
// On error it returns every problem found (see Error), never a partial Set.
func Parse(name string, data []byte) (*Set, error) {
	return parse(name, data, true)
}

// parse is Parse; fast false leaves out the evaluation shortcuts (the
// cost bounds of bound.go, the kind guards and needs of rule.matches), so
// tests can check they never change a decision.
func parse(name string, data []byte, fast bool) (*Set, error) {
	var errs errorList
	f := decodeFile(name, data, &errs)
	if f == nil {
		return nil, errs.err()
	}
	fn := &funcs{globs: globCache{}, vars: varIDs{}}
	env, err := newEnv(fn)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	src := newSource(data)
	sum := sha256.Sum256(data)
	s := &Set{
		name:    name,
		version: "sha256:" + hex.EncodeToString(sum[:])[:12],
		source:  bytes.Clone(data),
		label:   f.label,
		def:     f.def,
		onError: f.onError,
		byTool:  map[string][]int{},
		kinds:   newKindCache(),
		limits:  limits{denyBelow: orUnset(f.denyBelow), reviewBelow: orUnset(f.reviewBelow)},
	}
	for i, spec := range f.rules {
		label := spec.name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		r := &rule{
			name:          spec.name,
			line:          spec.node.Line,
			action:        spec.action,
			shadow:        spec.shadow,
			reason:        spec.reason,
			sandbox:       spec.sandbox,
			sessionGrant:  spec.sessionGrant,
			review:        spec.review,
			autoApproveAt: orUnset(spec.autoApproveAt),
			limits:        limits{denyBelow: orUnset(spec.denyBelow), reviewBelow: orUnset(spec.reviewBelow)},
		}
		if spec.match != nil {
			p, checked, ok := compileExpr(env, fn, fast, src, name, label, "match", spec.match, cel.BoolType, &errs)
			if ok {
				r.match = p
				r.reads.add(checked)
				r.tools = conjunctStrings(checked, VarToolName)
				if fast {
					r.toolKinds = conjunctStrings(checked, VarToolKind)
					r.callKinds = conjunctStrings(checked, VarCallKind)
					if n, ok := matchNeed(checked); ok {
						r.need = &n
					}
				}
			}
		}
		if spec.reasonExpr != nil {
			if p, checked, ok := compileExpr(env, fn, fast, src, name, label, "reason_expr", spec.reasonExpr, cel.StringType, &errs); ok {
				r.reasonExpr = &p
				r.reads.add(checked)
			}
		}
		s.rules = append(s.rules, r)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	for i, r := range s.rules {
		s.hasShadow = s.hasShadow || r.shadow
		if len(r.tools) == 0 {
			s.unindexed = append(s.unindexed, i)
			continue
		}
		for _, t := range r.tools {
			if l := s.byTool[t]; len(l) == 0 || l[len(l)-1] != i {
				s.byTool[t] = append(l, i)
			}
		}
	}
	return s, nil
}

// Sandboxes returns the sandbox profiles the set's rules name, each with
// the first rule that names it ("rules.yaml:12 (rule shell)"), so the
// caller can refuse a set that names a profile it does not have.
func (s *Set) Sandboxes() map[string]string {
	out := map[string]string{}
	for _, r := range s.rules {
		if _, seen := out[r.sandbox]; r.sandbox != "" && !seen {
			out[r.sandbox] = fmt.Sprintf("%s:%d (rule %s)", s.name, r.line, r.name)
		}
	}
	return out
}

// orUnset returns *p, or -1 (not set) for nil.
func orUnset(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// AutoApproveSandboxes returns the sandbox profiles named by rules that
// have auto_approve_at, each with the first such rule ("rules.yaml:12
// (rule build)"), so the caller can refuse a set whose auto-approved calls
// could leave the sandbox (a profile with network or with writes outside
// the workspace). Parse already refuses such a rule without a profile, or
// with none.
func (s *Set) AutoApproveSandboxes() map[string]string {
	out := map[string]string{}
	for _, r := range s.rules {
		if _, seen := out[r.sandbox]; r.autoApproveAt >= 0 && r.sandbox != "" && !seen {
			out[r.sandbox] = fmt.Sprintf("%s:%d (rule %s)", s.name, r.line, r.name)
		}
	}
	return out
}

// Load reads and compiles a rules file; the path DefaultName ("@default")
// is the embedded default pack.
func Load(path string) (*Set, error) {
	if path == DefaultName {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return Parse(path, data)
}

// compileExpr type-checks one expression and builds its program, with a
// program without cost tracking for bounded calls (bound.go) when fast is
// set. Problems are added to errs at
// their position in the file.
func compileExpr(env *cel.Env, fn *funcs, fast bool, src *source, file, rule, field string, n *yaml.Node, want *cel.Type, errs *errorList) (program, *cel.Ast, bool) {
	if strings.TrimSpace(n.Value) == "" {
		errs.add(file, n, rule, field, "empty expression")
		return program{}, nil, false
	}
	checked, iss := env.Compile(n.Value)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			line, col := src.locate(n, e.Location.Line(), e.Location.Column())
			*errs = append(*errs, &Error{File: file, Line: line, Column: col, Rule: rule, Field: field, Msg: celHint(e.Message)})
		}
		return program{}, nil, false
	}
	if out := checked.OutputType(); !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
		errs.add(file, n, rule, field, "must be a %s expression, but its type is %s", want, out)
		return program{}, nil, false
	}
	globs := fn.globs
	tracked := hasComprehension(checked)
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.OptimizeRegex(regexOptimizations...)}
	if tracked {
		opts = append(opts, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(interruptEvery))
	}
	// Literal glob patterns are checked and compiled now, once.
	for _, lit := range globLiterals(checked) {
		g, err := compilePattern(lit.pattern)
		if err != nil {
			loc := checked.NativeRep().SourceInfo().GetStartLocation(lit.id)
			line, col := src.locate(n, loc.Line(), loc.Column())
			*errs = append(*errs, &Error{File: file, Line: line, Column: col, Rule: rule, Field: field, Msg: err.Error()})
			return program{}, nil, false
		}
		globs[lit.pattern] = g
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		errs.add(file, n, rule, field, "%v", err)
		return program{}, nil, false
	}
	p := program{prg: prg, tracked: tracked}
	if !tracked || !fast {
		return p, checked, true
	}
	p.bound, p.vars = &costBound{env: env, checked: checked}, fn.vars.refs(readVars(checked))
	free := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.OptimizeRegex(regexOptimizations...), cel.InterruptCheckFrequency(interruptEvery)}
	if p.free, err = env.Program(checked, free...); err != nil {
		errs.add(file, n, rule, field, "%v", err)
		return program{}, nil, false
	}
	return p, checked, true
}

// readVars returns the variables a checked expression reads.
func readVars(checked *cel.Ast) []string {
	var out []string
	for _, r := range checked.NativeRep().ReferenceMap() {
		if r.Value == nil && r.Name != "" && !slices.Contains(out, r.Name) {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}

// celHint adds advice to cel-go messages that rule authors commonly hit.
func celHint(msg string) string {
	if strings.Contains(msg, "optional_type(double)") {
		return msg + " (confidence is optional because it may be unknown: use confidence.orValue(x), confidence.hasValue(), or the rule's deny_below / auto_approve_at)"
	}
	return msg
}

func hasComprehension(a *cel.Ast) bool {
	found := false
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

type globLiteral struct {
	pattern string
	id      int64
}

// globLiterals returns the literal patterns passed to glob, so a malformed
// one is a load-time error rather than a runtime one.
func globLiterals(a *cel.Ast) []globLiteral {
	var out []globLiteral
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind || e.AsCall().FunctionName() != FuncGlob || len(e.AsCall().Args()) != 2 {
			return
		}
		p := e.AsCall().Args()[1]
		switch p.Kind() {
		case ast.LiteralKind:
			if s, ok := p.AsLiteral().(types.String); ok {
				out = append(out, globLiteral{string(s), p.ID()})
			}
		case ast.ListKind:
			for _, el := range p.AsList().Elements() {
				if el.Kind() == ast.LiteralKind {
					if s, ok := el.AsLiteral().(types.String); ok {
						out = append(out, globLiteral{string(s), el.ID()})
					}
				}
			}
		}
	}))
	return out
}

// conjunctStrings returns the values the string variable name is limited
// to by a match expression, when one of its top-level conjuncts is
// `name == "x"` or `name in ["x", ...]`; nil means any value. Skipping the
// rule for other values is exact: a false conjunct makes the whole && false,
// whatever the others would do.
func conjunctStrings(a *cel.Ast, name string) []string {
	na := a.NativeRep()
	refs := na.ReferenceMap()
	isVar := func(e ast.Expr) bool {
		if r, ok := refs[e.ID()]; ok && r.Name == name && r.Value == nil {
			return true
		}
		return e.Kind() == ast.IdentKind && e.AsIdent() == name
	}
	str := func(e ast.Expr) (string, bool) {
		if e.Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().(types.String)
		return string(s), ok
	}
	var conj []ast.Expr
	var flatten func(e ast.Expr)
	flatten = func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "_&&_" {
			for _, x := range e.AsCall().Args() {
				flatten(x)
			}
			return
		}
		conj = append(conj, e)
	}
	flatten(na.Expr())
	for _, e := range conj {
		if e.Kind() != ast.CallKind {
			continue
		}
		call := e.AsCall()
		args := call.Args()
		if len(args) != 2 {
			continue
		}
		switch call.FunctionName() {
		case "_==_":
			if isVar(args[0]) {
				if s, ok := str(args[1]); ok {
					return []string{s}
				}
			}
			if isVar(args[1]) {
				if s, ok := str(args[0]); ok {
					return []string{s}
				}
			}
		case "@in":
			if !isVar(args[0]) || args[1].Kind() != ast.ListKind {
				continue
			}
			var names []string
			for _, el := range args[1].AsList().Elements() {
				s, ok := str(el)
				if !ok {
					names = nil
					break
				}
				names = append(names, s)
			}
			if len(names) > 0 {
				return names
			}
		}
	}
	return nil
}

// Version is the set's content hash, "sha256:" and the first 12 hex digits.
func (s *Set) Version() string {
	if s == nil {
		return ""
	}
	return s.version
}

// Source is the rules file's contents the set was compiled from (its
// Version is their hash); nil for a nil Set.
func (s *Set) Source() []byte {
	if s == nil {
		return nil
	}
	return bytes.Clone(s.source)
}

// Label is the file's optional human label.
func (s *Set) Label() string {
	if s == nil {
		return ""
	}
	return s.label
}

// Name is the file name the set was parsed from.
func (s *Set) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// Len is the number of rules, shadow rules included.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// Decide implements the gate's Decider with a fixed rule set.
func (s *Set) Decide(ctx context.Context, c toolgate.Call) toolgate.Decision {
	return s.Evaluate(ctx, c)
}

// Evaluate decides c: the first matching enforced rule wins; every shadow
// rule is evaluated too and recorded in Decision.Shadow; with no match the
// file's default applies. It never returns an empty Action, and an
// evaluation error never allows: on_error decides and Decision.Error says
// why. A nil Set denies.
func (s *Set) Evaluate(ctx context.Context, c toolgate.Call) toolgate.Decision {
	return s.evaluate(ctx, &c, nil)
}

// recoverDecision, deferred, turns a panic while deciding (a bug in the
// reading of some agent-written input, which CEL's own recovery does not
// cover when it happens outside a program) into on_error's decision for
// the call, so that one call's input never takes the server down nor gets
// a call through undecided.
func (s *Set) recoverDecision(d *toolgate.Decision) {
	if r := recover(); r != nil {
		*d = toolgate.Decision{Version: s.version, Label: s.label, Action: s.onError,
			Error:  fmt.Sprintf("rules: evaluation failed: %v", r),
			Reason: fmt.Sprintf("toolgate could not evaluate its rules on this call, so on_error (%s) applies", s.onError)}
	}
}

// Step is one rule's part in a decision, as Explain reports it.
type Step struct {
	// Rule is the rule's name.
	Rule string `json:"rule"`
	// Shadow is true for a shadow-mode rule.
	Shadow bool `json:"shadow,omitempty"`
	// Result is "matched", "no match" or "error".
	Result string `json:"result"`
	// Error is the evaluation error, if any.
	Error string `json:"error,omitempty"`
}

// Explain is Evaluate plus the rules it evaluated, in order. Rules the
// tool-name index ruled out, and enforced rules after the winner, are not
// listed; skipped counts them.
func (s *Set) Explain(ctx context.Context, c toolgate.Call) (d toolgate.Decision, steps []Step, skipped int) {
	steps = []Step{}
	d = s.evaluate(ctx, &c, &steps)
	return d, steps, s.Len() - len(steps)
}

func (s *Set) evaluate(ctx context.Context, c *toolgate.Call, trace *[]Step) (d toolgate.Decision) {
	if s == nil {
		return toolgate.Decision{Action: toolgate.Deny, Error: "no rule set is loaded"}
	}
	defer s.recoverDecision(&d)
	d = toolgate.Decision{Version: s.version, Label: s.label}
	if err := ctx.Err(); err != nil {
		d.Action, d.Error = s.onError, errString("call context", err)
		d.Reason = fmt.Sprintf("the call was cancelled before it could be decided, so on_error (%s) applies", s.onError)
		return d
	}
	act := s.acts.get(c, &s.ws, s.kinds)
	defer s.acts.put(act)
	won := false
	ruled := false // a matching rule decided, thresholds included
	indexed := s.byTool[c.Tool]
	unindexed := s.unindexed
	for len(indexed) > 0 || len(unindexed) > 0 {
		var i int
		if len(unindexed) == 0 || len(indexed) > 0 && indexed[0] < unindexed[0] {
			i, indexed = indexed[0], indexed[1:]
		} else {
			i, unindexed = unindexed[0], unindexed[1:]
		}
		r := s.rules[i]
		if won && !r.shadow {
			continue
		}
		matched, err := r.matches(ctx, act)
		if trace != nil {
			st := Step{Rule: r.name, Shadow: r.shadow, Result: "no match"}
			switch {
			case err != nil:
				st.Result, st.Error = "error", err.Error()
			case matched:
				st.Result = "matched"
			}
			*trace = append(*trace, st)
		}
		if r.shadow {
			switch {
			case err != nil:
				d.Shadow = append(d.Shadow, toolgate.ShadowResult{Rule: r.name, Action: s.onError, Reason: "evaluation error", Error: errString("match", err)})
			case matched:
				sd := r.decide(ctx, act, c, s.onError, s.limits)
				d.Shadow = append(d.Shadow, toolgate.ShadowResult{Rule: r.name, Action: sd.Action, Reason: sd.Reason, Error: sd.Error})
			}
			continue
		}
		switch {
		case err != nil:
			d.Action, d.Rule = s.onError, r.name
			d.Reason = fmt.Sprintf("rule %q could not be evaluated, so on_error (%s) applies", r.name, s.onError)
			d.Error = fmt.Sprintf("rule %q: %s", r.name, errString("match", err))
			won = true
		case matched:
			rd := r.decide(ctx, act, c, s.onError, s.limits)
			d.Action, d.Rule, d.Reason, d.AutoApproved, d.ConfidenceEffect = rd.Action, r.name, rd.Reason, rd.AutoApproved, rd.Effect
			ruled = true
			if rd.Action != toolgate.Deny {
				d.Sandbox = r.sandbox
			}
			if rd.Action == toolgate.Review {
				d.SessionGrant, d.Review = r.sessionGrant, r.review
			}
			if rd.Error != "" {
				d.Error = fmt.Sprintf("rule %q: %s", r.name, rd.Error)
			}
			won = true
		}
		if won && !s.hasShadow && trace == nil {
			break
		}
	}
	if !won {
		d.Action = s.def
	}
	if !ruled {
		// The default, or on_error, decided: the file's thresholds still
		// apply (a matched rule's decide applied them already).
		var why string
		d.Action, d.ConfidenceEffect, why = s.limits.tighten(d.Action, c.Confidence, [2]string{"the rule set's", "the rule set's"})
		if why != "" {
			d.Reason = joinReason(d.Reason, why)
			if d.Action == toolgate.Deny {
				d.Sandbox = ""
			}
		}
	}
	return d
}

// matches evaluates the rule's match expression. A non-bool result is an error.
func (r *rule) matches(ctx context.Context, act *activation) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if r.callKinds != nil && !slices.Contains(r.callKinds, act.c.KindName()) ||
		r.toolKinds != nil && !slices.Contains(r.toolKinds, act.toolKind()) ||
		r.need != nil && !r.need.holds(act) {
		return false, nil
	}
	v, err := r.match.eval(ctx, act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("match returned %s, not bool", v.Type())
	}
	return bool(b), nil
}

// ruleDecision is what a matching rule decides.
type ruleDecision struct {
	Action       toolgate.Action
	Reason       string
	AutoApproved bool
	Effect       string // Decision.ConfidenceEffect
	Error        string
}

// decide applies a matching rule: its reason (computed if reason_expr), then
// the confidence thresholds. Thresholds only tighten (deny_below, then
// review_below, the rule's or the file's, whichever is higher), and only
// a known confidence does either; auto_approve_at, the one that waives,
// applies only when no threshold tightened. A reason_expr error keeps the
// rule matched but makes the action at least as strict as on_error and
// disables auto-approval.
func (r *rule) decide(ctx context.Context, act *activation, c *toolgate.Call, onError toolgate.Action, file limits) ruleDecision {
	rd := ruleDecision{Action: r.action, Reason: r.reason}
	if r.reasonExpr != nil {
		v, err := r.reasonExpr.eval(ctx, act)
		if err == nil {
			if s, ok := v.(types.String); ok {
				rd.Reason = string(s)
			} else {
				err = fmt.Errorf("reason_expr returned %s, not string", v.Type())
			}
		}
		if err != nil {
			rd.Error = errString("reason_expr", err)
			rd.Reason = fmt.Sprintf("rule %q matched but its reason could not be computed", r.name)
			rd.Action = toolgate.Stricter(r.action, onError)
		}
	}
	// The higher of the rule's and the file's threshold is the one that
	// bites; the reason names where it comes from.
	lim, whose := file, [2]string{"the rule set's", "the rule set's"}
	if r.limits.denyBelow >= 0 && r.limits.denyBelow >= lim.denyBelow {
		lim.denyBelow, whose[0] = r.limits.denyBelow, "this rule's"
	}
	if r.limits.reviewBelow >= 0 && r.limits.reviewBelow >= lim.reviewBelow {
		lim.reviewBelow, whose[1] = r.limits.reviewBelow, "this rule's"
	}
	var why string
	rd.Action, rd.Effect, why = lim.tighten(rd.Action, c.Confidence, whose)
	if why != "" {
		rd.Reason = joinReason(rd.Reason, why)
		return rd
	}
	conf, known := knownConfidence(c.Confidence)
	if known && rd.Error == "" && r.action == toolgate.Review && r.autoApproveAt >= 0 && conf >= r.autoApproveAt &&
		conf >= lim.reviewBelow && conf >= lim.denyBelow {
		why := fmt.Sprintf("auto-approved: the agent's confidence %.2f is at or above %.2f", conf, r.autoApproveAt)
		if rd.Reason != "" {
			why = rd.Reason + " (" + why + ")"
		}
		rd.Action, rd.Reason, rd.AutoApproved, rd.Effect = toolgate.Allow, why, true, toolgate.ConfidenceAutoApproved
	}
	return rd
}

// tighten applies l to action a given the agent's stated confidence p: a
// known confidence below denyBelow denies, one below reviewBelow turns an
// allow into a review. An unknown confidence (absent, NaN, outside 0..1)
// tightens nothing: the agent chooses the number, so one that wants to
// dodge a threshold states a high one, and counting silence as doubt would
// only penalise agents that do not state any. whose names where the deny
// and the review threshold come from, for the reason; effect and why are
// "" when nothing changed.
func (l limits) tighten(a toolgate.Action, p *float64, whose [2]string) (_ toolgate.Action, effect, why string) {
	conf, known := knownConfidence(p)
	if !known {
		return a, "", ""
	}
	switch {
	case l.denyBelow >= 0 && conf < l.denyBelow && a != toolgate.Deny:
		return toolgate.Deny, toolgate.ConfidenceTightenedToDeny, fmt.Sprintf("the agent's confidence %.2f is below %s deny_below %.2f", conf, whose[0], l.denyBelow)
	case l.reviewBelow >= 0 && conf < l.reviewBelow && a == toolgate.Allow:
		return toolgate.Review, toolgate.ConfidenceTightenedToReview, fmt.Sprintf("the agent's confidence %.2f is below %s review_below %.2f", conf, whose[1], l.reviewBelow)
	}
	return a, "", ""
}

// joinReason appends why to a decision's reason.
func joinReason(reason, why string) string {
	if reason == "" {
		return why
	}
	return reason + "; " + why
}
