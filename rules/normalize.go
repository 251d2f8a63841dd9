package rules

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
)

// Workspace is where calls run, so the normalized call can resolve the
// paths a call names: relative ones against the workspace root (or the
// command's cwd), ~ and $HOME against the home directory.
type Workspace struct {
	// Root is the workspace directory, absolute. "" means unknown: relative
	// paths then count as inside the workspace and absolute ones as outside.
	Root string
	// Home is the user's home directory, absolute. "" means unknown: ~ then
	// resolves to /nonexistent-home, which is outside any workspace.
	Home string
	// Own are toolgate's own files and directories (its config, rules file,
	// audit DB, secret files), absolute: paths.policy names every path at
	// or under one of them.
	Own []string
	// Hidden are the paths the sandbox hides from every command (the
	// config's sandbox.hide), absolute: paths.secret names every path at
	// or under one of them, so a server outside the sandbox is not the way
	// around the hiding.
	Hidden []string
	// Dirs are the directories servers run in, absolute, by server name,
	// where they differ from Root: a relative path a call of such a server
	// names is the one the server opens, resolved against its own
	// directory. Paths are inside the workspace by Root alone.
	Dirs map[string]string
}

// WithWorkspace returns a set with s's rules that resolves the paths calls
// name against ws (the normalized call's paths.*, workspace.*). s itself
// is unchanged; the two share their compiled rules. When s already
// resolves against ws, it is s.
func (s *Set) WithWorkspace(ws Workspace) *Set {
	if s == nil || ws.Root == s.ws.Root && ws.Home == s.ws.Home && slices.Equal(ws.Own, s.ws.Own) &&
		slices.Equal(ws.Hidden, s.ws.Hidden) && maps.Equal(ws.Dirs, s.ws.Dirs) {
		return s
	}
	ws.Own, ws.Hidden, ws.Dirs = slices.Clone(ws.Own), slices.Clone(ws.Hidden), maps.Clone(ws.Dirs)
	return &Set{
		name: s.name, version: s.version, source: s.source, label: s.label, def: s.def, onError: s.onError,
		rules: s.rules, byTool: s.byTool, unindexed: s.unindexed, hasShadow: s.hasShadow,
		limits: s.limits, kinds: s.kinds, ws: ws,
	}
}

// Workspace is the workspace the set resolves paths against.
func (s *Set) Workspace() Workspace {
	if s == nil {
		return Workspace{}
	}
	return s.ws
}

// unknownRoot and unknownHome stand in for a workspace root and a home
// that were not given, so relative and ~ paths still resolve to something
// absolute that matches no real directory.
const (
	unknownRoot = "/nonexistent-workspace"
	unknownHome = "/nonexistent-home"
)

func (w Workspace) root() string {
	if w.Root == "" {
		return unknownRoot
	}
	return path.Clean(w.Root)
}

// dir is the directory server runs in, against which the relative paths
// its calls name resolve.
func (w Workspace) dir(server string) string {
	if d, ok := w.Dirs[server]; ok {
		return path.Clean(d)
	}
	return w.root()
}

func (w Workspace) home() string {
	if w.Home == "" {
		return unknownHome
	}
	return path.Clean(w.Home)
}

// The tool kinds tool.kind takes, inferred by inferKind.
const (
	KindShell     = "shell"
	KindFileRead  = "file_read"
	KindFileWrite = "file_write"
	KindNetwork   = "network"
	KindVCS       = "vcs"
	KindDatabase  = "database"
	KindOther     = "other"
)

// normCall is the normalized call: what one call does, as far as toolgate
// can tell from its tool's definition and arguments without running it.
// It is computed once per call, on first use by a rule (activation.norm),
// and read by every rule of the decision. docs/rules.md documents the CEL
// variables that expose it.
type normCall struct {
	kind string
	// line is the shell command line ("" when the call runs none); err is
	// set when it could not be split, and then every cmd.* variable is an
	// evaluation error (on_error decides).
	line string
	err  error
	cwd  string
	// argv are the simple commands as written, nested ones after them;
	// commands the commands run, unwrapped (see unwrapCommand); programs
	// the base names of every program run, wrappers included.
	argv     [][]string
	commands [][]string
	programs []string
	// escapes name options that make a program run code or a program that
	// cmd.commands does not show, or delete what it finds ("rg --pre").
	escapes []string
	// env are the environment variables the call reads; "*" for a dump
	// of the whole environment.
	env []string
	// computed are the words whose value toolgate cannot read exactly,
	// so they could name anything (see addComputed).
	computed []string
	// paths are every path the call names, resolved; written those it may
	// write, create or delete; the others are subsets by class.
	paths, written []string
	// dest are the written paths the call writes to without reading them
	// (redirection targets, copy destinations, a write tool's file); read
	// the paths it reads (see classify).
	dest, read map[string]bool
	// moved are the sources a move tool renames (argPath); a run's mv
	// needs no such care: the sandbox masks the secrets under a directory
	// it moves.
	moved                                 map[string]bool
	outside, secret, persistence, policy  []string
	instructions                          []string
	urls, hosts                           []string
	seenPath, seenWritten, seenURL, seenH map[string]bool
	// resFile is set for a resource read of a file: URI (fileResource);
	// resUnchecked then says why its path cannot be vouched for ("" when
	// it can).
	resFile      bool
	resUnchecked string
}

// argKey is an argument name as the key tables below spell it: its words
// (nameWords) joined by "_", so filePath, FILE_PATH and file-path are all
// file_path. Servers name their arguments every way; what a key holds
// does not depend on its spelling.
func argKey(k string) string {
	return strings.Join(nameWords(k), "_")
}

// pathArgKeys are argument names that hold a path (or a list of paths),
// as argKey spells them.
var pathArgKeys = map[string]bool{
	"path": true, "paths": true, "file": true, "files": true, "filename": true, "file_path": true,
	"filepath": true, "source": true, "destination": true, "src": true, "dst": true,
	"dest": true, "target": true, "dir": true, "directory": true, "folder": true, "cwd": true,
	"workdir": true, "working_directory": true, "root": true, "repo_path": true,
	"repository_path": true, "uri": true, "old_path": true, "new_path": true,
	"from": true, "to": true, "output": true, "input": true, "notebook_path": true, "image": true,
}

// pathKeyWords are the last words of argument names that hold a path
// (absolute_path, relative_path, target_file, outDir, FilePath,
// pathname). Whole words only: profile is no file. Not location, which
// as often names a place (a weather tool's); a file tool's is a path as
// its other loose arguments are (see argPaths).
var pathKeyWords = map[string]bool{
	"path": true, "paths": true, "pathname": true, "pathnames": true, "filepath": true, "filepaths": true,
	"file": true, "files": true, "filename": true, "filenames": true, "dirname": true, "dir": true, "dirs": true,
	"directory": true, "directories": true, "folder": true, "folders": true,
}

// isPathKeyWords reports whether an argument whose key has words w holds a
// path: a key of pathArgKeys, one whose last word is one of pathKeyWords,
// or a file's, directory's or folder's name (file_name, fileName, dir_name).
func isPathKeyWords(w []string) bool {
	if len(w) == 0 {
		return false
	}
	last := w[len(w)-1]
	return pathArgKeys[strings.Join(w, "_")] || pathKeyWords[last] ||
		len(w) > 1 && (last == "name" || last == "names") && (pathKeyWords[w[len(w)-2]] || w[len(w)-2] == "path")
}

// destArgKeys are the path arguments a write tool writes to without
// reading, as argKey spells them; when a call has none of them, every
// path argument of a write tool counts as one.
var destArgKeys = map[string]bool{"destination": true, "dst": true, "dest": true, "to": true, "new_path": true, "target": true, "output": true}

// isDestArgKey reports whether the path argument k is a destination: one
// of destArgKeys, or a path key whose first word is one (dest_path,
// target_file, output_dir).
func isDestArgKey(k string) bool {
	w := nameWords(k)
	return len(w) > 0 && (destArgKeys[strings.Join(w, "_")] || len(w) > 1 && destArgKeys[w[0]] && isPathKeyWords(w))
}

// textKeyWords are the last words of argument names that hold text, not
// a path (content, old_string, new_source, code_edit, pattern): a file
// tool's loose strings (see argPaths) under them are paths only when the
// call names no path otherwise.
var textKeyWords = map[string]bool{
	"content": true, "contents": true, "text": true, "data": true, "body": true, "string": true, "str": true,
	"patch": true, "diff": true, "code": true, "source": true, "edit": true, "edits": true, "query": true,
	"pattern": true, "patterns": true, "regex": true, "regexp": true, "replacement": true, "message": true,
	"comment": true, "description": true, "title": true, "instructions": true, "prompt": true,
}

// commandArgKeys hold a shell command line (string) or argv (list).
var commandArgKeys = []string{"command", "cmd", "script", "command_line", "commandLine", "shell_command", "bash_command", "code"}

// argvArgKeys hold the arguments of an argv-mode command.
var argvArgKeys = []string{"args", "argv", "arguments"}

// cwdArgKeys hold the directory a command runs in.
var cwdArgKeys = []string{"cwd", "workdir", "working_directory", "workingDirectory", "dir", "directory"}

// urlArgKeys hold a URL or a host, as argKey spells them; a proxy's
// too, which is where the request goes.
var urlArgKeys = map[string]bool{
	"url": true, "uri": true, "urls": true, "href": true, "endpoint": true, "host": true, "hostname": true,
	"server": true, "webhook": true, "remote": true, "link": true, "address": true, "domain": true,
	"socks": true, "socks5": true,
}

// urlKeyWords are the last words of argument names that hold a URL or a
// host (base_url, webhookUrl, db_host, http_proxy, proxy_url).
var urlKeyWords = map[string]bool{
	"url": true, "urls": true, "uri": true, "uris": true, "href": true, "endpoint": true, "host": true,
	"hostname": true, "webhook": true, "proxy": true,
}

// isURLKeyWords reports whether an argument whose key has words w holds a
// URL or a host.
func isURLKeyWords(w []string) bool {
	return len(w) > 0 && (urlArgKeys[strings.Join(w, "_")] || urlKeyWords[w[len(w)-1]])
}

// maxShellBytes bounds the command a call's analysis reads: past it, the
// command is not analysed (errShell, so the rules' on_error decides). It
// is Linux's limit on one argument (MAX_ARG_STRLEN), so no command that
// /bin/sh -c can be given goes unanalysed, while one that fills a 4 MiB
// request no longer costs the rules seconds of CPU (about 3 µs a byte).
const maxShellBytes = 128 << 10

// normalize computes c's normalized call.
func normalize(c *toolgate.Call, ws Workspace, kinds *kindCache) *normCall {
	n := &normCall{kind: kinds.kind(c)}
	n.cwd = ws.dir(c.Server)
	for _, k := range cwdArgKeys {
		if s, ok := c.Args[k].(string); ok && s != "" {
			n.cwd = resolvePath(s, n.cwd, ws)
			break
		}
	}
	writes := n.kind == KindFileWrite || writesByName(c.Tool)
	switch {
	case n.fileResource(c, ws):
	case c.Kind == toolgate.KindResource:
		uri, _ := c.Args["uri"].(string)
		n.otherResource(uri, ws)
		n.argPaths(c.Args, c, ws, writes)
	case c.Kind == toolgate.KindCompletion:
		args := completedArgs(c.Args)
		n.argPaths(args, c, ws, writes)
		n.completedResource(c, args, ws)
	default:
		n.argPaths(c.Args, c, ws, writes)
	}
	// A prompt or completion runs nothing: a command among its arguments
	// is text (explain this command), decided on the paths it names.
	if n.kind == KindShell && c.KindName() == toolgate.KindTool {
		n.shell(c, ws)
	}
	n.classify(ws)
	return n
}

// maxArgWalk bounds how deep argPaths looks into nested arguments.
const maxArgWalk = 6

// argPaths records the paths and URLs of a tool's arguments, at any depth
// (push_files' files: [{path: ...}]): values of path keys, values of URL
// keys, and every string that is a URL. A file: URL (scheme in any case)
// under any key, or any "file://" string, is a path as a path key's value
// is, never a host. On a tool that writes, path values are written: the
// destination ones when the tool has them.
//
// A file tool (file_read, file_write) opens what its arguments name
// whatever their keys are called (a read_file's name, a create_file's
// name beside its path, which may be ../.bashrc or .env), so its loose
// strings, those no key marks as a path or URL, are paths too, resolved
// as a path key's. Those under a key of text (textKeyWords: content,
// old_string, pattern...), where "/" and "~" are common and a path
// seldom is, only when the call names no path otherwise or they hold ".."
// as a whole path component (a pattern ../../.ssh/*). A loose word
// (encoding: utf-8) is then a path in the directory, which is harmless.
func (n *normCall) argPaths(args map[string]any, c *toolgate.Call, ws Workspace, writes bool) {
	var loose []looseArg
	// A prompt's server may read its argument as a file whatever it is
	// called (summarize's document: .env), and a completion lists what its
	// value names: their loose strings are paths as a file tool's, but
	// text (a prompt's code, message) only when it climbs with "..".
	k := c.KindName()
	surface := k == toolgate.KindPrompt || k == toolgate.KindCompletion
	fileTool := n.kind == KindFileRead || n.kind == KindFileWrite || surface
	n.walkArgs(args, c, ws, writes, fileTool, &loose, 0)
	if !fileTool {
		return
	}
	none := len(n.paths) == 0 && !surface
	for _, a := range loose {
		if none || !a.text || slices.Contains(strings.Split(a.s, "/"), "..") {
			n.argPath(a.key, a.s, a.args, c, ws, writes)
		}
	}
}

// looseArg is a string argument no key marks as a path or a URL: s under
// key in args; text when key is one of text (textKeyWords).
type looseArg struct {
	key, s string
	args   map[string]any
	text   bool
}

// walkArgs is argPaths' walk of args, depth levels down; it adds the
// loose strings to *loose when keepLoose.
func (n *normCall) walkArgs(args map[string]any, c *toolgate.Call, ws Workspace, writes, keepLoose bool, loose *[]looseArg, depth int) {
	if depth > maxArgWalk {
		return
	}
	// Keys in order, so the paths (and the reasons that name them) are
	// the same on every evaluation.
	for _, k := range slices.Sorted(maps.Keys(args)) {
		v := args[k]
		w := nameWords(k)
		pathKey, urlKey := isPathKeyWords(w), isURLKeyWords(w)
		for _, s := range stringsOf(v) {
			switch {
			case isFileURLArg(s, pathKey || urlKey):
				n.argPath(k, s, args, c, ws, writes)
			case isURL(s):
				n.addURL(s)
			case pathKey:
				n.argPath(k, s, args, c, ws, writes)
				if urlKey {
					n.addURL(s)
				}
			case urlKey:
				n.addURL(s)
			case keepLoose:
				*loose = append(*loose, looseArg{key: k, s: s, args: args, text: len(w) > 0 && textKeyWords[w[len(w)-1]]})
			case n.kind != KindShell && n.namesSecret(s, ws):
				n.argPath(k, s, args, c, ws, writes)
			}
		}
		switch x := v.(type) {
		case map[string]any:
			n.walkArgs(x, c, ws, writes, keepLoose, loose, depth+1)
		case []any:
			for _, e := range x {
				switch y := e.(type) {
				case map[string]any:
					n.walkArgs(y, c, ws, writes, keepLoose, loose, depth+1)
				case []any: // paths: [["/x"]], as the key's own
					n.walkArgs(map[string]any{k: y}, c, ws, writes, keepLoose, loose, depth+1)
				}
			}
		}
	}
}

// namesSecret says whether s, the value of a key that is not a path's, is
// spelled as a path (from /, ~, ./ or ../) that is secret (isSecret): a
// tool may open any argument (read {name:
// ~/.ssh/id_rsa}, get_document {id: /home/u/.aws/credentials}). Other
// values are left alone, so an API route or a query stays what it is.
func (n *normCall) namesSecret(s string, ws Workspace) bool {
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "~") && !strings.HasPrefix(s, "./") && !strings.HasPrefix(s, "../") || strings.ContainsAny(s, "\n\x00") {
		return false
	}
	for _, r := range pathReadings(s, n.cwd, ws) {
		if _, secret := secretPath(r, n.cwd, ws); secret {
			return true
		}
	}
	return false
}

// secretPath resolves s against dir and reports whether the path is
// secret (isSecret).
func secretPath(s, dir string, ws Workspace) (string, bool) {
	p := resolvePath(s, dir, ws)
	return p, isSecret(p, relTo(p, ws.root(), ws.home()), ws)
}

// argPath records s, the value of the path argument k of args, as every
// path it may name (pathReadings), resolved against the call's directory:
// on a tool that writes, written (the destination ones when args has
// them, a move's source too), else read.
func (n *normCall) argPath(k, s string, args map[string]any, c *toolgate.Call, ws Workspace, writes bool) {
	repo := n.kind == KindVCS && isRepoArg(k, args)
	for _, r := range pathReadings(s, n.cwd, ws) {
		p := resolvePath(r, n.cwd, ws)
		n.addPath(p)
		if repo && !ws.ownRepo(p) {
			// As for git in a shell command: a repository below the root
			// may be one the agent made, with a config no rule read.
			n.addGitRunIn(p)
		}
		switch {
		case writes && (isDestArgKey(k) || !hasDestKey(args)) && overwrites(c.Tool):
			n.addDest(p)
		case writes && (isDestArgKey(k) || !hasDestKey(args)):
			// An edit reads what it changes, and may answer with it (a
			// diff, a dry run).
			n.addWritten(p)
			mark(&n.read, p)
		case writes && argKey(k) == "source" && isMove(c.Tool):
			n.addWritten(p)
			mark(&n.moved, p)
		default:
			mark(&n.read, p)
		}
	}
}

// isFileURLArg reports whether the argument s is a file: URL as a reader
// takes it, spaces and control characters around it and tabs and
// newlines in it dropped: under a path or URL key (key) any one, under
// another any "file:/..." one.
func isFileURLArg(s string, key bool) bool {
	s = dropTabsAndNewlines.Replace(strings.TrimFunc(s, func(r rune) bool { return r <= ' ' }))
	_, rest, _ := strings.Cut(s, ":")
	return isFileURL(s) && (key || strings.HasPrefix(rest, "/"))
}

// writesByName reports whether a tool's name says it writes what its path
// arguments name (create_or_update_file, push_files, delete_file...).
func writesByName(tool string) bool {
	for _, t := range nameTokens(tool) {
		switch t {
		case "write", "edit", "create", "update", "push", "put", "move", "rename", "delete", "remove", "append",
			"save", "copy", "patch", "replace", "upload", "mkdir", "insert", "modify", "overwrite", "apply":
			return true
		}
	}
	return false
}

// repoDirKeys are the arguments a local git tool runs git in, as argKey
// spells them, besides those naming a repository's path (repo_path,
// repositoryDir).
var repoDirKeys = map[string]bool{"path": true, "dir": true, "directory": true, "cwd": true, "working_directory": true,
	"working_dir": true, "workdir": true, "work_dir": true, "git_dir": true, "work_tree": true, "root": true,
	"project_path": true, "project_dir": true, "repo": true, "repository": true}

// isRepoArg reports whether the path argument k of a version-control
// tool's args names the repository git runs in (mcp-server-git's
// repo_path): a key with repo or repository in it, or one of repoDirKeys,
// on a local tool (a remote one, with an owner argument, names a path
// inside the repository it reads).
func isRepoArg(k string, args map[string]any) bool {
	if _, remote := args["owner"]; remote {
		return false
	}
	w := nameWords(k)
	return slices.Contains(w, "repo") || slices.Contains(w, "repository") || repoDirKeys[argKey(k)]
}

// overwrites reports whether a write tool named tool writes its file
// whole, without reading what it held (write_file, create_file,
// copy_file), as opposed to editing it in place (edit_file, apply_patch,
// append_file).
func overwrites(tool string) bool {
	return slices.ContainsFunc(nameWords(tool), func(w string) bool {
		return slices.Contains([]string{"write", "create", "save", "put", "copy", "cp", "upload", "download", "touch", "new"}, w)
	})
}

func isMove(tool string) bool {
	t := strings.ToLower(tool)
	return strings.Contains(t, "move") || strings.Contains(t, "rename")
}

// hasDestKey reports whether m has a destination argument (isDestArgKey).
func hasDestKey(m map[string]any) bool {
	for k := range m {
		if isDestArgKey(k) {
			return true
		}
	}
	return false
}

// stringsOf returns v if it is a string, the strings of v if it is a list.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

// shell fills the cmd.* fields from the call's command: a command line
// (string), or an argv (a list, or a program with an args list).
func (n *normCall) shell(c *toolgate.Call, ws Workspace) {
	var (
		line   string
		argv   []string
		isArgv bool
	)
	cmds := commandValues(c.Args)
	if len(cmds) > 0 {
		switch x := cmds[0].(type) {
		case string:
			line = x
		default:
			argv, isArgv = stringsOf(x), true
		}
		cmds = cmds[1:]
	}
	// Every other command argument (a tool's post_command, a nested
	// step's command, a list under commands) runs too: each is analysed
	// as a line of its own, and cmd.line holds them all, a line each.
	var more []string
	for _, v := range cmds {
		if s, ok := v.(string); ok {
			more = append(more, s)
		} else {
			more = append(more, quoteArgv(stringsOf(v)))
		}
	}
	if !isArgv {
		// A program and its argument list: the workspace tool runs exactly
		// this argv (exec "$0" "$@"); other servers' tools do the same.
		for _, k := range argvArgKeys {
			v, ok := c.Args[k]
			if !ok {
				continue
			}
			if l, isList := v.([]any); isList && len(l) > 0 {
				argv, isArgv = append([]string{line}, stringsOf(v)...), true
			}
			break
		}
		if isArgv && line == "" {
			argv = argv[1:]
		}
	}
	sa := shellAnalysis{n: n, ws: ws}
	if size := len(line) + len(strings.Join(argv, " ")) + len(strings.Join(more, "\n")); size > maxShellBytes {
		n.line = strings.Join(append([]string{line}, more...), "\n")
		n.err = fmt.Errorf("%w: a command of %d bytes, more than the %d analysed", errShell, size, maxShellBytes)
		return
	}
	if isArgv {
		if len(argv) == 0 {
			return
		}
		n.line = quoteArgv(argv)
		n.argv = append(n.argv, argv)
		_, n.err = sa.simple(argv, nil, nil, n.cwd, 0)
	} else {
		n.line = line
		n.err = sa.line(line, n.cwd, 0)
	}
	for _, l := range more {
		if n.err != nil {
			return
		}
		n.line += "\n" + l
		n.err = sa.line(l, n.cwd, 0)
	}
	if n.err != nil {
		return
	}
	n.argv = append(n.argv, sa.nested...)
}

// commandValues are the command arguments of args: the string or list
// under each command key (cmd, a key ending in "command" or "_cmd", and at
// the top level the rest of commandArgKeys: a nested "code" or "script" is
// seldom a shell's), and each string under a key ending in "commands" or
// "_cmds", at any depth up to maxArgWalk (nested objects and lists of
// them). The first is the top-level one of commandArgKeys that comes first
// there, the tool's command; the rest follow in key order.
func commandValues(args map[string]any) []any {
	var first, rest []any
	firstKey := len(commandArgKeys)
	var walk func(m map[string]any, depth int)
	walkValue := func(v any, depth int) {
		switch x := v.(type) {
		case map[string]any:
			walk(x, depth+1)
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					walk(m, depth+1)
				}
			}
		}
	}
	walk = func(m map[string]any, depth int) {
		if depth > maxArgWalk {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			v, lk := m[k], strings.ToLower(k)
			switch {
			case strings.HasSuffix(lk, "commands") || strings.HasSuffix(lk, "_cmds"):
				for _, s := range stringsOf(v) {
					rest = append(rest, s)
				}
			case depth == 0 && slices.Contains(commandArgKeys, k) || lk == "cmd" || strings.HasSuffix(lk, "command") || strings.HasSuffix(lk, "_cmd"):
				if _, ok := v.(string); !ok && stringsOf(v) == nil {
					break
				}
				if i := slices.Index(commandArgKeys, k); depth == 0 && i >= 0 && i < firstKey {
					if first != nil {
						rest = append(rest, first...)
					}
					first, firstKey = []any{v}, i
					continue
				}
				rest = append(rest, v)
				continue
			}
			walkValue(v, depth)
		}
	}
	walk(args, 0)
	return append(first, rest...)
}

// quoteArgv renders an argv as a shell command line that would run it.
func quoteArgv(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

func (n *normCall) addPath(p string) {
	if p != "" && mark(&n.seenPath, p) {
		n.paths = append(n.paths, p)
	}
}

// mark adds k to the set *m, made on first use (most calls name no path
// and no URL), and reports whether k is new to it.
func mark(m *map[string]bool, k string) bool {
	if (*m)[k] {
		return false
	}
	if *m == nil {
		*m = map[string]bool{}
	}
	(*m)[k] = true
	return true
}

// addDest records a path the call only writes to (a redirection target,
// a copy's destination, a write tool's file): what it held before is not
// read.
func (n *normCall) addDest(p string) {
	n.addWritten(p)
	if p != "" {
		mark(&n.dest, p)
	}
}

func (n *normCall) addWritten(p string) {
	if p != "" && mark(&n.seenWritten, p) {
		n.written = append(n.written, p)
	}
}

func (n *normCall) addProgram(p string) {
	if p != "" && !slices.Contains(n.programs, p) {
		n.programs = append(n.programs, p)
	}
}

func (n *normCall) addEscape(e string) {
	if !slices.Contains(n.escapes, e) {
		n.escapes = append(n.escapes, e)
	}
}

// addComputed records a word (or a program's operands, described) whose
// value is only known when the command runs, or that toolgate does not
// read exactly: it could name any path or host.
func (n *normCall) addComputed(w string) {
	if !slices.Contains(n.computed, w) {
		n.computed = append(n.computed, w)
	}
}

func (n *normCall) addEnv(v string) {
	if v != "" && !slices.Contains(n.env, v) {
		n.env = append(n.env, v)
	}
}

// addURL records a URL (scheme://...) or a bare host the call names.
// Where URL parsers could read another host than hostOf (see
// hostOf), the host is anyHost.
func (n *normCall) addURL(s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	host := ""
	if i := strings.Index(s, "://"); i > 0 {
		if mark(&n.seenURL, s) {
			n.urls = append(n.urls, s)
		}
		host = hostOf(s[i+3:])
		// A WHATWG parser skips the slashes and backslashes after a
		// special scheme: http:///evil.example is evil.example.
		if host == "" && slices.Contains(specialSchemes, strings.ToLower(s[:i])) {
			host = anyHost
		}
	} else {
		host = hostOf(s)
	}
	if i := strings.Index(s, ":"); i > 0 && strings.ContainsFunc(s[:i], isAmbiguousURLRune) {
		host = anyHost // ht\ttp://evil.example: a WHATWG parser drops the tab
	}
	if host != "" && mark(&n.seenH, host) {
		n.hosts = append(n.hosts, host)
	}
}

// specialSchemes are the WHATWG URL standard's schemes with a host,
// parsed leniently (file aside, which names a path).
var specialSchemes = []string{"http", "https", "ws", "wss", "ftp"}

// isAmbiguousURLRune reports whether r is a control character, which a
// WHATWG parser drops (tab, newline) and others keep or stop at.
func isAmbiguousURLRune(r rune) bool {
	return r < ' ' || r == 0x7f
}

// hostOf returns the host of "user@host:port/path?query", lower case:
// what follows the last "@" of what comes before the first "/", "?" or
// "#". Where parsers differ on that, it is anyHost, a destination the
// rules cannot read: a backslash, space or control character in it (a
// WHATWG parser, Node's fetch, takes "\" for "/", so
// http://evil.example\@localhost/ is evil.example), or a "%" or a
// non-ASCII character in the host (decoded, or mapped by IDNA, by some
// parsers only).
func hostOf(s string) string {
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if strings.ContainsFunc(s, func(r rune) bool { return isAmbiguousURLRune(r) || r == ' ' || r == '\\' }) {
		return anyHost
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r == '%' || r >= utf8.RuneSelf }) {
		return anyHost
	}
	if strings.HasPrefix(s, "[") { // [::1]:80
		if i := strings.IndexByte(s, ']'); i > 0 {
			return strings.ToLower(s[1:i])
		}
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// isURL reports whether s starts with a URL scheme.
func isURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 || i > 12 {
		return false
	}
	for _, r := range s[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// resolvePath makes p absolute and clean: ~, ~/x, $HOME and ${HOME}
// against the home, a relative path against dir, file:// URLs as their
// path. Quotes are already gone; other variables stay as written.
func resolvePath(p, dir string, ws Workspace) string {
	p = strings.TrimPrefix(p, "file://")
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		p = ws.home() + p[1:]
	case strings.HasPrefix(p, "$HOME"):
		p = ws.home() + p[len("$HOME"):]
	case strings.HasPrefix(p, "${HOME}"):
		p = ws.home() + p[len("${HOME}"):]
	case strings.HasPrefix(p, "~"): // ~user/...
		p = "/home/" + p[1:]
	}
	if !strings.HasPrefix(p, "/") {
		p = dir + "/" + p
	}
	return cleanPath(p)
}

// cleanPath is path.Clean for a path a call names, but for the system's
// links, which the kernel follows where text cleaning would not (see
// walkPath).
func cleanPath(p string) string {
	p, _ = walkPath(p)
	return p
}

// walkPath cleans the absolute path p as the kernel reads it through the
// system's links. A process's root (/proc/PID/root, PID a number,
// self or thread-self, or /proc/PID/task/TID/root) is "/", so what follows
// it is read from there: /proc/self/root/etc/shadow is /etc/shadow, and
// the classes judge it as that. Where the target is one the rules cannot
// know, p is kept as written from there on, ".." included, and resolved is
// false: after a process's working directory or open file (/proc/PID/cwd,
// /proc/PID/fd/N, the same under task/TID, /dev/fd/N, /dev/stdin,
// /dev/stdout, /dev/stderr), and at a ".." right after one of
// systemLinks. So /proc/self/cwd/../x is not presented as /proc/self/x,
// and the secret class holds it (see classify). A relative p is
// path.Clean's.
func walkPath(p string) (clean string, resolved bool) {
	if !strings.HasPrefix(p, "/") || !strings.Contains(p, "/proc/") && !strings.Contains(p, "/dev/") && !strings.Contains(p, "/..") {
		return path.Clean(p), true
	}
	parts := strings.Split(p, "/")
	var out []string
	for i, c := range parts {
		if c == "" || c == "." {
			continue
		}
		if l := linkKind(out); l == linkOpaque || l == linkAlias && c == ".." {
			for _, r := range parts[i:] {
				if r != "" && r != "." {
					out = append(out, r)
				}
			}
			return "/" + strings.Join(out, "/"), false
		}
		if c == ".." {
			out = out[:max(len(out)-1, 0)]
			continue
		}
		out = append(out, c)
		if linkKind(out) == linkRoot {
			out = out[:0]
		}
	}
	return "/" + strings.Join(out, "/"), true
}

// The links walkPath reads.
const (
	linkNone   = iota
	linkRoot   // a process's root directory
	linkOpaque // a process's working directory or open file: any target
	linkAlias  // one of systemLinks
)

// systemLinks are links to a directory elsewhere, so that their ".." is
// not the directory their path shows: /dev/fd/../environ is
// /proc/self/environ, /var/run/../etc/shadow is /etc/shadow (/var/run is
// /run), /bin/../local/bin is /usr/local/bin (merged /usr). Where one is
// a directory instead, walkPath still keeps its ".." as written.
var systemLinks = []string{"proc/thread-self", "proc/net", "dev/fd", "var/run", "var/lock", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// linkKind returns which link the absolute path of components c is.
func linkKind(c []string) int {
	switch {
	case len(c) <= 2 && slices.Contains(systemLinks, strings.Join(c, "/")):
		return linkAlias
	case len(c) == 2 && c[0] == "dev" && (c[1] == "stdin" || c[1] == "stdout" || c[1] == "stderr"), len(c) == 3 && c[0] == "dev" && c[1] == "fd":
		return linkOpaque
	case len(c) < 3 || c[0] != "proc" || !(c[1] == "self" || c[1] == "thread-self" || isDigits(c[1])):
		return linkNone
	}
	c = c[2:]
	if len(c) >= 3 && c[0] == "task" && isDigits(c[1]) {
		c = c[2:]
	}
	switch {
	case len(c) == 1 && c[0] == "root":
		return linkRoot
	case len(c) == 1 && c[0] == "cwd", len(c) == 2 && c[0] == "fd":
		return linkOpaque
	}
	return linkNone
}

// inside reports whether p is dir or under it.
func inside(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// classify sorts the paths into the classes rules read.
// isSecret reports whether the call's path p (rel, relative to the
// workspace or the home) is in paths.secret: a secret store, one of
// toolgate's own files, a path the sandbox hides, or a path whose target
// the rules cannot know.
func isSecret(p, rel string, ws Workspace) bool {
	return isSecretPath(p, rel) || underAny(p, ws.Own) || underAny(p, ws.Hidden) || !resolved(p)
}

func (n *normCall) classify(ws Workspace) {
	root := ws.root()
	n.paths = n.withParentReadings(n.paths, &n.seenPath)
	n.written = n.withParentReadings(n.written, &n.seenWritten)
	for _, p := range n.paths {
		if !inside(p, root) {
			n.outside = append(n.outside, p)
		}
		rel := relTo(p, root, ws.home())
		// A .env file of the workspace that the call only writes (cp
		// .env.example .env) hands out no secret; one it reads does.
		if n.dest[p] && !n.read[p] && inside(p, root) && strings.HasPrefix(path.Base(rel), ".env") && path.Base(rel) != ".envrc" {
			continue
		}
		if isSecret(p, rel, ws) {
			n.secret = append(n.secret, p)
		}
	}
	for _, p := range n.written {
		if mark(&n.seenPath, p) {
			n.paths = append(n.paths, p)
			if !inside(p, root) {
				n.outside = append(n.outside, p)
			}
			if !resolved(p) {
				n.secret = append(n.secret, p)
			}
		}
		rel := relTo(p, root, ws.home())
		// Moving a directory above a secret store (.streamlit of
		// .streamlit/secrets.toml) takes the store out of its name:
		// move_file .streamlit st makes st/secrets.toml readable.
		if n.moved[p] && compiledClasses().secretParents.match(rel) && !slices.Contains(n.secret, p) {
			n.secret = append(n.secret, p)
		}
		if isPersistencePath(p, rel) {
			n.persistence = append(n.persistence, p)
		}
		if isPolicyPath(p, rel, ws) {
			n.policy = append(n.policy, p)
		}
		if isInstructionPath(rel) {
			n.instructions = append(n.instructions, p)
		}
	}
}

// resolved reports whether the clean path p names a file the rules can
// know (see walkPath): one that goes through a process's working
// directory or open file, or a system link's "..", could be any file, a
// secret store too, so the secret class holds it.
func resolved(p string) bool {
	_, ok := walkPath(p)
	return ok
}

// withParentReadings adds to paths, after each path with a pattern
// component that could match "..", the path that component makes by
// matching it: bash before 5.2 (macOS's /bin/bash, Ubuntu 22.04) expands
// `.?` and `.[.]` to "..", so `cat .?/x` reads outside the directory.
// The added path is read or written as the one it comes from; seen is
// the set paths is kept unique by.
func (n *normCall) withParentReadings(paths []string, seen *map[string]bool) []string {
	for i := 0; i < len(paths); i++ {
		p := paths[i]
		if !strings.ContainsAny(p, "*?[") {
			continue
		}
		parts := strings.Split(p, "/")
		for j, part := range parts {
			if strings.ContainsAny(part, "*?[") && shellGlob(part, "..") {
				parts[j] = ".."
			}
		}
		alt := cleanPath(strings.Join(parts, "/"))
		if alt == p || !mark(seen, alt) {
			continue
		}
		paths = slices.Insert(paths, i+1, alt)
		if n.read[p] {
			mark(&n.read, alt)
		}
		if n.dest[p] {
			mark(&n.dest, alt)
		}
		i++
	}
	return paths
}

// relTo returns p lower-cased and relative to the workspace root or the
// home (whichever holds it, "~/" prefixed for the home), else p itself.
// Patterns match it case-insensitively, as on macOS file systems.
func relTo(p, root, home string) string {
	switch {
	case inside(p, root) && root != "/":
		p = strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
	case inside(p, home):
		p = "~/" + strings.TrimPrefix(strings.TrimPrefix(p, home), "/")
	}
	return strings.ToLower(p)
}

// schemaProps returns the top-level property names of a JSON schema.
func schemaProps(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	out := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
