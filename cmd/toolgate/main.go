// Command toolgate is an MCP gateway that decides, records and (when asked)
// escalates to a human every tool call an AI agent makes.
//
// Usage:
//
//	toolgate serve [--config FILE] [--rules FILE] [--http ADDR]
//	toolgate rules check|test|eval ...
//	toolgate audit list|show|tail|export|stats|verify|replay ...
//	toolgate review list|approve|deny ...
//	toolgate tools list|show|approve ...
//	toolgate version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is toolgate's own version, recorded in every audit row.
// Release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// errFailed marks a command that ran and reports failure (exit code 1)
// without an extra error message, e.g. failing rule tests.
var errFailed = errors.New("failed")

func main() {
	// An agent that goes away closes our stdio pipes; a log line written to
	// the closed stderr must fail (EPIPE), not kill toolgate with SIGPIPE
	// before it records the cancelled calls and shuts down cleanly.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "toolgate:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "toolgate:", err)
		return 1
	}
}

const usage = `toolgate: an MCP gateway that decides, records and escalates AI agents' tool calls.

Commands:
  serve     run the gateway (stdio by default, --http ADDR for streamable HTTP)
  rules     check, test and evaluate rule files
  audit     inspect, export, verify and replay the audit log
  review    list and answer pending reviews from a terminal
  grants    list and revoke the approvals bound to calls
  tokens    create, list and revoke per-user bearer tokens
  tools     list, show and approve the upstream tools' pinned definitions; names: the exposed names
  ui        serve the web UI read-only over an audit log (serve --http serves it at /ui/)
  version   print toolgate's version

Run 'toolgate COMMAND -h' for a command's flags.`

// run is the whole CLI, testable in-process: it reads only its arguments and
// the given streams (and, for serve, the environment it is handed by main).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	env := osEnv{}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], env, stdin, stdout, stderr)
	case "rules":
		return runRules(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], env, stdout, stderr)
	case "review":
		return runReview(ctx, args[1:], env, stdout, stderr)
	case "grants":
		return runGrants(ctx, args[1:], env, stdout, stderr)
	case "tokens":
		return runTokens(ctx, args[1:], env, stdout, stderr)
	case "tools":
		if len(args) > 1 && args[1] == "names" {
			return runToolsNames(ctx, args[2:], env, stdout, stderr)
		}
		return runTools(ctx, args[1:], env, stdout, stderr)
	case "ui":
		return runUI(ctx, args[1:], env, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "toolgate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}

// environ is the process environment as the commands see it; tests pass a map.
type environ interface {
	Getenv(key string) string
}

type osEnv struct{}

func (osEnv) Getenv(key string) string { return os.Getenv(key) }
