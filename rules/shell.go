package rules

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// errShell marks a command line the shell helpers cannot split (unterminated
// quote, nesting too deep). It becomes an evaluation error: on_error applies.
var errShell = errors.New("shell")

// maxShellDepth bounds how deep shell.commands follows $(...), `...`, <(...)
// and sh -c "..." into nested command lines.
const maxShellDepth = 8

// shellOps are the control operators that end a simple command.
var shellOps = []string{"&&", "||", "|&", ";;", ";", "|", "&", "\n", "(", ")"}

// shellToken is one word or operator of a command line. Nested holds the
// command lines found in $(...), `...`, <(...) and >(...) inside the word.
// computed is set on a word toolgate did not expand exactly (a brace
// expansion past maxBraceWords, read as a pattern: see braceStars).
type shellToken struct {
	text     string
	op       bool
	nested   []string
	computed bool
}

// shellSplit tokenizes a POSIX-like command line: quotes and backslashes are
// removed from words; control operators (&& || ; | & newline parentheses) and
// redirections (> >> < 2> 2>&1 &> ...) become tokens of their own; comments
// are dropped; $'...' strings are decoded and brace expressions expanded,
// as bash does (an unquoted .{e,}nv gives the words .env and .nv). It is a
// policy helper, not a shell: it does not expand variables, globs or
// aliases, and heredoc bodies are read as commands.
func shellSplit(s string) ([]shellToken, error) {
	var (
		toks   []shellToken
		word   strings.Builder
		pat    strings.Builder // the word in pattern form: what was quoted escaped (quotePattern)
		inWord bool
		nested []string
		quoted = func(t string) {
			word.WriteString(t)
			quotePattern(&pat, t)
		}
		flushed = func() {
			if inWord {
				toks = append(toks, braceWords(word.String(), pat.String(), nested)...)
			}
			word.Reset()
			pat.Reset()
			inWord, nested = false, nil
		}
	)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			flushed()
			i++
		case c == '\\':
			if i+1 < len(s) && s[i+1] == '\n' { // line continuation
				i += 2
				continue
			}
			if i+1 < len(s) {
				quoted(s[i+1 : i+2])
				i += 2
			} else {
				i++
			}
			inWord = true
		case c == '#' && !inWord:
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated single quote", errShell)
			}
			quoted(s[i+1 : i+1+end])
			i += end + 2
			inWord = true
		case c == '$' && i+1 < len(s) && s[i+1] == '\'':
			var dec strings.Builder
			j, err := ansiQuote(s, i+2, &dec)
			if err != nil {
				return nil, err
			}
			quoted(dec.String())
			i, inWord = j, true
		case c == '$' && i+1 < len(s) && s[i+1] == '"':
			// $"...": bash's locale translation, which is the string
			// itself where no message catalog translates it.
			i++
			continue
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				switch {
				case s[j] == '\\' && j+1 < len(s) && strings.IndexByte("$`\"\\\n", s[j+1]) >= 0:
					if s[j+1] != '\n' {
						quoted(s[j+1 : j+2])
					}
					j++
				case s[j] == '$' && j+1 < len(s) && s[j+1] == '(' || s[j] == '`':
					inner, end, err := substitution(s, j)
					if err != nil {
						return nil, err
					}
					quoted(s[j:end])
					nested = append(nested, inner)
					j = end - 1
				default:
					quoted(s[j : j+1])
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%w: unterminated double quote", errShell)
			}
			i, inWord = j+1, true
		case c == '$' && i+1 < len(s) && s[i+1] == '(' || c == '`' ||
			(c == '<' || c == '>') && i+1 < len(s) && s[i+1] == '(':
			inner, end, err := substitution(s, i)
			if err != nil {
				return nil, err
			}
			quoted(s[i:end])
			nested = append(nested, inner)
			i, inWord = end, true
		case c == '>' || c == '<':
			// A redirection: an fd number or & just before it belongs to it.
			prefix := ""
			if inWord && (isDigits(word.String()) || word.String() == "&") {
				prefix = word.String()
				word.Reset()
				pat.Reset()
				inWord = false
			} else {
				flushed()
			}
			j := i + 1
			for j < len(s) && (s[j] == '>' || s[j] == '<' || s[j] == '|') && j-i < 3 {
				j++
			}
			if j < len(s) && s[j] == '&' {
				j++
				// >&2 and <&- name a descriptor only when the word ends
				// there: bash reads >&2x as >& 2x, a file named 2x.
				k := j
				for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '-') {
					j++
				}
				if j < len(s) && !strings.ContainsRune(" \t\n;|&<>()", rune(s[j])) {
					j = k
				}
			}
			toks = append(toks, shellToken{text: prefix + s[i:j]})
			i = j
		case c == '&' && i+1 < len(s) && s[i+1] == '>':
			flushed()
			word.WriteByte('&')
			pat.WriteByte('&')
			inWord = true
			i++
		default:
			if op := shellOp(s[i:]); op != "" {
				flushed()
				toks = append(toks, shellToken{text: op, op: true})
				i += len(op)
				continue
			}
			word.WriteByte(c)
			pat.WriteByte(c)
			inWord = true
			i++
		}
	}
	flushed()
	return toks, nil
}

// braceWords returns the words one word gives after brace expansion: the
// word text itself when its pattern form pat has no brace expression; one
// word per alternative (the first carrying the word's nested command
// lines); past maxBraceWords, the word read as a pattern (braceStars) and
// marked computed.
func braceWords(text, pat string, nested []string) []shellToken {
	if !strings.Contains(pat, "{") {
		return []shellToken{{text: text, nested: nested}}
	}
	words, err := expandShellBraces(pat)
	if err != nil {
		return []shellToken{{text: unquotePattern(braceStars(pat)), nested: nested, computed: true}}
	}
	out := make([]shellToken, len(words))
	for i, w := range words {
		out[i] = shellToken{text: unquotePattern(w)}
	}
	out[0].nested = nested
	return out
}

func shellOp(s string) string {
	for _, op := range shellOps {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// substitution reads $(...), <(...), >(...) or `...` at s[i] and returns the
// inner command line and the index just past its end.
func substitution(s string, i int) (inner string, end int, err error) {
	if s[i] == '`' {
		j := i + 1
		for ; j < len(s) && s[j] != '`'; j++ {
			if s[j] == '\\' {
				j++
			}
		}
		if j >= len(s) {
			return "", 0, fmt.Errorf("%w: unterminated backquote", errShell)
		}
		return s[i+1 : j], j + 1, nil
	}
	depth := 0
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '\'':
			k := strings.IndexByte(s[j+1:], '\'')
			if k < 0 {
				return "", 0, fmt.Errorf("%w: unterminated single quote", errShell)
			}
			j += k + 1
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[i+2 : j], j + 1, nil
			}
		}
	}
	return "", 0, fmt.Errorf("%w: unterminated %s", errShell, s[i:i+2])
}

// shellWords returns the words and operators of a command line.
func shellWords(s string) ([]string, error) {
	toks, err := shellSplit(s)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.text
	}
	return out, nil
}

// shellCommands returns the simple commands of a command line as written,
// followed by those nested in substitutions and in sh -c / bash -c / eval
// strings (recursively, up to maxShellDepth).
func shellCommands(s string) ([][]string, error) {
	var out [][]string
	err := appendCommands(&out, s, 0)
	return out, err
}

func appendCommands(out *[][]string, s string, depth int) error {
	if depth > maxShellDepth {
		return fmt.Errorf("%w: command nesting deeper than %d", errShell, maxShellDepth)
	}
	toks, err := shellSplit(s)
	if err != nil {
		return err
	}
	var nested []string
	cmd := []string{}
	flush := func() {
		if len(cmd) > 0 {
			*out = append(*out, cmd)
			nested = append(nested, innerScript(cmd)...)
		}
		cmd = []string{}
	}
	for _, t := range toks {
		nested = append(nested, t.nested...)
		if t.op {
			flush()
			continue
		}
		cmd = append(cmd, t.text)
	}
	flush()
	for _, n := range nested {
		if err := appendCommands(out, n, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// shellInterpreters run their -c argument as a command line.
var shellInterpreters = map[string]bool{"sh": true, "bash": true, "zsh": true, "dash": true, "ksh": true, "ash": true, "fish": true}

// innerScript returns the command lines a simple command runs itself:
// sh -c SCRIPT, bash -lc SCRIPT, eval WORDS..., also behind wrappers.
func innerScript(cmd []string) []string {
	w := shellUnwrap(cmd)
	if len(w) == 0 {
		return nil
	}
	switch {
	case w[0] == "eval":
		return []string{strings.Join(w[1:], " ")}
	case shellInterpreters[w[0]]:
		for i := 1; i < len(w); i++ {
			a := w[i]
			if a == "--" || !strings.HasPrefix(a, "-") {
				return nil
			}
			if !strings.HasPrefix(a, "--") && strings.ContainsRune(a, 'c') && i+1 < len(w) {
				return []string{w[i+1]}
			}
		}
	}
	return nil
}

// shellWrappers maps a wrapper program to its options that take a value
// (as a separate word). A wrapper runs the rest of its words as a command.
var shellWrappers = map[string]map[string]bool{
	"sudo":       {"-u": true, "-g": true, "-h": true, "-p": true, "-C": true, "-D": true, "-r": true, "-t": true, "-U": true, "-T": true, "-R": true},
	"doas":       {"-u": true, "-C": true},
	"env":        {"-u": true, "-C": true, "-S": true, "--unset": true, "--chdir": true},
	"nohup":      {},
	"time":       {"-f": true, "-o": true},
	"nice":       {"-n": true},
	"ionice":     {"-c": true, "-n": true, "-p": true},
	"timeout":    {"-s": true, "-k": true, "--signal": true, "--kill-after": true},
	"command":    {},
	"builtin":    {},
	"exec":       {"-a": true},
	"stdbuf":     {"-i": true, "-o": true, "-e": true},
	"xargs":      {"-I": true, "-n": true, "-P": true, "-L": true, "-d": true, "-a": true, "-E": true, "-s": true, "--max-args": true, "--max-procs": true, "--delimiter": true, "--arg-file": true, "--replace": true},
	"caffeinate": {"-t": true, "-w": true},
}

// shellUnwrap strips what runs before the real program: leading NAME=value
// assignments and wrappers (sudo, env, nohup, time, nice, timeout, xargs,
// ...) with their options. The returned first word is the program's base name.
func shellUnwrap(cmd []string) []string {
	w := cmd
	for len(w) > 0 {
		if isAssignment(w[0]) {
			w = w[1:]
			continue
		}
		if _, ok := shellWrappers[path.Base(w[0])]; !ok {
			break
		}
		w = unwrapOnce(w)
	}
	if len(w) == 0 {
		return []string{}
	}
	out := make([]string, len(w))
	copy(out, w)
	out[0] = path.Base(out[0])
	return out
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := w[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
