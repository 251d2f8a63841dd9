package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/review"
)

const toolsUsage = `usage:
  toolgate tools list [--db PATH | --config FILE] [--output text|json]
  toolgate tools show NAME [--db PATH | --config FILE]
  toolgate tools approve NAME... [--all-changed] [--db PATH | --config FILE]

toolgate pins every upstream tool's definition (name, title, description,
input and output schemas, annotations) when it first sees it. A tool whose
definition later changes is quarantined: its calls are refused until an
admin approves the new definition. Under pinning mode strict, a new tool is
quarantined until approved too.

list shows every tool seen: its status (pinned, changed, new-pending), the
hash of its pinned definition and of the one seen last, when it was first
seen and who approved it when. show prints a tool's pinned and current
definitions, to review before approving. approve pins the current
definition of each named tool (by exposed name; --all-changed: of every
changed or pending tool), recorded in the audit log with your user name. A
running toolgate applies it within a second, without a restart.

--db defaults to the config's audit.path with --config, else
$TOOLGATE_AUDIT_DB, else $XDG_STATE_HOME/toolgate/audit.db, else
~/.local/state/toolgate/audit.db.`

// runTools is `toolgate tools`.
func runTools(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, toolsUsage)
		return fmt.Errorf("%w: tools: no subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("tools "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, toolsUsage) }
	fs.String("db", "", "audit DB `path`")
	fs.String("config", "", "config `file` whose audit.path names the audit DB")
	output := fs.String("output", "text", "output format: text or json")
	allChanged := fs.Bool("all-changed", false, "approve every changed or pending tool")
	switch sub {
	case "list", "show", "approve":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, toolsUsage)
		return nil
	default:
		fmt.Fprintln(stderr, toolsUsage)
		return fmt.Errorf("%w: tools: unknown subcommand %q", errUsage, sub)
	}
	pos, path, err := parseWithDB(fs, args, "tools "+sub, env)
	if path == "" {
		return err
	}
	switch {
	case sub == "list" && (len(pos) != 0 || (*output != "text" && *output != "json")):
		return fmt.Errorf("%w: tools list takes no arguments and --output text or json", errUsage)
	case sub == "show" && len(pos) != 1:
		return fmt.Errorf("%w: tools show needs exactly one tool name (see `toolgate tools list`)", errUsage)
	case sub == "approve" && len(pos) == 0 && !*allChanged:
		return fmt.Errorf("%w: tools approve needs tool names or --all-changed", errUsage)
	}
	st, err := audit.Open(ctx, path, audit.Options{ReadOnly: sub != "approve"})
	if err != nil {
		return fmt.Errorf("tools: %w", err)
	}
	defer st.Close()

	if sub == "approve" {
		ps, err := st.ApprovePins(ctx, pos, *allChanged, "cli:"+reviewAccount(os.Getuid()))
		if err != nil {
			return fmt.Errorf("tools: %w", err)
		}
		if len(ps) == 0 {
			fmt.Fprintln(stdout, "nothing to approve: every tool named is pinned to its current definition")
		}
		for _, p := range ps {
			fmt.Fprintf(stdout, "approved %s: definition %s pinned by %s\n", review.Visible(p.Name), review.Visible(short12(p.PinnedHash)), review.Visible(p.ApprovedBy))
		}
		return nil
	}
	ps, err := st.ToolPins(ctx)
	if err != nil {
		return fmt.Errorf("tools: %w", err)
	}
	if sub == "show" {
		return showPin(stdout, ps, pos[0])
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if ps == nil {
			ps = []*audit.ToolPin{}
		}
		return enc.Encode(ps)
	}
	return printPins(stdout, ps)
}

func short12(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "-"
	}
	return h
}

func printPins(w io.Writer, ps []*audit.ToolPin) error {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no tools seen yet")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tSERVER\tUPSTREAM TOOL\tSTATUS\tPINNED\tSEEN\tFIRST SEEN\tAPPROVED")
	for _, p := range ps {
		approved := "-"
		if p.ApprovedAt != nil {
			approved = p.ApprovedAt.Local().Format(time.DateTime) + " by " + p.ApprovedBy
		}
		seen := short12(p.SeenHash)
		if p.State == toolgate.PinPinned {
			seen = "="
		}
		fmt.Fprintln(tw, visibleCells(p.Name, p.Server, p.Tool, string(p.State), short12(p.PinnedHash), seen,
			p.FirstSeen.Local().Format(time.DateTime), approved))
	}
	return tw.Flush()
}

// showPin prints the pinned and the current definition of the tool
// exposed as name.
func showPin(w io.Writer, ps []*audit.ToolPin, name string) error {
	found := false
	for _, p := range ps {
		if p.Name != name {
			continue
		}
		found = true
		fmt.Fprintf(w, "%s (server %s, tool %s): %s\n", review.Visible(p.Name), review.Visible(p.Server), review.Visible(p.Tool), review.Visible(string(p.State)))
		for _, d := range []struct {
			what string
			hash string
			def  json.RawMessage
		}{{"pinned definition", p.PinnedHash, p.PinnedDef}, {"current definition", p.SeenHash, p.SeenDef}} {
			if d.what == "current definition" && p.State == toolgate.PinPinned {
				fmt.Fprintln(w, "current definition: the pinned one")
				continue
			}
			if d.hash == "" {
				fmt.Fprintf(w, "%s: none\n", d.what)
				continue
			}
			fmt.Fprintf(w, "%s (%s):\n%s\n", d.what, review.Visible(d.hash), visibleJSON(d.def, ""))
		}
	}
	if !found {
		return fmt.Errorf("tools: %w: %s (see `toolgate tools list`)", audit.ErrNoSuchTool, name)
	}
	return nil
}
