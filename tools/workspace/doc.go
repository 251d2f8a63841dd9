// Package workspace implements toolgate's built-in workspace tools as an
// in-process MCP server: read_file, write_file, list_dir and run_command,
// confined to one directory (the workspace root).
//
// The gateway serves these next to its upstream servers and sends them
// through the same gate, so they are decided, reviewed and audited like any
// other tool. Build the server once and connect to it in-process:
//
//	s, err := workspace.NewServer(workspace.Options{Root: dir})
//	if err != nil { ... }
//	c, err := client.NewInProcessClient(s)
//
// # Confinement
//
// Every path an agent gives is taken relative to the root (an absolute path
// must lie under it). Lexical escapes ("../x", "/etc/passwd") are refused
// before any file is touched. File operations then go through an [os.Root],
// which refuses, race-free, any symlink that leads outside the root, in the
// last component or in an intermediate directory. A symlink with an absolute
// target that stays inside the root is followed (os.Root alone refuses
// absolute targets). Refusals are tool errors (isError) that name the path
// and say why.
//
// # run_command
//
// command is a shell string, as coding agents write it: it runs as
// `/bin/sh -c command` in the workspace (or in cwd, a directory inside it).
// When args is a non-empty array, command is instead the program and args its
// arguments, passed as an exact argv with no shell parsing (the program is
// looked up in the PATH of [Options.Env]). The process gets no stdin and
// the environment in [Options.Env], runs in its own process group, and the
// whole group is killed (SIGKILL) when the command exits, times out or is
// cancelled: no background process outlives the call. Stdout and stderr are
// captured separately, each capped at [Options.MaxOutputBytes] (the head and
// the tail are kept), and the exit code is reported; a non-zero exit, a
// timeout or a failure to start is a tool error.
//
// run_command is not a sandbox: cwd is confined, but the command itself can
// do whatever the user running toolgate can. That is why it is annotated
// destructive and open-world, and why toolgate's rules exist.
package workspace
