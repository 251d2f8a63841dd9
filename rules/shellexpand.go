package rules

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The shell's own expansions that turn one word as written into the
// words a program gets: ANSI-C quoting ($'\x2eenv' is .env), brace
// expansion (.{e,}nv is .env and .nv) and pattern matching with bash's
// semantics ([!x], [[:alpha:]]). What toolgate cannot expand exactly it
// reads as could-name-anything (cmd.computed, a malformed bracket matching
// every name), never as naming nothing.

// ansiQuote reads a $'...' string starting after the opening quote,
// decoding its escapes as bash does, and returns the index just past the
// closing quote. A NUL (\0, \x00, \c@) ends the string's value: bash drops
// what follows it up to the closing quote.
func ansiQuote(s string, i int, w *strings.Builder) (int, error) {
	cut := false
	put := func(b ...byte) {
		if !cut {
			w.Write(b)
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			return i + 1, nil
		}
		if c != '\\' {
			put(c)
			continue
		}
		if i+1 >= len(s) {
			break
		}
		i++
		var r rune = -1 // a code point to write as UTF-8
		var b int = -1  // a byte to write as is
		switch e := s[i]; e {
		case 'a':
			b = 7
		case 'b':
			b = 8
		case 'e', 'E':
			b = 27
		case 'f':
			b = 12
		case 'n':
			b = '\n'
		case 'r':
			b = '\r'
		case 't':
			b = '\t'
		case 'v':
			b = 11
		case '\\', '\'', '"', '?':
			b = int(e)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, n := escDigits(s[i:], 3, 8)
			b, i = v&0xff, i+n-1
		case 'x':
			v, n := escDigits(s[i+1:], 2, 16)
			if n == 0 {
				put('\\', 'x')
				continue
			}
			b, i = v, i+n
		case 'u', 'U':
			max := 4
			if e == 'U' {
				max = 8
			}
			v, n := escDigits(s[i+1:], max, 16)
			if n == 0 {
				put('\\', e)
				continue
			}
			r, i = rune(v), i+n
			if r == 0 {
				b, r = 0, -1
			}
		case 'c':
			if i+1 >= len(s) {
				put('\\', 'c')
				continue
			}
			i++
			b = int(s[i]) & 0x1f
			if s[i] == '?' {
				b = 0x7f
			}
		default:
			put('\\', e) // an unknown escape stays as written
			continue
		}
		switch {
		case b == 0 || r == 0:
			cut = true
		case b >= 0:
			put(byte(b))
		case r >= 0:
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			put([]byte(string(r))...)
		}
	}
	return 0, fmt.Errorf("%w: unterminated $'...' quote", errShell)
}

// escDigits reads up to max digits of base at the start of s and returns
// their value and how many it read.
func escDigits(s string, max, base int) (int, int) {
	n := 0
	for n < len(s) && n < max {
		if _, err := strconv.ParseUint(s[n:n+1], base, 8); err != nil {
			break
		}
		n++
	}
	if n == 0 {
		return 0, 0
	}
	v, _ := strconv.ParseUint(s[:n], base, 64)
	return int(v), n
}

// maxBraceWords bounds the words one word's brace expansion may give; a
// word that would give more is read as could-name-anything.
const maxBraceWords = 256

// errBraceBound is returned by expandShellBraces past maxBraceWords.
var errBraceBound = fmt.Errorf("%w: brace expansion gives more than %d words", errShell, maxBraceWords)

// quoteSpecial are the bytes quoted in a word's pattern form (a backslash
// before them) when they were quoted in the command line, so that brace
// expansion leaves them alone.
const quoteSpecial = `\{},.$`

// quotePattern writes s to w in pattern form: every byte that brace
// expansion reads is escaped.
func quotePattern(w *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(quoteSpecial, s[i]) >= 0 {
			w.WriteByte('\\')
		}
		w.WriteByte(s[i])
	}
}

// unquotePattern returns a pattern-form word as the program gets it.
func unquotePattern(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// braceGroup finds the first brace expression in the pattern-form word p
// at or after from: its braces' indexes, and the top-level alternatives
// (for {a,b}) or the sequence (for {1..5}, {a..e}, {1..9..2}); ok is
// false when p has none. "${" starts a parameter, not an expression, and
// a group with neither a top-level comma nor a valid sequence ({x}, {})
// is left as written, as bash does.
func braceGroup(p string, from int) (open, end int, alts []string, ok bool) {
	for i := from; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
			continue
		case '{':
		default:
			continue
		}
		depth, start := 0, i+1
		var parts []string
		close := -1
	scan:
		for j := i + 1; j < len(p); j++ {
			switch p[j] {
			case '\\':
				j++
			case '{':
				depth++
			case '}':
				if depth == 0 {
					close = j
					break scan
				}
				depth--
			case ',':
				if depth == 0 {
					parts = append(parts, p[start:j])
					start = j + 1
				}
			}
		}
		if close < 0 {
			continue // a "{" that never closes is a letter; bash goes on to the next
		}
		if i > 0 && p[i-1] == '$' && (i < 2 || p[i-2] != '\\') {
			i = close // ${...}: a parameter
			continue
		}
		if len(parts) > 0 {
			return i, close, append(parts, p[start:close]), true
		}
		if seq, ok := braceSequence(p[i+1 : close]); ok {
			return i, close, seq, true
		}
	}
	return 0, 0, nil, false
}

// braceSequence expands the inside of {1..5}, {05..10..5} or {a..e}; ok
// is false when it is not a sequence.
func braceSequence(s string) ([]string, bool) {
	f := strings.Split(s, "..")
	if len(f) < 2 || len(f) > 3 {
		return nil, false
	}
	step := 1
	if len(f) == 3 {
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, false
		}
		if n < 0 {
			n = -n
		}
		if n != 0 {
			step = n
		}
	}
	if a, b, ok := oneLetter(f[0]), oneLetter(f[1]), true; a != 0 && b != 0 && ok {
		var out []string
		for c := int(a); ; {
			out = append(out, string(rune(c)))
			if c == int(b) || len(out) > maxBraceWords {
				break
			}
			if a < b {
				c += step
				if c > int(b) {
					break
				}
			} else {
				c -= step
				if c < int(b) {
					break
				}
			}
		}
		return out, true
	}
	a, err1 := strconv.Atoi(f[0])
	b, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return nil, false
	}
	width := 0
	for _, x := range f[:2] {
		if d := strings.TrimPrefix(x, "-"); len(d) > 1 && d[0] == '0' && len(x) > width {
			width = len(x)
		}
	}
	var out []string
	for c := a; ; {
		out = append(out, fmt.Sprintf("%0*d", width, c))
		if c == b || len(out) > maxBraceWords {
			break
		}
		if a < b {
			if c += step; c > b {
				break
			}
		} else if c -= step; c < b {
			break
		}
	}
	return out, true
}

func oneLetter(s string) byte {
	if len(s) == 1 && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return s[0]
	}
	return 0
}

// expandShellBraces performs bash's brace expansion on a pattern-form
// word, left to right, nested groups included; the words stay in pattern
// form. Past maxBraceWords it returns errBraceBound.
func expandShellBraces(p string) ([]string, error) {
	budget := maxBraceWords
	return braceExpand(p, &budget, 0)
}

func braceExpand(p string, budget *int, depth int) ([]string, error) {
	if depth > maxShellDepth*4 {
		return nil, errBraceBound
	}
	open, end, alts, ok := braceGroup(p, 0)
	if !ok {
		return []string{p}, nil
	}
	rest, err := braceExpand(p[end+1:], budget, depth+1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range alts {
		inner, err := braceExpand(a, budget, depth+1)
		if err != nil {
			return nil, err
		}
		for _, x := range inner {
			for _, r := range rest {
				if len(out) >= maxBraceWords {
					return nil, errBraceBound
				}
				out = append(out, p[:open]+x+r)
			}
		}
	}
	*budget -= len(out)
	if *budget < 0 {
		return nil, errBraceBound
	}
	return out, nil
}

// braceStars replaces each brace expression of a pattern-form word by a
// "*": the pattern a word toolgate does not expand is read as, so that
// classes still see .{e,}nv as .*nv, which could be .env.
func braceStars(p string) string {
	for from := 0; ; {
		open, end, _, ok := braceGroup(p, from)
		if !ok {
			return p
		}
		p = p[:open] + "*" + p[end+1:]
		from = open + 1
	}
}

// hasPattern reports whether s holds a character a shell pattern expands
// (*, ? or [).
func hasPattern(s string) bool {
	return strings.ContainsAny(s, "*?[")
}

// shellGlob reports whether name (one path component) could be matched
// by the bash pattern pat: * and ? (never a leading dot), [...] with !
// or ^ for negation, ranges and POSIX classes ([[:alpha:]]), a backslash
// quoting the next byte. A bracket with no closing ] or an unknown class
// matches every name: toolgate fails closed where it cannot read a
// pattern.
func shellGlob(pat, name string) bool {
	for i := strings.IndexByte(pat, '['); i >= 0; {
		if _, next, ok := shellClass(pat, i, 0); !ok {
			return true
		} else if j := strings.IndexByte(pat[next:], '['); j >= 0 {
			i = next + j
		} else {
			break
		}
	}
	if strings.HasPrefix(name, ".") && !strings.HasPrefix(pat, ".") && !strings.HasPrefix(pat, `\.`) &&
		!(strings.HasPrefix(pat, "[") && !strings.HasPrefix(pat, "[!") && !strings.HasPrefix(pat, "[^")) {
		return false // a leading dot is matched only by a dot (or a bracket naming one)
	}
	px, nx := 0, 0
	starP, starN := -1, -1
	for nx < len(name) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starP, starN = px, nx
				px++
				continue
			case '?':
				px++
				nx++
				continue
			case '[':
				in, next, ok := shellClass(pat, px, name[nx])
				if !ok {
					return true
				}
				if in {
					px, nx = next, nx+1
					continue
				}
			case '\\':
				if px+1 < len(pat) && pat[px+1] == name[nx] {
					px, nx = px+2, nx+1
					continue
				}
			default:
				if c == name[nx] {
					px++
					nx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		px, nx = starP+1, starN
	}
	for px < len(pat) && pat[px] == '*' {
		px++
	}
	if px < len(pat) && pat[px] == '[' {
		if _, _, ok := shellClass(pat, px, 0); !ok {
			return true
		}
	}
	return px == len(pat)
}

// posixClasses are the [:name:] classes of bracket expressions.
var posixClasses = map[string]func(byte) bool{
	"alpha": func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' },
	"digit": func(b byte) bool { return b >= '0' && b <= '9' },
	"alnum": func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' },
	"upper": func(b byte) bool { return b >= 'A' && b <= 'Z' },
	"lower": func(b byte) bool { return b >= 'a' && b <= 'z' },
	"space": func(b byte) bool { return b == ' ' || b >= '\t' && b <= '\r' },
	"blank": func(b byte) bool { return b == ' ' || b == '\t' },
	"punct": func(b byte) bool {
		return b > ' ' && b < 0x7f && !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9')
	},
	"print":  func(b byte) bool { return b >= ' ' && b < 0x7f },
	"graph":  func(b byte) bool { return b > ' ' && b < 0x7f },
	"cntrl":  func(b byte) bool { return b < ' ' || b == 0x7f },
	"xdigit": func(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' },
	"word": func(b byte) bool {
		return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
	},
}

// shellClass reads the bracket expression at pat[i] and reports whether
// it matches b, and the index just past it; ok is false when it is
// malformed (no closing ], an unknown class).
func shellClass(pat string, i int, b byte) (in bool, next int, ok bool) {
	j := i + 1
	negate := j < len(pat) && (pat[j] == '!' || pat[j] == '^')
	if negate {
		j++
	}
	for first := true; j < len(pat); first = false {
		c := pat[j]
		if c == ']' && !first {
			return in != negate, j + 1, true
		}
		if c == '[' && j+1 < len(pat) && pat[j+1] == ':' {
			k := strings.Index(pat[j+2:], ":]")
			if k < 0 {
				return false, 0, false
			}
			f := posixClasses[pat[j+2:j+2+k]]
			if f == nil {
				return false, 0, false
			}
			in = in || f(b)
			j += k + 4
			continue
		}
		if c == '\\' && j+1 < len(pat) {
			j++
			c = pat[j]
		}
		lo, hi := c, c
		if j+2 < len(pat) && pat[j+1] == '-' && pat[j+2] != ']' {
			hi = pat[j+2]
			j += 2
		}
		in = in || lo <= b && b <= hi
		j++
	}
	return false, 0, false
}
