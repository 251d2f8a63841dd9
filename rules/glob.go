package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// errBadPattern marks a malformed glob pattern; it becomes an evaluation
// error, so the rule set's on_error applies (never allow).
var errBadPattern = errors.New("bad glob pattern")

// maxGlobAlternatives bounds brace expansion so one pattern cannot explode.
const maxGlobAlternatives = 256

// glob reports whether name matches pattern. The syntax is the one the
// rule author's contract documents (docs/rules.md): '*' matches any run of
// characters except '/'; '?' one character except '/'; '**' any run of
// characters, '/' included, and "**/" also matches nothing, so "**/.env"
// matches ".env" and "a/b/.env"; "[abc]", "[a-z]", "[!abc]" (or "[^abc]")
// match one character of a class; "{a,b}" either alternative (not nested);
// a backslash quotes the next character.
//
// Matching is on bytes of the whole name (anchored at both ends), case
// sensitive, and linear in len(name) for a given pattern: it simulates the
// pattern as an automaton instead of backtracking, so hostile arguments
// cannot make it slow.
func glob(name, pattern string) (bool, error) {
	g, err := compilePattern(pattern)
	if err != nil {
		return false, err
	}
	return g.match(name), nil
}

// Globs compiles patterns, in the syntax of the rules' glob function,
// into one matcher that reports whether a path matches any of them; for
// the config's path lists, which read the same as a rule's patterns. A
// malformed pattern is an error that quotes it.
func Globs(patterns []string) (func(name string) bool, error) {
	gs := make([]globPattern, 0, len(patterns))
	for _, p := range patterns {
		g, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return func(name string) bool {
		return slices.ContainsFunc(gs, func(g globPattern) bool { return g.match(name) })
	}, nil
}

// globPattern is a compiled pattern: one automaton per brace alternative.
type globPattern []globAlt

// globAlt is one alternative: its tokens and the longest literal every
// match must contain, checked first (strings.Contains is far cheaper than
// running the automaton, and most names do not match).
type globAlt struct {
	toks []globTok
	must string
}

func compilePattern(pattern string) (globPattern, error) {
	alts, err := expandBraces(pattern)
	if err != nil {
		return nil, err
	}
	g := make(globPattern, len(alts))
	for i, alt := range alts {
		toks, err := compileGlob(alt)
		if err != nil {
			return nil, err
		}
		g[i] = globAlt{toks: toks, must: mustContain(toks)}
	}
	return g, nil
}

func (g globPattern) match(name string) bool {
	for _, a := range g {
		if strings.Contains(name, a.must) && runGlob(a.toks, name) {
			return true
		}
	}
	return false
}

// mustContain returns the longest run of literal bytes that every match
// contains. The '/' of a "**/" group is optional, so it ends a run.
func mustContain(toks []globTok) string {
	best, cur := "", []byte{}
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		if t.kind == gOpt {
			if len(cur) > len(best) {
				best = string(cur)
			}
			cur = cur[:0]
			k += 2 // the DStar and the optional '/'
			continue
		}
		if t.kind != gLit {
			if len(cur) > len(best) {
				best = string(cur)
			}
			cur = cur[:0]
			continue
		}
		cur = append(cur, t.c)
	}
	if len(cur) > len(best) {
		best = string(cur)
	}
	return best
}

// globCache holds the patterns a rule set's expressions spell out as
// literals, compiled at load time. It is filled while the set is compiled
// and only read afterwards, so evaluation needs no lock. Patterns computed at
// run time are compiled on each call.
type globCache map[string]globPattern

func (c globCache) match(name, pattern string) (bool, error) {
	if g, ok := c[pattern]; ok {
		return g.match(name), nil
	}
	return glob(name, pattern)
}

// expandBraces turns "a{b,c}d" into ["abd", "acd"], left to right.
func expandBraces(p string) ([]string, error) {
	open := -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			open = i
		}
		if open >= 0 {
			break
		}
	}
	if open < 0 {
		if strings.ContainsRune(p, '}') && !escapedOnly(p, '}') {
			return nil, fmt.Errorf("%w %q: unmatched '}'", errBadPattern, p)
		}
		return []string{p}, nil
	}
	end := -1
	var parts []string
	start := open + 1
	for i := start; i < len(p) && end < 0; i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			return nil, fmt.Errorf("%w %q: nested '{' is not supported", errBadPattern, p)
		case ',':
			parts = append(parts, p[start:i])
			start = i + 1
		case '}':
			parts = append(parts, p[start:i])
			end = i
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("%w %q: unmatched '{'", errBadPattern, p)
	}
	rest, err := expandBraces(p[end+1:])
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(parts)*len(rest))
	for _, part := range parts {
		for _, r := range rest {
			out = append(out, p[:open]+part+r)
		}
	}
	if len(out) > maxGlobAlternatives {
		return nil, fmt.Errorf("%w %q: more than %d alternatives", errBadPattern, p, maxGlobAlternatives)
	}
	return out, nil
}

func escapedOnly(p string, c byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' {
			i++
			continue
		}
		if p[i] == c {
			return false
		}
	}
	return true
}

type globKind uint8

const (
	gLit   globKind = iota // one literal byte
	gAny                   // ? : one byte except '/'
	gStar                  // * : bytes except '/'
	gDStar                 // ** : any bytes
	gOpt                   // no input; may jump over the next two tokens ("**/" matching nothing)
	gClass                 // [...]
)

type globTok struct {
	kind   globKind
	c      byte
	negate bool
	ranges []byte // pairs lo,hi
}

func (t *globTok) matchByte(b byte) bool {
	switch t.kind {
	case gLit:
		return b == t.c
	case gAny:
		return b != '/'
	case gClass:
		if b == '/' {
			return false
		}
		in := false
		for i := 0; i+1 < len(t.ranges); i += 2 {
			if t.ranges[i] <= b && b <= t.ranges[i+1] {
				in = true
				break
			}
		}
		return in != t.negate
	}
	return false
}

func compileGlob(p string) ([]globTok, error) {
	var toks []globTok
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 >= len(p) {
				return nil, fmt.Errorf("%w %q: trailing backslash", errBadPattern, p)
			}
			i++
			toks = append(toks, globTok{kind: gLit, c: p[i]})
		case '?':
			toks = append(toks, globTok{kind: gAny})
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				for i+1 < len(p) && p[i+1] == '*' {
					i++
				}
				if i+1 < len(p) && p[i+1] == '/' {
					// "**/": nothing, or any bytes ending in '/'.
					i++
					toks = append(toks, globTok{kind: gOpt}, globTok{kind: gDStar}, globTok{kind: gLit, c: '/'})
				} else {
					toks = append(toks, globTok{kind: gDStar})
				}
				continue
			}
			toks = append(toks, globTok{kind: gStar})
		case '[':
			t := globTok{kind: gClass}
			j := i + 1
			if j < len(p) && (p[j] == '!' || p[j] == '^') {
				t.negate = true
				j++
			}
			first := true
			for ; j < len(p) && (p[j] != ']' || first); j++ {
				first = false
				lo := p[j]
				if lo == '\\' && j+1 < len(p) {
					j++
					lo = p[j]
				}
				hi := lo
				if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
					hi = p[j+2]
					j += 2
					if hi < lo {
						return nil, fmt.Errorf("%w %q: bad range %c-%c", errBadPattern, p, lo, hi)
					}
				}
				t.ranges = append(t.ranges, lo, hi)
			}
			if j >= len(p) {
				return nil, fmt.Errorf("%w %q: unmatched '['", errBadPattern, p)
			}
			i = j
			toks = append(toks, t)
		default:
			toks = append(toks, globTok{kind: gLit, c: c})
		}
	}
	return toks, nil
}

// runGlob simulates the pattern automaton over name. State k means "the
// first k tokens have matched"; star-like tokens loop on themselves.
func runGlob(toks []globTok, name string) bool {
	n := len(toks) + 1
	var bufA, bufB [64]bool
	cur, next := bufA[:0], bufB[:0]
	if n <= len(bufA) {
		cur, next = bufA[:n], bufB[:n]
	} else {
		cur, next = make([]bool, n), make([]bool, n)
	}
	cur[0] = true
	closeGlob(toks, cur)
	for i := 0; i < len(name); i++ {
		b := name[i]
		clear(next)
		any := false
		for k := 0; k < len(toks); k++ {
			if !cur[k] {
				continue
			}
			t := &toks[k]
			switch t.kind {
			case gStar:
				if b != '/' {
					next[k] = true
					any = true
				}
			case gDStar:
				next[k] = true
				any = true
			case gOpt:
			default:
				if t.matchByte(b) {
					next[k+1] = true
					any = true
				}
			}
		}
		if !any {
			return false
		}
		closeGlob(toks, next)
		cur, next = next, cur
	}
	return cur[len(toks)]
}

// closeGlob adds the states reachable without consuming input: every
// star-like token may match nothing, and gOpt may skip "**/" entirely.
// All such moves go forward, so one pass suffices.
func closeGlob(toks []globTok, st []bool) {
	for k := 0; k < len(toks); k++ {
		if st[k] {
			switch toks[k].kind {
			case gStar, gDStar:
				st[k+1] = true
			case gOpt:
				st[k+1] = true
				st[k+3] = true
			}
		}
	}
}
