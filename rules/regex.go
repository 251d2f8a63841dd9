package rules

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// A regular expression with no literal prefix (a case-insensitive one, an
// alternation) runs in Go's regexp at tens of nanoseconds a byte: the
// pack's checks of an argument's text cost ~0.5 ms on 6 KB, most of the
// rules' cost on such a call. Most such expressions cannot match without
// one of a few literals ("drop", "truncate", "delete", "flush"), and a
// text that contains none is refused by a substring search instead.

// minFiltered is the shortest text worth the literal search: on shorter
// ones the expression runs at once.
const minFiltered = 256

// regexOptimizations make a literal `x.matches("re")` a filtered match,
// in place of cel-go's own regex optimization (it picks one by overload
// id before function name). The call keeps its function, overload and
// arguments, so cost tracking counts it as before.
var regexOptimizations = []*interpreter.RegexOptimization{
	{Function: overloads.Matches, OverloadID: overloads.MatchesString, RegexIndex: 1, Factory: filteredCall},
	{Function: overloads.Matches, OverloadID: overloads.Matches, RegexIndex: 1, Factory: filteredCall},
}

func filteredCall(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
	m, err := compileFiltered(pattern)
	if err != nil {
		return nil, err
	}
	return interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(), func(values ...ref.Val) ref.Val {
		if len(values) != 2 {
			return types.NoSuchOverloadErr()
		}
		in, ok := values[0].Value().(string)
		if !ok {
			return types.NoSuchOverloadErr()
		}
		return types.Bool(m.MatchString(in))
	}), nil
}

// filtered is a regular expression and the literals one of which every
// match contains (none: no filter).
type filtered struct {
	re   *regexp.Regexp
	lits []literal
	fold bool // some literal is matched without case
}

// literal is a string a match contains: as it is, or (fold) in any case.
// A folded literal is ASCII and held in lower case.
type literal struct {
	s    string
	fold bool
}

func compileFiltered(pattern string) (*filtered, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	m := &filtered{re: re}
	// regexp.Compile parses with syntax.Perl.
	if p, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		m.lits = required(p.Simplify())
	}
	for _, l := range m.lits {
		m.fold = m.fold || l.fold
	}
	return m, nil
}

// MatchString is m.re.MatchString(s).
func (m *filtered) MatchString(s string) bool {
	if m.lits == nil || len(s) < minFiltered {
		return m.re.MatchString(s)
	}
	var lower []byte
	if m.fold {
		lower = foldASCII(s)
	}
	for _, l := range m.lits {
		if l.fold && bytes.Contains(lower, []byte(l.s)) || !l.fold && strings.Contains(s, l.s) {
			return m.re.MatchString(s)
		}
	}
	return false
}

// foldASCII returns s with every rune that matches an ASCII letter
// without case made that letter in lower case: the ASCII capitals, the
// Kelvin sign (k) and the long s (s), the only others (TestFoldedASCII).
// A folded literal is in s when its lower case is in what this returns:
// the rest of s is unchanged, and holds no ASCII byte that was not in s.
func foldASCII(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == 0xe2 && strings.HasPrefix(s[i:], "\u212a"):
			c, i = 'k', i+len("\u212a")-1
		case c == 0xc5 && strings.HasPrefix(s[i:], "\u017f"):
			c, i = 's', i+len("\u017f")-1
		}
		b = append(b, c)
	}
	return b
}

// maxLiterals bounds the literals a filter searches for; an expression
// that needs more runs unfiltered.
const maxLiterals = 16

// required returns literals one of which every match of re contains, or
// nil when it finds none: a literal, the best of a concatenation's parts,
// all of an alternation's branches, what a repetition of at least one
// repeats.
func required(re *syntax.Regexp) []literal {
	switch re.Op {
	case syntax.OpLiteral:
		fold := re.Flags&syntax.FoldCase != 0
		s := string(re.Rune)
		// Folded literals are ASCII (see foldASCII); U+FFFD also
		// matches each byte of invalid UTF-8, which a search would miss.
		for _, r := range re.Rune {
			if fold && r >= utf8.RuneSelf || r == utf8.RuneError {
				return nil
			}
		}
		if fold {
			s = strings.ToLower(s)
		}
		return []literal{{s, fold}}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []literal
		for _, sub := range re.Sub {
			if l := required(sub); l != nil && (best == nil || shortest(l) > shortest(best)) {
				best = l
			}
		}
		return best
	case syntax.OpAlternate:
		var all []literal
		for _, sub := range re.Sub {
			l := required(sub)
			if l == nil || len(all)+len(l) > maxLiterals {
				return nil
			}
			all = append(all, l...)
		}
		return all
	}
	return nil
}

// shortest is the length of the shortest of lits, which bounds how
// selective a search for them is.
func shortest(lits []literal) int {
	n := len(lits[0].s)
	for _, l := range lits[1:] {
		n = min(n, len(l.s))
	}
	return n
}
