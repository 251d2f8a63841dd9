package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/toolgate/toolgate"
)

// activation exposes one call to CEL. Values are converted on first use and
// cached, so a rule that never looks at args does not pay for them, and
// the rules that do share one conversion.
type activation struct {
	c    *toolgate.Call
	args ref.Val
	meta ref.Val
	ann  ref.Val
	conf ref.Val
	now  ref.Val
	// groups is principal.groups, converted on first use.
	groups ref.Val
	// strs caches the string variables, by strVar.
	strs [numStrVars]ref.Val
	// frame is the execution frame the call's programs without cost
	// tracking share, tracked the one its tracked programs share, which
	// carries the call's context (see program.eval); nil until one runs.
	// put closes them.
	frame, tracked *interpreter.ExecutionFrame
	// ws is the set's workspace; norm the normalized call, computed on
	// first use, and normVals its variables as CEL values, by normVar.
	ws       *Workspace
	kinds    *kindCache
	norm     *normCall
	normVals [numNormVars]ref.Val
	// sizes caches varSize, by variable number; sized says which are set.
	sizes [maxSized]size
	sized uint64
}

// normVar indexes activation.normVals.
type normVar int

const (
	nvKind normVar = iota
	nvCmdLine
	nvCmdArgv
	nvCmdCommands
	nvCmdPrograms
	nvCmdCwd
	nvCmdEscapes
	nvCmdEnv
	nvCmdComputed
	nvPathsAll
	nvPathsWritten
	nvPathsOutside
	nvPathsSecret
	nvPathsPersistence
	nvPathsPolicy
	nvPathsInstructions
	nvNetURLs
	nvNetHosts
	numNormVars
)

// normVars maps the normalized call's variable names to their index.
var normVars = map[string]normVar{
	VarToolKind: nvKind, VarCmdLine: nvCmdLine, VarCmdArgv: nvCmdArgv, VarCmdCommands: nvCmdCommands,
	VarCmdPrograms: nvCmdPrograms, VarCmdCwd: nvCmdCwd, VarCmdEscapes: nvCmdEscapes, VarCmdEnv: nvCmdEnv,
	VarCmdComputed: nvCmdComputed,
	VarPathsAll:    nvPathsAll, VarPathsWritten: nvPathsWritten, VarPathsOutside: nvPathsOutside,
	VarPathsSecret: nvPathsSecret, VarPathsPersistence: nvPathsPersistence, VarPathsPolicy: nvPathsPolicy, VarPathsInstructions: nvPathsInstructions,
	VarNetURLs: nvNetURLs, VarNetHosts: nvNetHosts,
}

// normalized returns the normalized call, normalizing it on first use.
func (a *activation) normalized() *normCall {
	if a.norm == nil {
		ws := Workspace{}
		if a.ws != nil {
			ws = *a.ws
		}
		a.norm = normalize(a.c, ws, a.kinds)
	}
	return a.norm
}

// normValue returns the normalized call's variable v, normalizing the call
// on first use. When the command line could not be split, every variable
// but tool.kind is an error value: rules that read them fail closed.
func (a *activation) normValue(v normVar) ref.Val {
	if a.normVals[v] != nil {
		return a.normVals[v]
	}
	n := a.normalized()
	var out ref.Val
	strs := func(l []string) ref.Val { return types.NewStringList(types.DefaultTypeAdapter, l) }
	lists := func(l [][]string) ref.Val {
		vals := make([]ref.Val, len(l))
		for i, c := range l {
			vals[i] = strs(c)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, vals)
	}
	switch {
	case v == nvKind:
		out = types.String(n.kind)
	case n.err != nil:
		out = types.NewErr("the command could not be analysed: %v", n.err)
	default:
		switch v {
		case nvCmdLine:
			out = types.String(n.line)
		case nvCmdArgv:
			out = lists(n.argv)
		case nvCmdCommands:
			out = lists(n.commands)
		case nvCmdCwd:
			out = types.String(n.cwd)
		default:
			out = strs(n.strings(v))
		}
	}
	a.normVals[v] = out
	return out
}

// strings is the normalized call's list of strings v (nil for a variable
// that is not one).
func (n *normCall) strings(v normVar) []string {
	switch v {
	case nvCmdPrograms:
		return n.programs
	case nvCmdEscapes:
		return n.escapes
	case nvCmdEnv:
		return n.env
	case nvCmdComputed:
		return n.computed
	case nvPathsAll:
		return n.paths
	case nvPathsWritten:
		return n.written
	case nvPathsOutside:
		return n.outside
	case nvPathsSecret:
		return n.secret
	case nvPathsPersistence:
		return n.persistence
	case nvPathsPolicy:
		return n.policy
	case nvPathsInstructions:
		return n.instructions
	case nvNetURLs:
		return n.urls
	case nvNetHosts:
		return n.hosts
	}
	return nil
}

// strVar indexes activation.strs.
type strVar int

const (
	strToolName strVar = iota
	strToolServer
	strToolExposed
	strClientName
	strClientVersion
	strModelName
	strModelVersion
	strSessionID
	strPrincipalUser
	strPrincipalAuth
	strCallKind
	strResourceURI
	strResourceUnchecked
	numStrVars
)

var _ interpreter.Activation = (*activation)(nil)

// activations recycles activations between calls: with its caches an
// activation is a few hundred bytes, which allocating on every call would
// cost more than all the conversions it saves on a small rule set.
type activations struct{ pool sync.Pool }

// get returns a fresh activation for c; put it back when the call is decided.
func (p *activations) get(c *toolgate.Call, ws *Workspace, kinds *kindCache) *activation {
	a, _ := p.pool.Get().(*activation)
	if a == nil {
		a = &activation{}
	}
	a.c, a.ws, a.kinds = c, ws, kinds
	return a
}

// put releases a's frame and clears a, so a pooled activation holds nothing
// of the call, and recycles it. Nothing may use a afterwards.
func (p *activations) put(a *activation) {
	if a.frame != nil {
		a.frame.Close()
	}
	if a.tracked != nil {
		a.tracked.Close()
	}
	*a = activation{}
	p.pool.Put(a)
}

// execFrame returns the frame the call's untracked programs share, which
// spares each evaluation taking a frame from cel-go's pool and putting it
// back.
func (a *activation) execFrame() (*interpreter.ExecutionFrame, error) {
	if a.frame == nil {
		f, err := interpreter.NewExecutionFrame(a)
		if err != nil {
			return nil, err
		}
		a.frame = f
	}
	return a.frame, nil
}

// trackedFrame returns the frame the call's tracked programs share: one
// context and interrupt check per call rather than per program. Each
// program still gets a cost tracker of its own (see program.eval).
func (a *activation) trackedFrame(ctx context.Context) (*interpreter.ExecutionFrame, error) {
	if a.tracked == nil {
		f, err := interpreter.NewExecutionFrame(a)
		if err != nil {
			return nil, err
		}
		if err := f.SetContext(ctx, interruptEvery); err != nil {
			f.Close()
			return nil, err
		}
		a.tracked = f
	}
	return a.tracked, nil
}

// str returns the string variable v, whose value is s, converting it once.
func (a *activation) str(v strVar, s string) ref.Val {
	if a.strs[v] == nil {
		a.strs[v] = types.String(s)
	}
	return a.strs[v]
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	c := a.c
	switch name {
	case VarToolName:
		return a.str(strToolName, c.Tool), true
	case VarToolServer:
		return a.str(strToolServer, c.Server), true
	case VarToolExposed:
		return a.str(strToolExposed, c.Name), true
	case VarArgs:
		if a.args == nil {
			a.args = argsValue(c.Args)
		}
		return a.args, true
	case VarMeta:
		if a.meta == nil {
			a.meta = argsValue(c.Meta)
		}
		return a.meta, true
	case VarToolAnnotations:
		if a.ann == nil {
			a.ann = annotationsValue(c.TrustedAnnotations())
		}
		return a.ann, true
	case VarToolPinned:
		return types.Bool(c.Pin.Trusted()), true
	case VarToolChanged:
		return types.Bool(c.Pin.State == toolgate.PinChanged), true
	case VarClientName:
		return a.str(strClientName, c.Client.Name), true
	case VarClientVersion:
		return a.str(strClientVersion, c.Client.Version), true
	case VarModelName:
		return a.str(strModelName, c.Model.Name), true
	case VarModelVersion:
		return a.str(strModelVersion, c.Model.Version), true
	case VarConfidence:
		if a.conf == nil {
			if f, ok := knownConfidence(c.Confidence); ok {
				a.conf = types.OptionalOf(types.Double(f))
			} else {
				a.conf = types.OptionalNone
			}
		}
		return a.conf, true
	case VarSessionID:
		return a.str(strSessionID, c.SessionID), true
	case VarPrincipalUser:
		return a.str(strPrincipalUser, c.Principal.User), true
	case VarPrincipalAuth:
		return a.str(strPrincipalAuth, c.Principal.Auth), true
	case VarPrincipalGroups:
		if a.groups == nil {
			a.groups = types.NewStringList(types.DefaultTypeAdapter, c.Principal.Groups)
		}
		return a.groups, true
	case VarCallKind:
		return a.str(strCallKind, c.KindName()), true
	case VarResourceURI:
		uri := ""
		if c.Kind == toolgate.KindResource {
			uri, _ = c.Args["uri"].(string)
		}
		return a.str(strResourceURI, uri), true
	case VarResourceFile:
		return types.Bool(c.Kind == toolgate.KindResource && a.normalized().resFile), true
	case VarResourceUnchecked:
		why := ""
		if c.Kind == toolgate.KindResource {
			why = a.normalized().resUnchecked
		}
		return a.str(strResourceUnchecked, why), true
	case VarToolSandbox:
		return types.String(c.Sandbox), true
	case VarWorkspaceRoot:
		if a.ws == nil {
			return types.String(""), true
		}
		return types.String(a.ws.Root), true
	case VarWorkspaceHome:
		if a.ws == nil {
			return types.String(""), true
		}
		return types.String(a.ws.Home), true
	case VarToolKind, VarCmdLine, VarCmdArgv, VarCmdCommands, VarCmdPrograms, VarCmdCwd, VarCmdEscapes, VarCmdEnv, VarCmdComputed,
		VarPathsAll, VarPathsWritten, VarPathsOutside, VarPathsSecret, VarPathsPersistence, VarPathsPolicy, VarPathsInstructions,
		VarNetURLs, VarNetHosts:
		return a.normValue(normVars[name]), true
	case VarNow:
		if c.Time.IsZero() {
			return nil, false // unbound: a rule using now fails closed
		}
		if a.now == nil {
			a.now = types.Timestamp{Time: c.Time}
		}
		return a.now, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// knownConfidence returns the call's confidence if it is usable: present,
// a number, and within 0..1. Anything else counts as unknown, so a bogus
// value can never auto-approve.
func knownConfidence(p *float64) (float64, bool) {
	if p == nil || math.IsNaN(*p) || *p < 0 || *p > 1 {
		return 0, false
	}
	return *p, true
}

// argsValue converts call arguments to a CEL map. JSON-decoded arguments
// (strings, float64, bool, nil, []any, map[string]any) are wrapped as they
// are; anything else (ints, json.Number, structs from Go callers) is first
// normalized through a JSON round trip so every number is a double. A value
// that cannot be converted becomes an error value: rules that read args fail
// closed.
func argsValue(args map[string]any) ref.Val {
	if args == nil {
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})
	}
	if !jsonNative(args, 0) {
		b, err := json.Marshal(args)
		if err != nil {
			return types.NewErr("args: not JSON: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return types.NewErr("args: not JSON: %v", err)
		}
		if m == nil {
			m = map[string]any{}
		}
		args = m
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, args)
}

// maxArgsDepth bounds how deep jsonNative looks before it asks for a round
// trip (which has its own limits).
const maxArgsDepth = 64

func jsonNative(v any, depth int) bool {
	if depth > maxArgsDepth {
		return false
	}
	switch x := v.(type) {
	case nil, string, bool:
		return true
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case map[string]any:
		for _, e := range x {
			if !jsonNative(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !jsonNative(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// annotationsValue is tool.annotations: only the hints the upstream gave.
func annotationsValue(an toolgate.Annotations) ref.Val {
	m := map[string]any{}
	if an.Title != "" {
		m["title"] = an.Title
	}
	for k, p := range map[string]*bool{
		"readOnlyHint":    an.ReadOnly,
		"destructiveHint": an.Destructive,
		"idempotentHint":  an.Idempotent,
		"openWorldHint":   an.OpenWorld,
	} {
		if p != nil {
			m[k] = *p
		}
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
}

// errString renders an evaluation error for Decision.Error.
func errString(what string, err error) string {
	return fmt.Sprintf("%s: %v", what, err)
}

// toolKind is tool.kind as the rules see it (always a string, even when
// the command could not be analysed).
func (a *activation) toolKind() string {
	s, _ := a.normValue(nvKind).(types.String)
	return string(s)
}
