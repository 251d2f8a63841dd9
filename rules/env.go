package rules

import (
	"path"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// The CEL variables a rule sees: the rule author's contract, documented in
// docs/rules.md. Names with a dot are single variables in a namespace
// (tool.name is one string variable), so a misspelt field such as
// tool.nmae is a load-time error, not a runtime one.
const (
	// VarToolName is the tool's name on its upstream server (string).
	VarToolName = "tool.name"
	// VarToolServer is the upstream's name in the config, "workspace" for built-ins (string).
	VarToolServer = "tool.server"
	// VarToolExposed is the tool's name as agents see it, e.g. "fs__read_file" (string).
	VarToolExposed = "tool.exposed"
	// VarToolAnnotations holds the upstream's hints: title, readOnlyHint,
	// destructiveHint, idempotentHint, openWorldHint (map(string, dyn)).
	// A hint the upstream did not give is absent, not false. Empty when
	// the tool's definition is not trusted (tools.Call.TrustedAnnotations).
	VarToolAnnotations = "tool.annotations"
	// VarToolPinned is true when the tool's definition is the approved one
	// (its pin), or the tool is one of toolgate's own built-ins (bool).
	VarToolPinned = "tool.pinned"
	// VarToolChanged is true when the tool's definition differs from its
	// pin (bool). The gate refuses such a tool's calls before any rule
	// runs; the variable is there for rules evaluated without the gate.
	VarToolChanged = "tool.changed"
	// VarArgs are the call's arguments as JSON values (map(string, dyn));
	// every JSON number is a double.
	VarArgs = "args"
	// VarMeta is the request's _meta that goes upstream with the arguments
	// (toolgate.Call.Meta), as JSON values (map(string, dyn)); empty when
	// the agent sent none. Some servers act on it (a dry-run flag), so a
	// rule can decide on it as on args.
	VarMeta = "meta"
	// VarClientName is the agent's MCP client name from initialize ("" if unknown).
	VarClientName = "client.name"
	// VarClientVersion is the agent's MCP client version ("" if unknown).
	VarClientVersion = "client.version"
	// VarModelName is the model driving the agent ("" if unknown).
	VarModelName = "model.name"
	// VarModelVersion is the model's version ("" if unknown).
	VarModelVersion = "model.version"
	// VarConfidence is the agent's stated confidence (optional_type(double)):
	// optional.none() when unknown, so it cannot be compared by accident.
	VarConfidence = "confidence"
	// VarSessionID is the agent's MCP session id (string).
	VarSessionID = "session.id"
	// VarNow is when toolgate received the call (timestamp).
	VarNow = "now"
	// VarPrincipalUser is who made the call, as authenticated: the token's
	// user or the OIDC user claim; "" without per-user credentials (string).
	VarPrincipalUser = "principal.user"
	// VarPrincipalGroups are the caller's groups, sorted (list(string)).
	VarPrincipalGroups = "principal.groups"
	// VarPrincipalAuth is how the caller was authenticated: "" (none),
	// "shared-token", "token" or "oidc" (string).
	VarPrincipalAuth = "principal.auth"
	// VarCallKind is what the call does (string): "tool" (tools/call),
	// "resource" (resources/read), "prompt" (prompts/get) or "completion"
	// (completion/complete).
	VarCallKind = "call.kind"
	// VarResourceURI is the URI a resources/read reads, "" for other kinds
	// (string).
	VarResourceURI = "resource.uri"
	// VarResourceFile is true for a resources/read of a file: URI (any
	// case), whose path the normalized call classifies like a file
	// read's: paths.all, paths.outside, paths.secret... (bool).
	VarResourceFile = "resource.file"
	// VarResourceUnchecked says why a file: resource's URI cannot be
	// vouched for, as upstreams parse URIs differently (a query or
	// fragment, a host, a relative path, a backslash, a % left after
	// decoding...); "" when it can, and for other calls (string).
	VarResourceUnchecked = "resource.unchecked"
)

// The normalized call (normalize.go): what the call does, computed once per
// call on first use and shared by every rule. docs/rules.md documents each.
const (
	// VarToolKind is the tool's inferred kind: shell, file_read,
	// file_write, network, vcs, database or other (string).
	VarToolKind = "tool.kind"
	// VarToolSandbox is the sandbox profile the tool runs in by default,
	// "" when it runs outside any sandbox toolgate controls (string).
	VarToolSandbox = "tool.sandbox"
	// VarCmdLine is the shell command line the call runs, "" for none; an
	// argv is shown shell-quoted (string).
	VarCmdLine = "cmd.line"
	// VarCmdArgv are the simple commands as written, nested ones
	// (substitutions, sh -c, here-documents) after them (list(list(string))).
	VarCmdArgv = "cmd.argv"
	// VarCmdCommands are the commands run, unwrapped: wrappers (sudo, env,
	// xargs, timeout...) and git's global options removed, the inner
	// commands of sh -c, find -exec, npx, python -m... added; each starts
	// with its program's lower-case base name (list(list(string))).
	VarCmdCommands = "cmd.commands"
	// VarCmdPrograms are the programs run, wrappers included (list(string)).
	VarCmdPrograms = "cmd.programs"
	// VarCmdCwd is the directory the command runs in, resolved (string).
	VarCmdCwd = "cmd.cwd"
	// VarCmdEscapes name the options that make a program run code, or a
	// program, that cmd.commands does not show, or delete what it finds:
	// "rg --pre", "find -delete", "python -c", "less"... (list(string)).
	VarCmdEscapes = "cmd.escapes"
	// VarCmdEnv are the environment variables the command reads; "*"
	// when it dumps the environment (list(string)).
	VarCmdEnv = "cmd.env"
	// VarCmdComputed are the words whose value is only known when the
	// command runs, or that toolgate does not read exactly, so they could
	// name any path or host: brace expansions past the bound, archive
	// members, file: URLs with no path... (list(string)).
	VarCmdComputed = "cmd.computed"
	// VarPathsAll are every path the call names, absolute and clean (list(string)).
	VarPathsAll = "paths.all"
	// VarPathsWritten are the paths the call may write, create or delete (list(string)).
	VarPathsWritten = "paths.written"
	// VarPathsOutside are the paths outside the workspace (list(string)).
	VarPathsOutside = "paths.outside"
	// VarPathsSecret are the paths that name secret stores (list(string)).
	VarPathsSecret = "paths.secret"
	// VarPathsPersistence are the written paths where code runs later:
	// shell rc files, git hooks and config, CI, cron, units (list(string)).
	VarPathsPersistence = "paths.persistence"
	// VarPathsPolicy are the written paths of toolgate's own files and of
	// agents' permission files (list(string)).
	VarPathsPolicy = "paths.policy"
	// VarPathsInstructions are the written paths of agents' instruction
	// files: CLAUDE.md, AGENTS.md, .cursorrules... (list(string)).
	VarPathsInstructions = "paths.instructions"
	// VarNetURLs are the URLs the call names (list(string)).
	VarNetURLs = "net.urls"
	// VarNetHosts are the hosts the call names, lower case (list(string)).
	VarNetHosts = "net.hosts"
	// VarWorkspaceRoot is the workspace root ("" when unknown) (string).
	VarWorkspaceRoot = "workspace.root"
	// VarWorkspaceHome is the user's home ("" when unknown) (string).
	VarWorkspaceHome = "workspace.home"
)

// Custom function names available to rules, beyond standard CEL, the
// strings and sets extensions, cel.bind and optional values.
const (
	FuncGlob          = "glob"
	FuncPathClean     = "path.clean"
	FuncPathBase      = "path.base"
	FuncPathDir       = "path.dir"
	FuncPathExt       = "path.ext"
	FuncShellWords    = "shell.words"
	FuncShellCommands = "shell.commands"
	FuncShellUnwrap   = "shell.unwrap"
)

// funcs holds what a set's custom functions reuse between calls: literal
// glob patterns compiled at load time (written only while the set is being
// compiled, read-only afterwards) and the last shell parse of each kind, so
// the many rules of one decision that split the same command line parse it
// once. Both are caches: they never change a result.
type funcs struct {
	globs    globCache
	vars     varIDs
	words    memo
	commands memo
}

// memo remembers one function result, for the last input. Results are
// immutable CEL values, so sharing them between goroutines is safe.
type memo struct{ last atomic.Pointer[memoEntry] }

type memoEntry struct {
	in  string
	out ref.Val
}

func (m *memo) get(in string, f func(string) ref.Val) ref.Val {
	if e := m.last.Load(); e != nil && e.in == in {
		return e.out
	}
	out := f(in)
	m.last.Store(&memoEntry{in: in, out: out})
	return out
}

// newEnv builds the CEL environment every rule of one set is compiled in,
// with fn's caches behind its custom functions. It fails only on a
// programming error in this file.
func newEnv(fn *funcs) (*cel.Env, error) {
	globs := fn.globs
	strList := cel.ListType(cel.StringType)
	return cel.NewEnv(
		cel.Variable(VarToolName, cel.StringType),
		cel.Variable(VarToolServer, cel.StringType),
		cel.Variable(VarToolExposed, cel.StringType),
		cel.Variable(VarToolAnnotations, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(VarToolPinned, cel.BoolType),
		cel.Variable(VarToolChanged, cel.BoolType),
		cel.Variable(VarArgs, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(VarMeta, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(VarClientName, cel.StringType),
		cel.Variable(VarClientVersion, cel.StringType),
		cel.Variable(VarModelName, cel.StringType),
		cel.Variable(VarModelVersion, cel.StringType),
		cel.Variable(VarConfidence, cel.OptionalType(cel.DoubleType)),
		cel.Variable(VarSessionID, cel.StringType),
		cel.Variable(VarNow, cel.TimestampType),
		cel.Variable(VarPrincipalUser, cel.StringType),
		cel.Variable(VarPrincipalGroups, strList),
		cel.Variable(VarPrincipalAuth, cel.StringType),
		cel.Variable(VarCallKind, cel.StringType),
		cel.Variable(VarResourceURI, cel.StringType),
		cel.Variable(VarResourceFile, cel.BoolType),
		cel.Variable(VarResourceUnchecked, cel.StringType),
		cel.Variable(VarToolKind, cel.StringType),
		cel.Variable(VarToolSandbox, cel.StringType),
		cel.Variable(VarCmdLine, cel.StringType),
		cel.Variable(VarCmdArgv, cel.ListType(strList)),
		cel.Variable(VarCmdCommands, cel.ListType(strList)),
		cel.Variable(VarCmdPrograms, strList),
		cel.Variable(VarCmdCwd, cel.StringType),
		cel.Variable(VarCmdEscapes, strList),
		cel.Variable(VarCmdEnv, strList),
		cel.Variable(VarCmdComputed, strList),
		cel.Variable(VarPathsAll, strList),
		cel.Variable(VarPathsWritten, strList),
		cel.Variable(VarPathsOutside, strList),
		cel.Variable(VarPathsSecret, strList),
		cel.Variable(VarPathsPersistence, strList),
		cel.Variable(VarPathsPolicy, strList),
		cel.Variable(VarPathsInstructions, strList),
		cel.Variable(VarNetURLs, strList),
		cel.Variable(VarNetHosts, strList),
		cel.Variable(VarWorkspaceRoot, cel.StringType),
		cel.Variable(VarWorkspaceHome, cel.StringType),

		cel.OptionalTypes(),
		cel.ExtendedValidations(),
		ext.Strings(),
		ext.Sets(),
		ext.Bindings(),

		cel.Function(FuncGlob,
			cel.Overload("glob_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(globs.binding)),
			cel.Overload("glob_string_list", []*cel.Type{cel.StringType, strList}, cel.BoolType,
				cel.BinaryBinding(globs.anyBinding))),
		cel.Function(FuncPathClean,
			cel.Overload("path_clean_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(stringFunc(path.Clean)))),
		cel.Function(FuncPathBase,
			cel.Overload("path_base_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(stringFunc(path.Base)))),
		cel.Function(FuncPathDir,
			cel.Overload("path_dir_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(stringFunc(path.Dir)))),
		cel.Function(FuncPathExt,
			cel.Overload("path_ext_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(stringFunc(path.Ext)))),
		cel.Function(FuncShellWords,
			cel.Overload("shell_words_string", []*cel.Type{cel.StringType}, strList,
				cel.UnaryBinding(fn.shellWordsBinding))),
		cel.Function(FuncShellCommands,
			cel.Overload("shell_commands_string", []*cel.Type{cel.StringType}, cel.ListType(strList),
				cel.UnaryBinding(fn.shellCommandsBinding))),
		cel.Function(FuncShellUnwrap,
			cel.Overload("shell_unwrap_list", []*cel.Type{strList}, strList,
				cel.UnaryBinding(shellUnwrapBinding))),
	)
}

func stringFunc(f func(string) string) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		s, ok := v.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(v)
		}
		return types.String(f(string(s)))
	}
}

func (c globCache) binding(name, pattern ref.Val) ref.Val {
	n, ok1 := name.(types.String)
	p, ok2 := pattern.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	ok, err := c.match(string(n), string(p))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Bool(ok)
}

func (c globCache) anyBinding(name, patterns ref.Val) ref.Val {
	n, ok1 := name.(types.String)
	l, ok2 := patterns.(traits.Lister)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	for it := l.Iterator(); it.HasNext() == types.True; {
		p, ok := it.Next().(types.String)
		if !ok {
			return types.NewErr("glob: pattern list holds a non-string")
		}
		ok, err := c.match(string(n), string(p))
		if err != nil {
			return types.WrapErr(err)
		}
		if ok {
			return types.True
		}
	}
	return types.False
}

func (fn *funcs) shellWordsBinding(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return fn.words.get(string(s), func(s string) ref.Val {
		w, err := shellWords(s)
		if err != nil {
			return types.WrapErr(err)
		}
		return types.NewStringList(types.DefaultTypeAdapter, w)
	})
}

func (fn *funcs) shellCommandsBinding(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return fn.commands.get(string(s), func(s string) ref.Val {
		cmds, err := shellCommands(s)
		if err != nil {
			return types.WrapErr(err)
		}
		out := make([]ref.Val, len(cmds))
		for i, c := range cmds {
			out[i] = types.NewStringList(types.DefaultTypeAdapter, c)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, out)
	})
}

func shellUnwrapBinding(v ref.Val) ref.Val {
	l, ok := v.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	var words []string
	for it := l.Iterator(); it.HasNext() == types.True; {
		s, ok := it.Next().(types.String)
		if !ok {
			return types.NewErr("shell.unwrap: list holds a non-string")
		}
		words = append(words, string(s))
	}
	return types.NewStringList(types.DefaultTypeAdapter, shellUnwrap(words))
}
