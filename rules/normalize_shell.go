package rules

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// shellAnalysis walks one call's command line into its normCall.
type shellAnalysis struct {
	n  *normCall
	ws Workspace
	// cwdUnsure: a cd of the line went where only the shell knows (cd -,
	// popd, cd -P a/..), so the directory later commands run in is a
	// guess; git run after it may find any repository (gitGlobal).
	cwdUnsure bool
	// nested are the simple commands found in substitutions, heredocs and
	// sh -c strings, as written; they follow the top-level ones in cmd.argv.
	nested [][]string
}

// line analyses a command line run in directory cwd. A `cd` changes the
// directory the later commands of the same line resolve paths against.
func (sa *shellAnalysis) line(s, cwd string, depth int) error {
	if depth > maxShellDepth {
		return fmt.Errorf("%w: command nesting deeper than %d", errShell, maxShellDepth)
	}
	s, bodies, err := cutHeredocs(s)
	if err != nil {
		return err
	}
	toks, err := shellSplit(s)
	if err != nil {
		return err
	}
	var (
		words  []string
		redirs []string // operator, target pairs
		nested []string
		docs   []heredoc
	)
	flush := func() error {
		if len(words) == 0 && len(redirs) == 0 {
			return nil
		}
		if depth == 0 {
			sa.n.argv = append(sa.n.argv, words)
		} else {
			sa.nested = append(sa.nested, words)
		}
		next, err := sa.simple(words, redirs, docs, cwd, depth)
		cwd = next
		words, redirs, docs = nil, nil, nil
		return err
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		nested = append(nested, t.nested...)
		if t.computed {
			sa.n.addComputed(t.text)
		}
		switch {
		case t.op:
			if err := flush(); err != nil {
				return err
			}
		case isRedirection(t.text):
			target := ""
			if !redirToFD.MatchString(t.text) && i+1 < len(toks) && !toks[i+1].op {
				i++
				target = toks[i].text
				nested = append(nested, toks[i].nested...)
			}
			if strings.HasPrefix(strings.TrimLeft(t.text, "0123456789"), "<<") && !strings.HasPrefix(strings.TrimLeft(t.text, "0123456789"), "<<<") {
				if len(bodies) > 0 {
					docs = append(docs, bodies[0])
					bodies = bodies[1:]
				}
				continue
			}
			redirs = append(redirs, t.text, target)
		default:
			words = append(words, t.text)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for _, in := range nested {
		if err := sa.line(in, cwd, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// redirToFD matches a redirection that names its target itself: >&2, 2>&1, <&-.
var redirToFD = regexp.MustCompile(`&[0-9-]+$`)

// redirAccess says what the redirection op (as shellSplit gives it, fd
// number or & included) does with its target word ("" when op names a
// descriptor itself): reads it, writes it, or both. Every form that opens
// a file does one: < reads; >, >>, >|, &>, &>> write; <> reads and writes
// (the file is opened for both, so 1<>.git/config writes it); >&WORD,
// N>&WORD and <&WORD duplicate a descriptor when WORD is digits or -, and
// otherwise open the file WORD (bash's >&file is &>file). A here-string's
// word is read as a path too: a program that takes names on its input
// (xargs cat <<< ~/.ssh/id_rsa) reads it. A here-document's delimiter
// names nothing.
func redirAccess(op, target string) (reads, writes bool) {
	op = strings.TrimLeft(op, "0123456789&")
	if target == "" || strings.HasPrefix(op, "<<") && !strings.HasPrefix(op, "<<<") {
		return false, false
	}
	if strings.HasSuffix(op, "&") && isFDWord(target) {
		return false, false
	}
	return strings.Contains(op, "<"), strings.Contains(op, ">")
}

// isFDWord reports whether w, the word after >& or <&, names a descriptor
// (2, 3-) or closes one (-) rather than a file.
func isFDWord(w string) bool {
	return w == "-" || isDigits(strings.TrimSuffix(w, "-"))
}

// isRedirection reports whether a token from shellSplit is a redirection
// operator (the tokenizer keeps them as words of their own).
func isRedirection(w string) bool {
	w = strings.TrimLeft(w, "0123456789&")
	return w != "" && (w[0] == '>' || w[0] == '<') && strings.Trim(w, "<>|&-0123456789") == ""
}

// heredoc is one here-document's body; code is set when its delimiter was
// unquoted, so the shell expands $(...) inside it.
type heredoc struct {
	body   string
	expand bool
}

var heredocStart = regexp.MustCompile(`^<<(-?)[ \t]*(?:'([^'\n]*)'|"([^"\n]*)"|\\?([A-Za-z0-9_.-]+))`)

// cutHeredocs removes the bodies of here-documents from a command line
// (keeping their operator and delimiter), so that data is not read as
// commands, and returns them in order.
func cutHeredocs(s string) (string, []heredoc, error) {
	if !strings.Contains(s, "<<") {
		return s, nil, nil
	}
	var (
		out     strings.Builder
		bodies  []heredoc
		pending []struct {
			delim  string
			strip  bool
			expand bool
		}
		sq, dq bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && !sq && i+1 < len(s):
			out.WriteByte(c)
			out.WriteByte(s[i+1])
			i++
			continue
		case c == '\'' && !dq:
			sq = !sq
		case c == '"' && !sq:
			dq = !dq
		case c == '<' && !sq && !dq && strings.HasPrefix(s[i:], "<<<"): // a here-string
			out.WriteString("<<<")
			i += 2
			continue
		case c == '<' && !sq && !dq && strings.HasPrefix(s[i:], "<<"):
			m := heredocStart.FindStringSubmatch(s[i:])
			if m != nil {
				d := m[2] + m[3] + m[4]
				pending = append(pending, struct {
					delim  string
					strip  bool
					expand bool
				}{d, m[1] == "-", m[4] != "" && !strings.HasPrefix(m[0][2+len(m[1]):], `\`)})
				out.WriteString(s[i : i+len(m[0])])
				i += len(m[0]) - 1
				continue
			}
		case c == '\n' && !sq && !dq && len(pending) > 0:
			out.WriteByte(c)
			rest := s[i+1:]
			for _, p := range pending {
				var body strings.Builder
				found := false
				for rest != "" {
					ln := rest
					next := ""
					if j := strings.IndexByte(rest, '\n'); j >= 0 {
						ln, next = rest[:j], rest[j+1:]
					}
					rest = next
					cmp := ln
					if p.strip {
						cmp = strings.TrimLeft(ln, "\t")
					}
					if cmp == p.delim {
						found = true
						break
					}
					body.WriteString(ln)
					body.WriteByte('\n')
				}
				if !found {
					return "", nil, fmt.Errorf("%w: here-document %q is not terminated", errShell, p.delim)
				}
				bodies = append(bodies, heredoc{body: body.String(), expand: p.expand})
			}
			pending = nil
			i = len(s) - len(rest) - 1
			continue
		}
		out.WriteByte(c)
	}
	if len(pending) > 0 {
		return "", nil, fmt.Errorf("%w: here-document %q has no body", errShell, pending[0].delim)
	}
	return out.String(), bodies, nil
}

// simple analyses one simple command (words as written, redirections as
// operator/target pairs, here-document bodies) run in cwd, and returns the
// directory the next command of the line runs in.
func (sa *shellAnalysis) simple(words, redirs []string, docs []heredoc, cwd string, depth int) (string, error) {
	n := sa.n
	for i := 0; i+1 < len(redirs); i += 2 {
		target := redirs[i+1]
		sa.envRefs(target)
		reads, writes := redirAccess(redirs[i], target)
		if !reads && !writes {
			continue
		}
		p := resolvePath(target, cwd, sa.ws)
		if rest, ok := strings.CutPrefix(p, "/dev/tcp/"); ok {
			n.addURL(rest) // bash's network redirection: /dev/tcp/HOST/PORT
		} else if rest, ok := strings.CutPrefix(p, "/dev/udp/"); ok {
			n.addURL(rest)
		}
		n.addPath(p)
		switch {
		case reads:
			// Read first (<> too): what it held before is read, so a
			// secret it names stays one.
			mark(&n.read, p)
			if writes && !isDevSink(p) {
				n.addWritten(p)
			}
		case !isDevSink(p):
			n.addDest(p)
		}
	}
	for _, w := range words {
		sa.envRefs(w)
	}
	prog, err := sa.run(words, cwd, depth)
	if err != nil {
		return cwd, err
	}
	for _, d := range docs {
		switch {
		case shellInterpreters[prog]:
			if err := sa.line(d.body, cwd, depth+1); err != nil {
				return cwd, err
			}
		case interpreters[prog] != nil:
			n.addEscape(prog + " <<")
			sa.codeText(d.body, cwd)
		case d.expand && strings.ContainsAny(d.body, "$`"):
			// An unquoted delimiter: the shell runs the substitutions
			// inside the body before the command reads it.
			for _, in := range substitutionsIn(d.body) {
				if err := sa.line(in, cwd, depth+1); err != nil {
					return cwd, err
				}
			}
			sa.envRefs(d.body)
		}
	}
	// A cd in braces, an if or a loop (if cd x; then ...) moves the
	// commands after it too.
	w := shellUnwrap(stripKeywords(words))
	if len(w) > 1 && w[0] == "set" && (strings.Contains(strings.Join(w, " "), "physical") ||
		slices.ContainsFunc(w[1:], func(a string) bool { return strings.HasPrefix(a, "-") && strings.ContainsRune(a, 'P') })) {
		sa.cwdUnsure = true // set -P: every later cd is physical
	}
	if len(w) > 0 && (w[0] == "cd" || w[0] == "pushd" || w[0] == "popd") {
		var ops []string
		physical := false
		for _, a := range w[1:] {
			if strings.HasPrefix(a, "-") && len(a) > 1 && a != "--" {
				physical = physical || strings.ContainsRune(a, 'P')
			} else if a != "--" {
				ops = append(ops, a)
			}
		}
		switch {
		case w[0] == "cd" && len(ops) == 0:
			n.addPath(sa.ws.home()) // a bare cd goes home
			return sa.ws.home(), nil
		case w[0] == "popd" || len(ops) != 1 || ops[0] == "-" || ops[0] == "+":
			// Where it goes is the shell's to know: the directory stack,
			// $OLDPWD, the first of two operands.
			sa.cwdUnsure = true
			return cwd, nil
		default:
			// cd -P goes to a symlink's target, out of which a later ..
			// climbs, where the text says it climbs back.
			sa.cwdUnsure = sa.cwdUnsure || physical
			return resolvePath(ops[0], cwd, sa.ws), nil
		}
	}
	return cwd, nil
}

// stripKeywords drops the shell grammar around a simple command:
// if/while/until/do/then/else, braces and ! lead the command they apply
// to; done/fi/esac end one.
func stripKeywords(w []string) []string {
	for len(w) > 0 {
		switch w[0] {
		case "if", "then", "else", "elif", "while", "until", "do", "!", "{", "}", "done", "fi", "esac", "in":
			w = w[1:]
			continue
		}
		return w
	}
	return w
}

// hasDotDot reports whether path p has a .. element: read as text it
// climbs out of the directory before it, while the kernel climbs out of
// where a symlink there leads.
func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// envChdir reads env's -C DIR, -CDIR (also in a cluster) or --chdir[=]DIR
// at the start of w: the directory, and how many more words it took.
func envChdir(w []string) (string, int) {
	a := w[0]
	name, val, hasVal := strings.Cut(a, "=")
	switch {
	case longOpt(name, 4, "--chdir") && hasVal:
		return val, 0
	case longOpt(name, 4, "--chdir") || !strings.HasPrefix(a, "--") && clusterValue(a, 'C', "i0v") == "-":
		if len(w) > 1 {
			return w[1], 1
		}
	case !strings.HasPrefix(a, "--"):
		return clusterValue(a, 'C', "i0v"), 0
	}
	return "", 0
}

// substitutionsIn returns the command lines in $(...) and `...` of text
// the shell expands (a here-document body).
func substitutionsIn(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '(' || s[i] == '`' {
			inner, end, err := substitution(s, i)
			if err != nil {
				return append(out, s[i:])
			}
			out = append(out, inner)
			i = end - 1
		}
	}
	return out
}

func isDevSink(p string) bool {
	switch p {
	case "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/1", "/dev/fd/2":
		return true
	}
	return false
}

var envRef = regexp.MustCompile(`\$\{?!?([A-Za-z_][A-Za-z0-9_]*)`)

// envRefs records the variables a word expands.
func (sa *shellAnalysis) envRefs(w string) {
	if !strings.Contains(w, "$") {
		return
	}
	for _, m := range envRef.FindAllStringSubmatch(w, -1) {
		sa.n.addEnv(m[1])
	}
}

// interpreters map a language runtime to its options that take inline
// code (the code is the next word, or the rest of the option word).
var interpreters = map[string][]string{
	"python": {"-c"}, "python2": {"-c"}, "python3": {"-c"}, "pypy": {"-c"}, "pypy3": {"-c"},
	"node": {"-e", "-p", "--eval", "--print"}, "nodejs": {"-e", "-p", "--eval", "--print"},
	"deno": {"eval"}, "bun": {"-e", "--eval", "-p", "--print"},
	"perl": {"-e", "-E"}, "ruby": {"-e"}, "php": {"-r"}, "lua": {"-e"}, "luajit": {"-e"},
	"tclsh": {}, "osascript": {"-e"}, "pwsh": {"-c", "-command", "-Command"}, "powershell": {"-c", "-command", "-Command"},
	"awk": {}, "gawk": {}, "mawk": {}, "nawk": {}, "R": {"-e"}, "Rscript": {"-e"}, "julia": {"-e"},
	"groovy": {"-e"}, "scala": {"-e"}, "elixir": {"-e"}, "erl": {"-eval"}, "jshell": {}, "expect": {"-c"},
	"gdb": {"-ex", "--ex", "-eval-command", "--eval-command"},
}

// pagers and editors run commands of their own (!cmd, LESSOPEN, :!).
var pagers = map[string]bool{
	"less": true, "more": true, "most": true, "man": true, "vi": true, "vim": true, "nvim": true, "view": true,
	"vimdiff": true, "emacs": true, "nano": true, "pico": true, "ed": true, "ex": true, "pg": true,
}

// packageRunners run a package's program: npx eslint, uvx ruff, pnpm dlx x.
// The value is the subcommand that makes the first word a runner ("" for
// none needed).
var packageRunners = map[string][]string{
	"npx": {""}, "bunx": {""}, "pnpx": {""}, "uvx": {""},
	"npm": {"exec", "x"}, "pnpm": {"dlx", "exec"}, "yarn": {"dlx", "exec"}, "bun": {"x"},
	"pipx": {"run"}, "uv": {"run", "tool run"}, "poetry": {"run"}, "pipenv": {"run"}, "pdm": {"run"},
	"hatch": {"run"}, "rye": {"run"}, "bundle": {"exec"}, "conda": {"run"}, "mamba": {"run"},
}

// packageRunnerOpts are runner options that take a value.
var packageRunnerOpts = map[string]bool{
	"-p": true, "--package": true, "--from": true, "-n": true, "--name": true, "--with": true, "-c": true, "--call": true,
	"--python": true, "--prefix": true, "-w": true, "--workspace": true,
}

// run analyses one simple command's words: it unwraps wrappers, records
// the command and its program, its paths, hosts, writes and escapes, and
// follows the commands it runs itself. It returns the program run.
func (sa *shellAnalysis) run(words []string, cwd string, depth int) (string, error) {
	n := sa.n
	if depth > maxShellDepth {
		return "", fmt.Errorf("%w: command nesting deeper than %d", errShell, maxShellDepth)
	}
	// for NAME in WORDS names values, not a program.
	w := stripKeywords(words)
	if len(w) > 0 && (w[0] == "for" || w[0] == "select" || w[0] == "case") {
		for _, v := range w[1:] {
			sa.wordPath(v, cwd)
		}
		return "", nil
	}
	if len(w) == 0 {
		return "", nil
	}
	if strings.ContainsRune(w[0], '/') && !strings.HasPrefix(w[0], "/") && !isAssignment(w[0]) {
		// A program run from the workspace is a path it names.
		sa.n.addPath(resolvePath(w[0], cwd, sa.ws))
	}
	feeder := "" // xargs or parallel: what runs gets operands no rule sees
	for {
		for len(w) > 0 && isAssignment(w[0]) {
			name, val, _ := strings.Cut(w[0], "=")
			sa.wordPath(val, cwd)
			sa.envAssign(name, val)
			if isLoaderVar(name) {
				n.addEscape(name + "=")
			}
			if strings.HasPrefix(name, "GIT_TRACE") && (strings.HasPrefix(val, "/") || strings.HasPrefix(val, "~")) && !strings.HasPrefix(val, "/dev/") {
				n.addDest(resolvePath(val, cwd, sa.ws)) // git appends its trace to the file
			}
			w = w[1:]
		}
		if len(w) == 0 {
			return "", nil
		}
		prog := programName(w[0])
		n.addProgram(prog)
		switch prog {
		case "env":
			if rest := unwrapOnce(w); len(rest) == 0 {
				n.addEnv("*")
				return prog, nil
			}
			for i := 0; i+1 < len(w); i++ {
				a := w[i+1]
				if a == "--" || !strings.HasPrefix(a, "-") {
					break
				}
				// -C DIR, -CDIR, --chdir[=]DIR: the command runs in DIR.
				if d, skip := envChdir(w[i+1:]); d != "" {
					cwd = resolvePath(d, cwd, sa.ws)
					i += skip
					continue
				}
				// -S STRING, -SSTRING, -iS STRING, --split-string[=]STRING
				// (abbreviated too): env splits STRING into the command
				// and its first words, and runs it with the rest.
				name, val, hasVal := strings.Cut(a, "=")
				if longOpt(name, 3, "--split-string") && !hasVal {
					val = "-"
				} else if !longOpt(name, 3, "--split-string") {
					val = clusterValue(a, 'S', "i0v")
				}
				switch {
				case val == "-" && i+2 < len(w):
					return prog, sa.line(strings.Join(w[i+2:], " "), cwd, depth+1)
				case val != "" && val != "-":
					return prog, sa.line(strings.Join(append([]string{val}, w[i+2:]...), " "), cwd, depth+1)
				}
			}
		case "command", "type", "which", "hash":
			if len(w) > 1 && (w[1] == "-v" || w[1] == "-V") || prog != "command" {
				return prog, nil
			}
		case "watch":
			rest := unwrapOnce(w)
			return prog, sa.line(strings.Join(rest, " "), cwd, depth+1)
		case "su", "runuser", "script":
			for i, a := range w {
				if (a == "-c" || a == "--command") && i+1 < len(w) {
					return prog, sa.line(w[i+1], cwd, depth+1)
				}
			}
		case "parallel":
			rest := unwrapOnce(w)
			for i, a := range rest {
				if strings.HasPrefix(a, ":::") {
					// The input sources: operands after :::, files of
					// them after ::::.
					for _, v := range rest[i:] {
						if !strings.HasPrefix(v, ":::") {
							sa.wordPath(v, cwd)
						}
					}
					rest = rest[:i]
					break
				}
			}
			if len(rest) == 0 {
				return prog, nil
			}
			w, feeder = rest, prog
			continue
		}
		if _, ok := shellWrappers[prog]; ok || extraWrappers[prog] != nil {
			next := unwrapOnce(w)
			// The wrapper's own options name paths too (xargs -a FILE,
			// strace -o FILE, flock FILE).
			sa.args(prog, w[:len(w)-len(next)], cwd)
			if len(next) == 0 {
				return prog, nil
			}
			if prog == "xargs" {
				feeder = prog
			}
			w = next
			continue
		}
		break
	}
	prog := programName(w[0])
	if feeder != "" {
		// The operands xargs or parallel appends come from its input (a
		// pipe, xargs -a FILE, parallel :::: FILE): ls | grep env | xargs
		// cat reads .env, named nowhere on the line.
		n.addComputed(feeder + " " + prog + ": the operands it reads from its input")
	}
	if feeder != "" && deletesRecursively(prog, w) {
		// ls | xargs rm -rf is rm -rf *, with operands no rule can read.
		n.addEscape(feeder + " " + prog + " -r")
	}
	if strings.ContainsRune(w[0], '/') && readers[prog] && !systemBinDir(w[0]) {
		// A program called like a system tool but run from elsewhere.
		n.addEscape(w[0])
	}
	cmd := append([]string{prog}, w[1:]...)
	if prog == "git" {
		var gitCwd string
		cmd, gitCwd = sa.gitGlobal(cmd, cwd)
		if gitCwd != "" {
			cwd = gitCwd
		}
	}
	n.commands = append(n.commands, cmd)
	sa.args(prog, cmd, cwd)

	// What the program runs itself.
	switch {
	case shellInterpreters[prog]:
		if s := innerScript(cmd); len(s) > 0 {
			return prog, sa.line(s[0], cwd, depth+1)
		}
	case prog == "eval":
		return prog, sa.line(strings.Join(cmd[1:], " "), cwd, depth+1)
	case prog == "find":
		for i := 1; i < len(cmd); i++ {
			switch cmd[i] {
			case "-exec", "-execdir", "-ok", "-okdir":
				j := i + 1
				for j < len(cmd) && cmd[j] != ";" && cmd[j] != "+" {
					j++
				}
				if j > i+1 {
					if _, err := sa.run(cmd[i+1:j], cwd, depth+1); err != nil {
						return prog, err
					}
				}
				i = j
			}
		}
	case prog == "git":
		return prog, sa.gitInner(cmd, cwd, depth)
	case prog == "docker" || prog == "podman" || prog == "docker-compose" || prog == "kubectl" || prog == "nerdctl":
		if inner := containerCommand(prog, cmd); len(inner) > 0 {
			_, err := sa.run(inner, cwd, depth+1)
			return prog, err
		}
	case interpreters[prog] != nil || strings.HasPrefix(prog, "python"):
		if len(cmd) > 2 && cmd[1] == "-m" && strings.HasPrefix(prog, "python") {
			_, err := sa.run(cmd[2:], cwd, depth+1)
			return prog, err
		}
	}
	if subs, ok := packageRunners[prog]; ok {
		rest := cmd[1:]
		matched := false
		for _, sub := range subs {
			if sub == "" {
				matched = true
				break
			}
			if sw := strings.Fields(sub); len(rest) >= len(sw) && strings.Join(rest[:len(sw)], " ") == sub {
				rest, matched = rest[len(sw):], true
				break
			}
		}
		if matched {
			for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
				if rest[0] == "--" {
					rest = rest[1:]
					break
				}
				if packageRunnerOpts[rest[0]] && len(rest) > 1 {
					rest = rest[1:]
				}
				rest = rest[1:]
			}
			if len(rest) > 0 {
				inner := append([]string{packageName(rest[0])}, rest[1:]...)
				_, err := sa.run(inner, cwd, depth+1)
				return prog, err
			}
		}
	}
	return prog, nil
}

// deletesRecursively reports whether the command w of prog deletes or
// opens up a tree: rm, shred or srm, chmod, chown or chgrp with -R or
// --recursive, find -delete.
func deletesRecursively(prog string, w []string) bool {
	switch prog {
	case "rm", "shred", "srm", "chmod", "chown", "chgrp":
		return slices.ContainsFunc(w[1:], func(a string) bool {
			return a == "--recursive" || len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.ContainsAny(a, "rR")
		})
	case "find":
		return slices.Contains(w, "-delete")
	}
	return false
}

// loaderVars are environment variables that make a program load or run
// other code: set before a command, they turn it into something else.
var loaderVars = map[string]bool{
	"LD_PRELOAD": true, "LD_LIBRARY_PATH": true, "LD_AUDIT": true, "BASH_ENV": true, "ENV": true, "PROMPT_COMMAND": true,
	"PATH": true, "GIT_SSH": true, "GIT_SSH_COMMAND": true, "GIT_EXTERNAL_DIFF": true, "GIT_PAGER": true, "PAGER": true,
	"GIT_EDITOR": true, "EDITOR": true, "VISUAL": true, "GIT_ASKPASS": true, "SSH_ASKPASS": true, "GIT_EXEC_PATH": true,
	"GIT_TEMPLATE_DIR": true, "GIT_DIR": true, "LESSOPEN": true, "LESSCLOSE": true, "PYTHONSTARTUP": true, "PYTHONPATH": true,
	"PYTHONHOME": true, "NODE_OPTIONS": true, "NODE_PATH": true, "PERL5OPT": true, "PERL5LIB": true, "RUBYOPT": true,
	"RUBYLIB": true, "JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true, "MANPAGER": true, "IFS": true, "SHELLOPTS": true,
	"PS4": true, "GCONV_PATH": true, "npm_config_script_shell": true, "NPM_CONFIG_SCRIPT_SHELL": true,
	"ACK_PAGER": true, "ACK_PAGER_COLOR": true, "ACK_OPTIONS": true, "ACKRC": true, "RIPGREP_CONFIG_PATH": true,
	// Where git and the shell find their config and directories: git reads
	// $HOME/.gitconfig, $XDG_CONFIG_HOME/git/config, GIT_COMMON_DIR's config.
	"HOME": true, "XDG_CONFIG_HOME": true, "GIT_COMMON_DIR": true, "GIT_WORK_TREE": true, "CDPATH": true, "OLDPWD": true,
	"GNUPGHOME": true, // gpg.conf can name programs gpg runs (git log --show-signature)
}

// isLoaderVar reports whether setting the variable name makes a program
// load or run code it names (loaderVars, DYLD_*, GIT_CONFIG*).
func isLoaderVar(name string) bool {
	return loaderVars[name] || strings.HasPrefix(name, "DYLD_") || strings.HasPrefix(name, "GIT_CONFIG")
}

// systemBinDir reports whether a program path lies in a system directory.
func systemBinDir(p string) bool {
	for _, d := range []string{"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/", "/usr/local/bin/", "/opt/homebrew/bin/", "/usr/local/sbin/"} {
		if strings.HasPrefix(p, d) && !strings.Contains(p[len(d):], "/") {
			return true
		}
	}
	return false
}

// containerValueOpts are options of docker/podman/kubectl exec and run
// that take a value, so the word after them is not the container.
var containerValueOpts = map[string]bool{
	"-e": true, "--env": true, "-u": true, "--user": true, "-w": true, "--workdir": true, "--env-file": true,
	"-v": true, "--volume": true, "-p": true, "--publish": true, "--name": true, "--network": true, "--net": true,
	"--entrypoint": true, "--mount": true, "--platform": true, "-l": true, "--label": true, "-c": true,
	"--container": true, "-n": true, "--namespace": true, "--context": true, "-f": true, "--file": true,
	"--project-name": true, "--pull": true, "--cpus": true, "-m": true, "--memory": true, "--restart": true,
	"--add-host": true, "--cap-add": true, "--device": true, "--hostname": true, "-h": true, "--index": true,
}

// containerCommand returns the command docker/podman exec or run, docker
// compose exec or run, or kubectl exec runs in its container: what follows
// the container (or image, or service) and its options, or a "--".
func containerCommand(prog string, cmd []string) []string {
	w := cmd[1:]
	if prog != "docker-compose" && len(w) > 0 && w[0] == "compose" {
		w = w[1:]
	}
	for len(w) > 0 && strings.HasPrefix(w[0], "-") { // global options (docker --context x, compose -f x)
		if containerValueOpts[w[0]] && len(w) > 1 {
			w = w[1:]
		}
		w = w[1:]
	}
	if len(w) == 0 || !(w[0] == "exec" || w[0] == "run" && prog != "kubectl") {
		return nil
	}
	w = w[1:]
	for i, a := range w {
		if a == "--" {
			return w[i+1:]
		}
	}
	if prog == "kubectl" {
		return nil // kubectl exec runs only what follows "--"
	}
	for len(w) > 0 && strings.HasPrefix(w[0], "-") {
		if containerValueOpts[w[0]] && len(w) > 1 {
			w = w[1:]
		}
		w = w[1:]
	}
	if len(w) < 2 {
		return nil
	}
	return w[1:]
}

// extraWrappers are wrappers shellUnwrap does not know, with their options
// that take a value; a wrapper runs the rest of its words as a command.
var extraWrappers = map[string]map[string]bool{
	"setsid": {}, "unbuffer": {}, "chrt": {}, "taskset": {}, "fakeroot": {}, "proxychains": {"-f": true},
	"proxychains4": {"-f": true}, "torsocks": {}, "firejail": {}, "catchsegv": {}, "busybox": {}, "toybox": {},
	"strace": {"-o": true, "-e": true, "-p": true, "-s": true, "-u": true}, "ltrace": {"-o": true, "-e": true},
	"systemd-run": {"-p": true, "--unit": true, "-u": true, "--property": true}, "chroot": {}, "nsenter": {"-t": true},
	"unshare": {}, "flock": {}, "dbus-run-session": {}, "cpulimit": {"-l": true}, "valgrind": {}, "sg": {},
	"doas": {"-u": true}, "pkexec": {"--user": true}, "ionice": {"-c": true, "-n": true}, "watch": {"-n": true},
	"parallel": {"-j": true, "--jobs": true},
}

// unwrapOnce strips one wrapper and its options (and, for a few, its
// positional argument) from w.
func unwrapOnce(w []string) []string {
	prog := programName(w[0])
	opts := shellWrappers[prog]
	if opts == nil {
		opts = extraWrappers[prog]
	}
	w = w[1:]
	for len(w) > 0 {
		a := w[0]
		if a == "--" {
			w = w[1:]
			break
		}
		if prog == "env" && isAssignment(a) {
			w = w[1:]
			continue
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		w = w[1:]
		if opts[a] && len(w) > 0 {
			w = w[1:]
		}
	}
	switch prog {
	case "timeout", "chrt", "taskset", "flock", "chroot", "sg":
		if len(w) > 0 { // the duration, priority, mask, lock file, root or group
			w = w[1:]
		}
	}
	return w
}

// programName is the name a rule sees for the program word w: its base
// name, lower-cased (case-insensitive file systems run RM as rm).
func programName(w string) string {
	return strings.ToLower(path.Base(w))
}

// packageName is the program a package runner runs for the package spec
// s: "@scope/tool@1.2" runs "tool".
func packageName(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 && !strings.Contains(s, "://") {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '@'); i > 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "=="); i > 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}
