package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/lookalike"
	"github.com/toolgate/toolgate/redact"
	"github.com/toolgate/toolgate/review"
)

const reviewUsage = `usage:
  toolgate review list [--db PATH] [--output text|json]
  toolgate review approve ID [--db PATH]
  toolgate review deny ID [--reason TEXT] [--db PATH]

Answers reviews waiting in a running toolgate from a terminal on the same
machine. The server notices the answer within a second; the first answer
from any channel (Slack, terminal, MCP elicitation) wins.

--db (a file or a postgres:// URL) defaults to the --config file's audit log,
else $TOOLGATE_AUDIT_DB, else $XDG_STATE_HOME/toolgate/audit.db, else
~/.local/state/toolgate/audit.db. On PostgreSQL the answer reaches the
replica holding the call at once, on any host.`

// runReview is `toolgate review`.
func runReview(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, reviewUsage)
		return fmt.Errorf("%w: review: no subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("review "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, reviewUsage) }
	fs.String("db", "", "audit DB `path` or postgres:// URL")
	fs.String("config", "", "take the audit log from this config `file` (audit.path, or audit.dsn with driver postgres)")
	var output, reason *string
	switch sub {
	case "list":
		output = fs.String("output", "text", "output format: text or json")
	case "approve":
	case "deny":
		reason = fs.String("reason", "", "why the call is denied (shown to the agent)")
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, reviewUsage)
		return nil
	default:
		fmt.Fprintln(stderr, reviewUsage)
		return fmt.Errorf("%w: review: unknown subcommand %q", errUsage, sub)
	}
	pos, path, err := parseWithDB(fs, args, "review "+sub, env)
	if path == "" {
		return err
	}

	switch sub {
	case "list":
		if len(pos) != 0 {
			return fmt.Errorf("%w: review list takes no arguments", errUsage)
		}
		if *output != "text" && *output != "json" {
			return fmt.Errorf("%w: review list: --output must be text or json", errUsage)
		}
		st, err := audit.Open(ctx, path, audit.Options{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("review: %w", err)
		}
		defer st.Close()
		ps, err := st.PendingReviews(ctx)
		if err != nil {
			return fmt.Errorf("review: %w", err)
		}
		return printPendingReviews(stdout, ps, *output == "json", time.Now())
	default:
		if len(pos) != 1 {
			return fmt.Errorf("%w: review %s needs exactly one review ID (see `toolgate review list`)", errUsage, sub)
		}
		account := reviewAccount(os.Getuid())
		v := toolgate.Verdict{
			Approved:  sub == "approve",
			Reviewer:  "cli:" + account,
			Channel:   toolgate.ChannelCLI,
			DecidedAt: time.Now(),
			// The OS account is the reviewer's principal user: a token
			// made for alice does not let the account alice approve
			// alice's calls.
			ReviewerUser: account,
		}
		if reason != nil {
			v.Reason = strings.TrimSpace(*reason)
		}
		st, err := audit.Open(ctx, path, audit.Options{})
		if err != nil {
			return fmt.Errorf("review: %w", err)
		}
		defer st.Close()
		what := ""
		if r, err := st.Get(ctx, pos[0]); err == nil {
			what = reviewedCall(r)
		}
		return answerReview(ctx, st, pos[0], what, v, stdout)
	}
}

// argsNotStored stands for the arguments of a call the log keeps only
// the hash of: the terminal cannot show them, so it cannot approve it.
const argsNotStored = "(NOT STORED: audit store_args is hash; approve in Slack or the agent's client, or deny)"

// reviewedCall is the one line answerReview shows of the call a reviewer
// answered: its kind (a prompt may share a tool's name), name, arguments
// and _meta as `review list` showed them.
func reviewedCall(r *audit.Record) string {
	what := r.KindName() + " " + toolgate.Visible(r.Name)
	c, err := r.Call()
	if err != nil || !json.Valid(r.Args) {
		return what + " " + argsNotStored
	}
	return what + " " + reviewArgs(c.Args, c.Meta)
}

// answerReview stores v for review id and says what happened; what is
// the call (reviewedCall), "" when it could not be read.
func answerReview(ctx context.Context, st review.Store, id, what string, v toolgate.Verdict, stdout io.Writer) error {
	ok, err := st.SubmitVerdict(ctx, id, v)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		return fmt.Errorf("review: no call with ID %s (see `toolgate review list`)", id)
	case errors.Is(err, toolgate.ErrMoreApprovals):
		fmt.Fprintf(stdout, "%s: your approval of %s counts; the review waits for another approver\n", err, id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("review: %w", err)
	}
	if !ok {
		won, decided, err := st.ReviewVerdict(ctx, id)
		switch {
		case err != nil:
			return fmt.Errorf("review: %s is not waiting for a review: %w", id, err)
		case !decided:
			return fmt.Errorf("review: %s is not waiting for a review (it was never reviewed)", id)
		}
		how := "denied"
		if won.Approved {
			how = "approved"
		}
		if won.Reviewer != "" {
			how += " by " + toolgate.Visible(won.Reviewer)
		}
		return fmt.Errorf("review: %s was already %s via %s at %s; your answer was not recorded",
			id, how, won.Channel, won.DecidedAt.Local().Format(time.DateTime))
	}
	word := "denied"
	if v.Approved {
		word = "approved"
	}
	if what != "" {
		what = ": " + what
	}
	fmt.Fprintf(stdout, "%s %s as %s%s\n", word, id, toolgate.Visible(v.Reviewer), what)
	return nil
}

// printPendingReviews writes the pending reviews as a table or a JSON
// array; the table follows a warning line for each review that shows
// look-alike characters (lookalike.InCall), which JSON has as lookalikes.
func printPendingReviews(w io.Writer, ps []toolgate.Pending, asJSON bool, now time.Time) error {
	r := redact.New(nil).ForReviewers()
	if asJSON {
		type pending struct {
			toolgate.Pending
			Lookalikes string `json:"lookalikes,omitempty"`
		}
		out := make([]pending, len(ps))
		for i, p := range ps {
			out[i] = pending{p, lookalike.InCall(p.Call, p.Decision, r)}
			c := &out[i].Call
			if a, ok := r.Value(c.Args).(map[string]any); ok {
				c.Args = a
			}
			if m, ok := r.Value(c.Meta).(map[string]any); ok && len(m) > 0 {
				c.Meta = m
			}
		}
		enc := audit.NewJSONEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(ps) == 0 {
		fmt.Fprintln(w, "no reviews waiting")
		return nil
	}
	for _, p := range ps {
		if warn := lookalike.InCall(p.Call, p.Decision, r); warn != "" {
			fmt.Fprintf(w, "WARNING: look-alike characters in %s: %s\n", toolgate.Visible(p.Call.ID), warn)
		}
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	// KIND: a prompt, resource or completion may share a tool's name.
	fmt.Fprintln(tw, "ID\tWAITING\tKIND\tNAME\tRULE\tREQUESTED BY\tCLIENT\tARGS")
	cut := false
	for _, p := range ps {
		args := reviewArgs(p.Call.Args, p.Call.Meta)
		if p.ArgsNotStored {
			args = argsNotStored
		}
		cut = cut || strings.Contains(args, "…(+")
		fmt.Fprintln(tw, visibleCells(p.Call.ID, now.Sub(p.RequestedAt).Round(time.Second).String(), p.Call.KindName(), p.Call.Name,
			dash(p.Decision.Rule), dash(p.Call.Principal.User), dash(reviewCut(toolgate.Visible(p.Call.Client.Name), 40)), args))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cut {
		_, err := fmt.Fprintln(w, "ARGS that end in …(+N) go on for N more characters: `toolgate audit show ID` shows a call whole.")
		return err
	}
	return nil
}

// reviewArgs is the redacted one-line preview of a call's arguments that
// reviewers see in the terminal, made visible, followed by its _meta
// (which goes upstream with them) when it has any.
func reviewArgs(args any, meta map[string]any) string {
	r := redact.New(nil).ForReviewers()
	s := reviewCut(toolgate.Visible(reviewJSON(r.Value(args))), 80)
	if len(meta) > 0 {
		s += " _meta " + reviewCut(toolgate.Visible(reviewJSON(r.Value(meta))), 80)
	}
	return s
}

// reviewJSON is v's JSON, on one line since JSON strings hold no line
// break, with <, > and & as they are: a reviewer would read \u003e for a
// shell's redirect.
func reviewJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// reviewCut squeezes each run of ASCII spaces in s (made visible) to one,
// so that padding cannot push a command's tail out of view, then cuts it
// to n runes and says how many it cut: a reviewer must know that a
// command goes on past what is shown. Any other space, one that is no word
// break to a shell (U+00A0 before a #), has been made visible by then and
// is left as its escape.
func reviewCut(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
	if rs := []rune(s); len(rs) > n {
		return string(rs[:n]) + fmt.Sprintf("…(+%d)", len(rs)-n)
	}
	return s
}

// reviewAccount names the OS account with uid, the real uid of the process
// answering: "uid:N" when the account has no name. Never $USER or
// $LOGNAME, which whoever runs the command sets to any name they like.
func reviewAccount(uid int) string {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid:" + id
}
