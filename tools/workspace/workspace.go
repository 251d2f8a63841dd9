package workspace

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/toolgate/toolgate/tools"
	"github.com/toolgate/toolgate/tools/sandbox"
)

// ServerName is the name the workspace server reports in initialize.
const ServerName = "toolgate-workspace"

// Tool names, as the workspace server exposes them (the gateway may prefix them).
const (
	ToolReadFile   = "read_file"
	ToolWriteFile  = "write_file"
	ToolListDir    = "list_dir"
	ToolRunCommand = "run_command"
)

// Defaults for the zero values of Options.
const (
	DefaultCommandTimeout = 30 * time.Second
	DefaultMaxReadBytes   = 1 << 20  // 1 MiB
	DefaultMaxOutputBytes = 64 << 10 // 64 KiB per stream
	DefaultMaxListEntries = 1000
	// DefaultPath is the PATH of the default run_command environment.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// waitDelay bounds how long run_command waits for the output pipes after the
// command exited or was killed (a background child may still hold them).
const waitDelay = time.Second

// Options configures the workspace server.
type Options struct {
	// Root is the workspace directory (required). It is made absolute and its
	// symlinks are evaluated once, at NewServer; it must be a directory.
	Root string
	// CommandTimeout bounds each run_command; zero means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// MaxReadBytes is the largest file read_file returns; zero means
	// DefaultMaxReadBytes. Larger files are refused, not truncated.
	MaxReadBytes int64
	// MaxOutputBytes caps each of run_command's stdout and stderr; zero means
	// DefaultMaxOutputBytes. Past it, the head and tail are kept and the
	// middle is replaced by a marker saying how much was dropped.
	MaxOutputBytes int
	// MaxListEntries caps the entries list_dir returns; zero means
	// DefaultMaxListEntries.
	MaxListEntries int
	// Sandbox runs every call: run_command's process inside the call's
	// profile, and the file tools within what that profile allows (a
	// read-only profile writes nothing; protected and hidden paths are
	// refused). nil refuses every call: the tools never run unconfined by
	// accident. Its workspace must be Root.
	Sandbox *sandbox.Sandbox
	// Version is reported as the server's version in initialize; "" means "dev".
	Version string
	// Logger gets one debug line per call (tool, path size, exit code; never
	// file contents or command text); nil discards.
	Logger *slog.Logger
}

// ws is the state shared by the tool handlers. It holds no open files: each
// call opens its own os.Root, so a server can live as long as the gateway.
type ws struct {
	root    string // absolute, symlinks evaluated
	alias   string // absolute form of Options.Root as given (may contain symlinks)
	timeout time.Duration
	maxRead int64
	maxOut  int
	maxList int
	sb      *sandbox.Sandbox
	log     *slog.Logger
}

// NewServer returns an MCP server with the four workspace tools, confined to
// opts.Root. It fails if Root is empty, missing or not a directory.
func NewServer(opts Options) (*server.MCPServer, error) {
	w, err := newWS(opts)
	if err != nil {
		return nil, err
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s := server.NewMCPServer(ServerName, version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions("Files and commands in the workspace "+w.root+". Paths are relative to it; nothing outside it is reachable."),
	)
	s.AddTool(withProfile(readFileTool(), sandbox.ReadOnly), w.readFile)
	s.AddTool(withProfile(writeFileTool(), sandbox.WorkspaceWrite), w.writeFile)
	s.AddTool(withProfile(listDirTool(), sandbox.ReadOnly), w.listDir)
	s.AddTool(withProfile(runCommandTool(), sandbox.ReadOnly), w.runCommand)
	return s, nil
}

// withProfile declares t's default sandbox profile, the one a call runs in
// when its decision names none: reads read-only, writes workspace-write.
// run_command defaults to read-only: a rule (or a reviewer's approval)
// names workspace-write for the commands that should write.
func withProfile(t mcp.Tool, profile string) mcp.Tool {
	t.Meta = &mcp.Meta{AdditionalFields: map[string]any{tools.MetaSandbox: profile}}
	return t
}

// profile returns the sandbox profile of call req: the one toolgate's gate
// chose (sent in _meta), or tool's default when it sent none.
func profile(req mcp.CallToolRequest, def string) string {
	if m := req.Params.Meta; m != nil {
		if p, ok := m.AdditionalFields[tools.MetaSandbox].(string); ok && p != "" {
			return p
		}
	}
	return def
}

func newWS(opts Options) (*ws, error) {
	if opts.Root == "" {
		return nil, errors.New("workspace: no root directory given")
	}
	alias, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("workspace: root %q: %w", opts.Root, err)
	}
	root, err := filepath.EvalSymlinks(alias)
	if err != nil {
		return nil, fmt.Errorf("workspace: root %q: %w", opts.Root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("workspace: root %q: %w", opts.Root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("workspace: root %q is not a directory", opts.Root)
	}
	w := &ws{
		root:    root,
		alias:   alias,
		timeout: opts.CommandTimeout,
		maxRead: opts.MaxReadBytes,
		maxOut:  opts.MaxOutputBytes,
		maxList: opts.MaxListEntries,
		sb:      opts.Sandbox,
		log:     opts.Logger,
	}
	if w.timeout <= 0 {
		w.timeout = DefaultCommandTimeout
	}
	if w.maxRead <= 0 {
		w.maxRead = DefaultMaxReadBytes
	}
	if w.maxOut <= 0 {
		w.maxOut = DefaultMaxOutputBytes
	}
	if w.maxList <= 0 {
		w.maxList = DefaultMaxListEntries
	}
	if w.sb != nil && w.sb.Workspace() != root {
		return nil, fmt.Errorf("workspace: root %s is not the sandbox's workspace %q", root, w.sb.Workspace())
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

func readFileTool() mcp.Tool {
	return mcp.NewTool(ToolReadFile,
		mcp.WithDescription("Read a UTF-8 text file in the workspace and return its contents. "+
			"Binary files and files over the size limit are refused."),
		mcp.WithString("path", mcp.Required(), mcp.Description("File path, relative to the workspace root.")),
		mcp.WithTitleAnnotation("Read file"),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func writeFileTool() mcp.Tool {
	return mcp.NewTool(ToolWriteFile,
		mcp.WithDescription("Create or overwrite a text file in the workspace, atomically (the file is "+
			"either fully old or fully new). Missing parent directories are an error unless create_dirs is true."),
		mcp.WithString("path", mcp.Required(), mcp.Description("File path, relative to the workspace root.")),
		mcp.WithString("content", mcp.Required(), mcp.Description("The whole new content of the file.")),
		mcp.WithBoolean("create_dirs", mcp.Description("Create missing parent directories."), mcp.DefaultBool(false)),
		mcp.WithTitleAnnotation("Write file"),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true), // it overwrites
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func listDirTool() mcp.Tool {
	return mcp.NewTool(ToolListDir,
		mcp.WithDescription("List a directory in the workspace: one line per entry, "+
			"'d name/' for directories, 'f name SIZE' for files, 'l name -> target' for symlinks."),
		mcp.WithString("path", mcp.Description("Directory path, relative to the workspace root; default the root.")),
		mcp.WithTitleAnnotation("List directory"),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

func runCommandTool() mcp.Tool {
	return mcp.NewTool(ToolRunCommand,
		mcp.WithDescription("Run a shell command in the workspace with /bin/sh -c and return its exit code, "+
			"stdout and stderr. If args is given, command is the program and args its exact arguments (no shell). "+
			"No stdin; there is a timeout; background processes are killed when the command exits."),
		mcp.WithString("command", mcp.Required(), mcp.Description("Shell command line (or the program, when args is given).")),
		mcp.WithArray("args", mcp.WithStringItems(), mcp.Description("Arguments; when present, no shell is used.")),
		mcp.WithString("cwd", mcp.Description("Working directory, relative to the workspace root; default the root.")),
		mcp.WithTitleAnnotation("Run command"),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(true),
	)
}
