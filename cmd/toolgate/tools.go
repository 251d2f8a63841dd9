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
)

const toolsUsage = `usage:
  toolgate tools list [--db PATH | --config FILE] [--output text|json]
  toolgate tools show NAME [--db PATH | --config FILE]
  toolgate tools approve NAME --hash HASH [--db PATH | --config FILE]
  toolgate tools approve NAME... | --all-changed [--db PATH | --config FILE]
  (tools, prompts, resources and resource templates alike; NAME below)

toolgate pins the definition of every upstream tool, prompt, resource and
resource template (everything agents are sent of it: name, title,
description, schemas or arguments, annotations, _meta, icons, ...) when it
first sees it. One whose definition later changes is quarantined: agents
see a stub, and its calls, gets or reads are refused until an admin
approves the new definition. Under pinning mode strict, a new one is
quarantined until approved too.

list shows every declaration seen: its kind, status (pinned, changed,
new-pending), the hash of its pinned definition and of the one seen last,
when it was first seen and who approved it when. show prints the pinned
and current definitions of what NAME names, to review before approving,
and the command that approves the current one. approve pins the current
definition of each one named (--all-changed: of every changed or pending
one), recorded in the audit log with your user name. A running toolgate
applies it within a second, without a restart.

Approve with --hash, as show prints it: the hash (at least 32 hex digits)
of the definition you reviewed. If the upstream changed the definition
since, nothing is approved. Without --hash (and with --all-changed),
approve pins whatever is current when it runs, which the upstream may
have changed after you looked, and prints each definition it pinned.

NAME is an exposed name (up__echo); when a tool and a prompt (say) share
it, qualify it with the kind: tool:up__echo, prompt:up__echo,
resource:NAME, resource_template:NAME. A resource is also named by its
URI, a template by its URI template, unless another declaration answers
to it too: then name it KIND:SERVER/URI (resource:up/mem://notes), which
no other declaration answers to. A qualified name never matches a URI.

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
	hash := fs.String("hash", "", "approve only if the current definition's hash starts with these hex `digits` (as `tools show` prints them)")
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
		return fmt.Errorf("%w: tools show needs exactly one name (see `toolgate tools list`)", errUsage)
	case sub == "approve" && len(pos) == 0 && !*allChanged:
		return fmt.Errorf("%w: tools approve needs names or --all-changed", errUsage)
	case *hash != "" && (sub != "approve" || len(pos) != 1 || *allChanged):
		return fmt.Errorf("%w: --hash goes with tools approve and exactly one name, not --all-changed", errUsage)
	case *hash != "":
		if err := audit.CheckHashPrefix(*hash); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	st, err := audit.Open(ctx, path, audit.Options{ReadOnly: sub != "approve"})
	if err != nil {
		return fmt.Errorf("tools: %w", err)
	}
	defer st.Close()

	if sub == "approve" {
		refs := make([]audit.PinRef, len(pos))
		for i, n := range pos {
			refs[i] = audit.PinRef{Name: n, Hash: *hash}
		}
		ps, err := st.ApprovePins(ctx, refs, *allChanged, "cli:"+reviewAccount(os.Getuid()))
		if err != nil {
			return fmt.Errorf("tools: %w", err)
		}
		if len(ps) == 0 {
			fmt.Fprintln(stdout, "nothing to approve: everything named is pinned to its current definition")
		}
		for _, p := range ps {
			fmt.Fprintf(stdout, "approved %s: definition %s pinned by %s\n", pinTitle(p), toolgate.Visible(p.PinnedHash), toolgate.Visible(p.ApprovedBy))
			if *hash == "" {
				// Unconfirmed: the admin sees what was pinned, which may
				// not be what they reviewed.
				fmt.Fprintf(stdout, "approved without --hash; the definition pinned:\n%s\n", visibleJSON(p.PinnedDef, ""))
			}
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
		enc := audit.NewJSONEncoder(stdout)
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

// pinTitle names p for an admin: its kind, exposed name, server and what
// identifies it there (an upstream name, a URI).
func pinTitle(p *audit.ToolPin) string {
	return fmt.Sprintf("%s %s (server %s, upstream %s)", toolgate.KindNoun(p.Kind), toolgate.Visible(p.Name), toolgate.Visible(p.Server), toolgate.Visible(p.Tool))
}

func printPins(w io.Writer, ps []*audit.ToolPin) error {
	if len(ps) == 0 {
		fmt.Fprintln(w, "no tools, prompts or resources seen yet")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSERVER\tUPSTREAM NAME OR URI\tSTATUS\tPINNED\tSEEN\tFIRST SEEN\tAPPROVED")
	for _, p := range ps {
		approved := "-"
		if p.ApprovedAt != nil {
			approved = p.ApprovedAt.Local().Format(time.DateTime) + " by " + p.ApprovedBy
		}
		seen := short12(p.SeenHash)
		if p.State == toolgate.PinPinned {
			seen = "="
		}
		fmt.Fprintln(tw, visibleCells(p.Name, p.Kind, p.Server, p.Tool, string(p.State), short12(p.PinnedHash), seen,
			p.FirstSeen.Local().Format(time.DateTime), approved))
	}
	return tw.Flush()
}

// showPin prints the pinned and the current definition of what name
// designates (audit.MatchPin) and, unless it is pinned, the command that
// approves the current one and no other.
func showPin(w io.Writer, ps []*audit.ToolPin, name string) error {
	p, err := audit.MatchPin(ps, name)
	if err != nil {
		return fmt.Errorf("tools: %w", err)
	}
	fmt.Fprintf(w, "%s: %s\n", pinTitle(p), toolgate.Visible(string(p.State)))
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
		fmt.Fprintf(w, "%s (%s):\n%s\n", d.what, toolgate.Visible(d.hash), visibleJSON(d.def, ""))
	}
	if p.State != toolgate.PinPinned {
		fmt.Fprintf(w, "to approve this current definition (and no other the upstream may list by then), with the --db or --config you gave here:\n  toolgate tools approve %s --hash %s\n",
			p.Ref(ps), toolgate.Visible(p.SeenHash))
	}
	return nil
}
