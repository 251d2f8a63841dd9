package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/audit"
)

const grantsUsage = `usage:
  toolgate grants list [--all] [--db PATH] [--output text|json]
  toolgate grants revoke GRANT_ID [--db PATH]

A grant is an approval bound to one call (server, tool, the hash of its
arguments, the rule-set version and the agent's session): a reviewer who
approves after the agent stopped waiting issues one, and the agent's retry
of the same call uses it, once. list shows the usable grants (--all: every
grant); revoke ends one. Both are recorded in the audit log.`

// runGrants is `toolgate grants`.
func runGrants(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, grantsUsage)
		return fmt.Errorf("%w: grants: no subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("grants "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, grantsUsage) }
	fs.String("db", "", "audit DB `path`")
	all := fs.Bool("all", false, "list expired, used and revoked grants too")
	output := fs.String("output", "text", "output format: text or json")
	switch sub {
	case "list", "revoke":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, grantsUsage)
		return nil
	default:
		fmt.Fprintln(stderr, grantsUsage)
		return fmt.Errorf("%w: grants: unknown subcommand %q", errUsage, sub)
	}
	pos, path, err := parseWithDB(fs, args, "grants "+sub, env)
	if path == "" {
		return err
	}
	if sub == "list" {
		if len(pos) != 0 || (*output != "text" && *output != "json") {
			return fmt.Errorf("%w: grants list takes no arguments and --output text or json", errUsage)
		}
		st, err := audit.Open(ctx, path, audit.Options{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("grants: %w", err)
		}
		defer st.Close()
		gs, err := st.Grants(ctx, *all)
		if err != nil {
			return fmt.Errorf("grants: %w", err)
		}
		if *output == "json" {
			enc := audit.NewJSONEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(gs)
		}
		return printGrants(stdout, gs, time.Now())
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: grants revoke needs exactly one grant ID (see `toolgate grants list`)", errUsage)
	}
	st, err := audit.Open(ctx, path, audit.Options{})
	if err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	defer st.Close()
	if err := st.RevokeGrant(ctx, pos[0], "cli:"+reviewAccount(os.Getuid())); err != nil {
		return fmt.Errorf("grants: %w", err)
	}
	fmt.Fprintf(stdout, "revoked grant %s\n", pos[0])
	return nil
}

func printGrants(w io.Writer, gs []*audit.Grant, now time.Time) error {
	if len(gs) == 0 {
		fmt.Fprintln(w, "no grants")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tREVIEW\tKIND\tNAME\tSCOPE\tSESSION\tAPPROVER\tUSES\tSTATE")
	for _, g := range gs {
		state := "usable until " + g.ExpiresAt.Local().Format("15:04:05")
		switch {
		case g.RevokedAt != nil:
			state = "revoked by " + g.RevokedBy
		case !now.Before(g.ExpiresAt):
			state = "expired"
		case g.MaxUses > 0 && g.Uses >= g.MaxUses:
			state = "used"
		}
		uses := fmt.Sprint(g.Uses)
		if g.MaxUses > 0 {
			uses += fmt.Sprintf("/%d", g.MaxUses)
		}
		fmt.Fprintln(tw, visibleCells(g.ID, g.ReviewID, dash(g.Kind), g.Server+"/"+g.Tool, g.Scope, g.Session, g.Approver, uses, state))
	}
	return tw.Flush()
}
