package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/audit"
)

const tokensUsage = `usage:
  toolgate tokens create --user NAME [--group G]... [--review] [--expires D] [--db PATH] [--output text|json]
  toolgate tokens list [--db PATH] [--output text|json]
  toolgate tokens revoke TOKEN_ID [--db PATH]

Per-user bearer tokens for agents over HTTP (accepted when the config says
http.tokens: true). create prints the new token once: toolgate keeps only
its sha256, so it cannot show it again. Every call made with it is recorded
under its user (and groups), which rules see as principal.user and
principal.groups. With --review the token is a reviewer's instead: it
signs in to the web UI at /ui/ (as a reviewer when http.reviewers lists
the user or a group) and is refused at /mcp, as agent tokens are refused
at /ui/: an agent holds its token, and must not answer reviews with it.
--expires takes a duration (90d, 720h) or a date/time
(2027-01-31, RFC 3339); without it the token does not expire. revoke takes
effect on the next request, in every running toolgate sharing the DB.
Creation and revocation are chained in the audit log with the OS user who
ran the command.

--db defaults to $TOOLGATE_AUDIT_DB, else $XDG_STATE_HOME/toolgate/audit.db,
else ~/.local/state/toolgate/audit.db.`

// groupFlags collects repeated --group flags.
type groupFlags []string

func (g *groupFlags) String() string { return strings.Join(*g, ",") }
func (g *groupFlags) Set(v string) error {
	if v = strings.TrimSpace(v); v == "" {
		return errors.New("empty group name")
	}
	*g = append(*g, v)
	return nil
}

// runTokens is `toolgate tokens`.
func runTokens(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokensUsage)
		return fmt.Errorf("%w: tokens: no subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("tokens "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, tokensUsage) }
	db := fs.String("db", "", "audit DB `path`")
	user := fs.String("user", "", "the token's `user` (its principal.user)")
	var groups groupFlags
	fs.Var(&groups, "group", "a `group` of the user (repeat for more)")
	expires := fs.String("expires", "", "expiry: a duration from now (90d, 720h) or a date/time")
	review := fs.Bool("review", false, "a reviewer's token for the web UI, not an agent's")
	output := fs.String("output", "text", "output format: text or json")
	switch sub {
	case "create", "list", "revoke":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, tokensUsage)
		return nil
	default:
		fmt.Fprintln(stderr, tokensUsage)
		return fmt.Errorf("%w: tokens: unknown subcommand %q", errUsage, sub)
	}
	actor := "cli:" + reviewAccount(os.Getuid())
	if sub == "create" {
		// The DB may not exist yet: tokens are made before the first serve.
		pos, err := parseInterleaved(fs, args)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil || len(pos) != 0 || strings.TrimSpace(*user) == "" {
			return fmt.Errorf("%w: tokens create needs --user NAME and no arguments", errUsage)
		}
		exp, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return fmt.Errorf("%w: tokens create: --expires: %v", errUsage, err)
		}
		path, err := dbPath(*db, env)
		if err != nil {
			return err
		}
		st, err := audit.Open(ctx, path, audit.Options{})
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		defer st.Close()
		scope := audit.ScopeAgent
		if *review {
			scope = audit.ScopeReview
		}
		t, secret, err := st.CreateToken(ctx, *user, groups, scope, exp, actor)
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		if *output == "json" {
			return writeIndented(stdout, struct {
				audit.Token
				Secret string `json:"token"`
			}{t, secret})
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "%s token %s for %s created; it is shown only this once\n", t.Scope, t.ID, t.User)
		return nil
	}
	pos, path, err := parseWithDB(fs, args, "tokens "+sub, env)
	if path == "" {
		return err
	}
	if sub == "list" {
		if len(pos) != 0 || (*output != "text" && *output != "json") {
			return fmt.Errorf("%w: tokens list takes no arguments and --output text or json", errUsage)
		}
		st, err := audit.Open(ctx, path, audit.Options{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		defer st.Close()
		ts, err := st.Tokens(ctx)
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		if *output == "json" {
			if ts == nil {
				ts = []audit.Token{}
			}
			return writeIndented(stdout, ts)
		}
		return printTokens(stdout, ts, time.Now())
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: tokens revoke needs exactly one token ID (see `toolgate tokens list`)", errUsage)
	}
	st, err := audit.Open(ctx, path, audit.Options{})
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer st.Close()
	if err := st.RevokeToken(ctx, pos[0], actor); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	fmt.Fprintf(stdout, "revoked %s\n", pos[0])
	return nil
}

func writeIndented(w io.Writer, v any) error {
	enc := audit.NewJSONEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseExpiry reads --expires: "" (never), a duration from now (90d,
// 720h), a date or an RFC 3339 time, which must lie ahead.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			t = now.AddDate(0, 0, days)
		}
	}
	if t.IsZero() {
		if d, err := time.ParseDuration(s); err == nil {
			t = now.Add(d)
		} else if t, err = parseWhen(s, now); err != nil {
			return time.Time{}, fmt.Errorf("%q is not a duration (90d, 720h), a date or an RFC 3339 time", s)
		}
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%q is not in the future", s)
	}
	return t, nil
}

// printTokens writes the tokens as a table: never the tokens themselves.
func printTokens(w io.Writer, ts []audit.Token, now time.Time) error {
	if len(ts) == 0 {
		fmt.Fprintln(w, "no tokens")
		return nil
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04")
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tGROUPS\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tSTATE")
	for _, t := range ts {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked " + when(t.RevokedAt) + " by " + dash(t.RevokedBy)
		case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
			state = "expired"
		}
		exp := "never"
		if !t.ExpiresAt.IsZero() {
			exp = when(t.ExpiresAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, dash(strings.Join(t.Groups, ",")), t.Scope,
			when(t.CreatedAt), exp, when(t.LastUsed), state)
	}
	return tw.Flush()
}
