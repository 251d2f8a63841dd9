package rules

import (
	"regexp"
	"strings"
)

// sedFile is a file a sed script reads (r, R) or writes (w, W, the w flag
// of s): the name is the rest of the script's line, taken literally.
type sedFile struct {
	write bool
	name  string
}

// sedScript reads a sed script (GNU syntax) and returns the files it
// reads and writes. ok is false when the script holds anything but the
// commands known to do no more than edit the stream (s without the e
// flag, y, p, d, n, q, labels and branches, the hold space...) and the
// file commands: the e command and flag run a shell command, and a
// command it does not know may do anything, so neither is shown to rules
// as anything but an escape. Where the parse could end a command earlier
// than sed does, it does, so the rest is read as commands too.
func sedScript(s string) (files []sedFile, ok bool) {
	i := 0
	restOfLine := func() string {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			j = len(s) - i
		}
		v := s[i : i+j]
		i += j
		return v
	}
	blanks := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	fileArg := func(write bool) bool {
		blanks()
		name := restOfLine()
		if name == "" {
			return false
		}
		files = append(files, sedFile{write: write, name: name})
		return true
	}
	for {
		for i < len(s) && strings.IndexByte(" \t\n;", s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			return files, true
		}
		if s[i] == '#' {
			restOfLine()
			continue
		}
		if s[i] == '}' {
			i++
			continue
		}
		var good bool
		if i, good = sedAddress(s, i, true); !good {
			return nil, false
		}
		if i < len(s) && s[i] == ',' {
			if i, good = sedAddress(s, i+1, false); !good {
				return nil, false
			}
		}
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '!') {
			i++
		}
		if i >= len(s) {
			return nil, false
		}
		c := s[i]
		i++
		switch c {
		case '{':
			continue
		case '=', 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z', 'F':
		case 'l', 'q', 'Q', 'L':
			blanks()
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
		case ':', 'b', 't', 'T':
			// A label ends at the first blank, ; or } here, which is
			// never later than where sed ends it.
			blanks()
			for i < len(s) && strings.IndexByte(" \t\n;}", s[i]) < 0 {
				i++
			}
		case 'a', 'i', 'c':
			// Text to print, to the end of the line; a continued line is
			// read as commands, which sed would print.
			restOfLine()
			continue
		case 'r', 'R', 'w', 'W':
			if !fileArg(c == 'w' || c == 'W') {
				return nil, false
			}
			continue
		case 'y':
			if i, good = sedPart(s, i, false); good {
				i, good = sedPart(s, i-1, false)
			}
			if !good {
				return nil, false
			}
		case 's':
			if i, good = sedPart(s, i, true); good {
				i, good = sedPart(s, i-1, false)
			}
			if !good {
				return nil, false
			}
			for i < len(s) && strings.IndexByte("gpiImM0123456789", s[i]) >= 0 {
				i++
			}
			if i < len(s) && s[i] == 'w' {
				i++
				if !fileArg(true) {
					return nil, false
				}
				continue
			}
		default: // e, v, and what sed does not know
			return nil, false
		}
		// A command ends at a blank, ;, a newline, } or a comment.
		if i < len(s) && strings.IndexByte(" \t\n;}#", s[i]) < 0 {
			return nil, false
		}
	}
}

// sedAddress skips an address at s[i:] (none at all is an address too):
// a line number, first~step, $, /re/ or \cREc with I and M flags, and
// after a comma also +N and ~N.
func sedAddress(s string, i int, first bool) (int, bool) {
	if i >= len(s) {
		return i, true
	}
	digits := func() {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	switch c := s[i]; {
	case c >= '0' && c <= '9':
		digits()
		if first && i < len(s) && s[i] == '~' {
			i++
			digits()
		}
	case c == '$':
		i++
	case !first && (c == '+' || c == '~'):
		i++
		digits()
	case c == '/' || c == '\\':
		start := i
		if c == '\\' {
			start++
		}
		var good bool
		if i, good = sedPart(s, start, true); !good {
			return i, false
		}
		for i < len(s) && (s[i] == 'I' || s[i] == 'M') {
			i++
		}
	}
	return i, true
}

// sedPart skips a delimited part of s: s[i] is the delimiter, and the
// part ends after its next unescaped occurrence (a regular expression's
// bracket expression holds the delimiter literally). It returns the index
// after the closing delimiter.
func sedPart(s string, i int, regex bool) (int, bool) {
	if i >= len(s) || s[i] == '\n' || s[i] == '\\' {
		return i, false
	}
	delim := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == delim:
			return i + 1, true
		case regex && s[i] == '[':
			j := i + 1
			if j < len(s) && s[j] == '^' {
				j++
			}
			if j < len(s) && s[j] == ']' {
				j++
			}
			for j < len(s) && s[j] != ']' {
				if s[j] == '[' && j+1 < len(s) && strings.IndexByte(":.=", s[j+1]) >= 0 {
					if k := strings.Index(s[j+2:], string(s[j+1])+"]"); k >= 0 {
						j += k + 4
						continue
					}
				}
				j++
			}
			if j >= len(s) {
				return i, false
			}
			i = j
		}
	}
	return i, false
}

var (
	// awkRuns matches what lets an awk program run a command or read or
	// write a file of its choosing: getline in any form, system(),
	// close() and fflush() of a named stream, ARGV and ARGC (the files it
	// reads), PROCINFO, and gawk's @ (indirect calls, @include, @load).
	// It is matched on the whole text, strings too: a string may be
	// what an indirect call calls.
	awkRuns = regexp.MustCompile(`\b(?:getline|system|close|ARGV|ARGC|PROCINFO)\b|\bfflush\s*\(\s*[^)\s]|@\s*[A-Za-z_]`)
	// awkEnvName matches ENVIRON["NAME"]: the one variable it reads.
	awkEnvName = regexp.MustCompile(`\bENVIRON\s*\[\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\]`)
	awkEnviron = regexp.MustCompile(`\bENVIRON\b`)
)

// awkScript reports whether an awk program runs commands or touches files
// of its own choosing (runs), and the environment variables it reads ("*"
// for one it cannot name).
func awkScript(s string) (runs bool, env []string) {
	for _, m := range awkEnvName.FindAllStringSubmatch(s, -1) {
		env = append(env, m[1])
	}
	if awkEnviron.MatchString(awkEnvName.ReplaceAllString(s, "")) {
		env = append(env, "*")
	}
	if awkRuns.MatchString(s) {
		return true, env
	}
	// print > "file", print >> "file", print | "cmd", print |& "cmd":
	// a > or | in a print statement, outside strings and regular
	// expressions. Both ways of reading a slash (regular expression or
	// division) are tried, so a misread one hides nothing.
	return awkPrintRedirects(s, true) || awkPrintRedirects(s, false), env
}

// awkPrintRedirects reports whether a print or printf statement in s holds
// > or |, read with strings skipped and, if regexes, a slash where an
// operand may start begins a regular expression.
func awkPrintRedirects(s string, regexes bool) bool {
	inPrint := false
	operand := false // the last token ends an operand, so / divides
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			operand = true
		case c == '/' && regexes && !operand:
			for i++; i < len(s) && s[i] != '/' && s[i] != '\n'; i++ {
				if s[i] == '\\' {
					i++
				} else if s[i] == '[' {
					for i++; i < len(s) && s[i] != ']' && s[i] != '\n'; i++ {
					}
				}
			}
			operand = true
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			inPrint = false
			operand = false
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			if w := s[i:j]; w == "print" || w == "printf" {
				inPrint = true
				operand = false
			} else {
				operand = true
			}
			i = j - 1
		case c == ')' || c == ']' || c == '$':
			operand = c != '$'
		case c == '\n' && awkContinues(s[:i]):
			// A statement goes on after a backslash-newline, a comma,
			// && or ||.
		case c == ';' || c == '{' || c == '}' || c == '\n':
			inPrint = false
			operand = false
		case c == '>' || c == '|':
			if inPrint {
				return true
			}
			operand = false
		case c == ' ' || c == '\t':
		default:
			operand = false
		}
	}
	return false
}

// awkContinues says whether an awk statement ending s goes on past the
// newline that follows it.
func awkContinues(s string) bool {
	s = strings.TrimRight(s, " \t")
	return strings.HasSuffix(s, "\\") || strings.HasSuffix(s, ",") || strings.HasSuffix(s, "&&") || strings.HasSuffix(s, "||")
}

var (
	// jqEnvName matches a jq or yq filter's read of one named variable:
	// env.NAME, $ENV.NAME, env(NAME), strenv(NAME).
	jqEnvName = regexp.MustCompile(`(?:\$ENV|(?:^|[^.\w$"])env)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)|(?:^|[^.\w$"])(?:strenv|env)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)`)
	// jqEnvAny matches any other read of the environment: env, $ENV,
	// strenv, env() of a computed name, yq's envsubst.
	jqEnvAny = regexp.MustCompile(`\$ENV\b|(?:^|[^.\w$"])env\b|\bstrenv\b|\benvsubst\b`)
	// yqLoad matches yq's load operators and jq's import and include,
	// which read a file the filter names.
	yqLoad = regexp.MustCompile(`\bload(?:_[a-z0-9]+)?\s*\(|\b(?:import|include)\s*"`)
)

// jqScript returns the environment variables a jq or yq filter reads
// ("*" for one it cannot name) and whether it loads a file of its own
// (yq's load, jq's modules).
func jqScript(s string) (env []string, loads bool) {
	for _, m := range jqEnvName.FindAllStringSubmatch(s, -1) {
		env = append(env, m[1]+m[2])
	}
	if jqEnvAny.MatchString(jqEnvName.ReplaceAllString(s, "")) {
		env = append(env, "*")
	}
	return env, yqLoad.MatchString(s)
}
