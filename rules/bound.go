package rules

import (
	"math"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// Cost bounds. An expression with a comprehension runs with cost tracking
// so that CostLimit can stop it, and tracking roughly doubles its cost.
// cel-go's static estimate bounds what an expression can cost given
// bounds on the sizes of its inputs; a call whose inputs are within a
// bound under which the expression cannot reach CostLimit runs the
// expression untracked, with the same result: the limit could not have
// stopped it. Larger calls (a long file's contents, a thousand-word
// command) run tracked, as before.

// size bounds the sizes of one value: the lengths of its lists and maps,
// and of its strings (map keys included), at any depth.
type size struct{ lists, strs int }

func (z size) max(o size) size {
	return size{max(z.lists, o.lists), max(z.strs, o.strs)}
}

// strTiers are the string-length bounds a program's list bound is
// estimated for, and listTiers the list bounds tried.
var (
	strTiers  = [...]int{64, 1024, 16384, 65536}
	listTiers = [...]int{4, 16, 64, 256}
)

// costBound is, for each of strTiers, the largest of listTiers under which
// an expression cannot cost more than CostLimit (-1: none). It is estimated
// on first use: an estimate takes milliseconds, which every rule set's
// load would pay for expressions it may never evaluate.
type costBound struct {
	once    sync.Once
	env     *cel.Env
	checked *cel.Ast
	lists   [len(strTiers)]int
}

// fits says whether an expression with bound b cannot reach CostLimit on
// inputs of size z.
func (b *costBound) fits(z size) bool {
	b.once.Do(b.estimate)
	for i, s := range strTiers {
		if z.strs <= s {
			return z.lists <= b.lists[i]
		}
	}
	return false
}

// estimate computes the bound. A larger string bound allows at most the
// list bound a smaller one does, so each tier starts below the last.
func (b *costBound) estimate() {
	top := len(listTiers)
	for i, s := range strTiers {
		b.lists[i] = -1
		n := 0
		for n < top {
			est, err := b.env.EstimateCost(b.checked, sizeEstimator{size{listTiers[n], s}})
			if err != nil || est.Max > CostLimit {
				break
			}
			b.lists[i] = listTiers[n]
			n++
		}
		top = n
	}
	b.env, b.checked = nil, nil
}

// sizeEstimator tells cel-go's estimate that every input list and map has
// at most z.lists entries and every input string at most z.strs
// characters; a value of unknown type (dyn) either.
type sizeEstimator struct{ z size }

func (e sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	var z int
	switch n.Type().Kind() {
	case types.ListKind, types.MapKind:
		z = e.z.lists
	case types.StringKind, types.BytesKind:
		z = e.z.strs
	default:
		z = max(e.z.lists, e.z.strs)
	}
	return &cost.SizeEstimate{Min: 0, Max: uint64(z)}
}

func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// unbounded is the size of a value that cannot be bounded (an error).
var unbounded = size{math.MaxInt, math.MaxInt}

// strsSize is the size of a list of strings.
func strsSize(l []string) size {
	z := size{lists: len(l)}
	for _, s := range l {
		z.strs = max(z.strs, len(s))
	}
	return z
}

// jsonSize is the size of a JSON value as argsValue hands it to CEL.
func jsonSize(v any) size {
	switch x := v.(type) {
	case string:
		return size{strs: len(x)}
	case []any:
		z := size{lists: len(x)}
		for _, e := range x {
			z = z.max(jsonSize(e))
		}
		return z
	case map[string]any:
		z := size{lists: len(x)}
		for k, e := range x {
			z = z.max(size{strs: len(k)}).max(jsonSize(e))
		}
		return z
	}
	return size{}
}

// varIDs numbers the variables bounded expressions read, so that an
// activation caches their sizes by number.
type varIDs map[string]int

// varRef is a variable, by name and number.
type varRef struct {
	id   int
	name string
}

// refs returns names' references, numbering the new ones.
func (v varIDs) refs(names []string) []varRef {
	out := make([]varRef, len(names))
	for i, name := range names {
		id, ok := v[name]
		if !ok {
			id = len(v)
			v[name] = id
		}
		out[i] = varRef{id, name}
	}
	return out
}

// maxSized is how many variables' sizes an activation caches; the sizes
// of any beyond (a set would need more variables than CEL declares) are
// computed on every use.
const maxSized = 64

// varSize is the size of v's value in this call, computed once per call.
func (a *activation) varSize(v varRef) size {
	if v.id >= maxSized {
		return a.computeSize(v.name)
	}
	if a.sized&(1<<v.id) == 0 {
		a.sizes[v.id] = a.computeSize(v.name)
		a.sized |= 1 << v.id
	}
	return a.sizes[v.id]
}

func (a *activation) computeSize(name string) size {
	if nv, ok := normVars[name]; ok {
		n := a.normalized()
		switch {
		case nv == nvKind:
			return size{strs: len(n.kind)}
		case n.err != nil:
			return unbounded
		}
		switch nv {
		case nvCmdLine:
			return size{strs: len(n.line)}
		case nvCmdCwd:
			return size{strs: len(n.cwd)}
		case nvCmdArgv, nvCmdCommands:
			l := n.argv
			if nv == nvCmdCommands {
				l = n.commands
			}
			z := size{lists: len(l)}
			for _, c := range l {
				z = z.max(strsSize(c))
			}
			return z
		}
		return strsSize(n.strings(nv))
	}
	v, _ := a.ResolveName(name)
	val, ok := v.(ref.Val)
	if !ok {
		return size{} // unbound (now): the expression fails at once
	}
	switch x := val.(type) {
	case types.String:
		return size{strs: len(x)}
	case traits.Lister, traits.Mapper:
		switch y := val.Value().(type) {
		case []string:
			return strsSize(y)
		case map[string]any:
			return jsonSize(y)
		}
		return unbounded
	}
	if types.IsError(val) {
		return unbounded
	}
	return size{} // a bool, a number, a timestamp, an optional number
}
