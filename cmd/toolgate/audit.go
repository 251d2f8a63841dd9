package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/rules"
)

const auditUsage = `usage:
  toolgate audit list   [FILTERS] [--limit N]        recorded calls, newest N (default 100; 0 = all)
  toolgate audit show   ID [--archive FILE|DIR...]   one call in full, from the log or else the archives
  toolgate audit tail   [-f] [-n N] [FILTERS]        the last N calls (default 10); -f follows new ones
  toolgate audit export [--format jsonl|csv] [FILTERS]  every matching call, to stdout
  toolgate audit import FILE.jsonl                   append exported records (fixtures, migration)
  toolgate audit stats  [FILTERS] [--bucket hour|day]  rates, review times, per tool, rule, user, model;
                                                     json adds series over time and rule drift
  toolgate audit verify                              check the hash chain; exit 1 at the first broken link
  toolgate audit verify --checkpoints FILE --pubkey FILE
                                                     also prove the log was not rewritten since the signed checkpoints
  toolgate audit checkpoint [--config F] [--key F]   sign and publish a checkpoint of the chain head now
  toolgate audit keygen --out FILE                   a new checkpoint signing key (FILE, FILE.pub)
  toolgate audit migrate --to postgres://... | --config F
                                                     copy the SQLite log into PostgreSQL and verify the copy
  toolgate audit replay --rules NEW.yaml [FILTERS] [--fail-on-change]
                                                     which recorded decisions NEW.yaml would change
  toolgate audit archive --before T --to FILE        move the calls decided before T into an archive
                                                     and prune them (see audit archive -h)

verify, replay, stats and show take --archive FILE|DIR... to read archives
with the live log (verify checks them as one chain).

FILTERS: --since T --until T (RFC 3339 time, a date 2006-01-02, or a duration
ago such as 90m or 7d) --tool --server --action allow|deny|review --client
--model --session --rule --user --kind tool|resource|prompt|completion
(exact names; --rule "" is not a filter).

Every command takes --db PATH, a SQLite file or a postgres:// URL (default $TOOLGATE_AUDIT_DB, else
$XDG_STATE_HOME/toolgate/audit.db, else ~/.local/state/toolgate/audit.db);
read commands take --output text|json (text is a table for people, json is
for scripts). See docs/audit.md.`

// runAudit is `toolgate audit`.
func runAudit(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return fmt.Errorf("%w: audit: no subcommand given", errUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, auditUsage)
		return nil
	case "list", "show", "tail", "export", "import", "stats", "verify", "replay":
	case "keygen":
		return runKeygen(args, stdout, stderr)
	case "checkpoint":
		return runCheckpoint(ctx, args, env, stdout, stderr)
	case "archive":
		return runArchive(ctx, args, env, stdout, stderr)
	case "migrate":
		return runAuditMigrate(ctx, args, env, stdout, stderr)
	default:
		fmt.Fprintln(stderr, auditUsage)
		return fmt.Errorf("%w: audit: unknown subcommand %q", errUsage, sub)
	}
	c := &auditCmd{sub: sub, env: env, stdout: stdout, stderr: stderr, now: time.Now}
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, auditUsage)
		fmt.Fprintf(stderr, "\nflags of audit %s:\n", sub)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.db, "db", "", "audit DB `path`")
	if sub != "export" && sub != "import" {
		fs.StringVar(&c.output, "output", "text", "output `format`: text (a table) or json")
	}
	switch sub {
	case "list", "tail", "export", "stats", "replay":
		c.filterFlags(fs)
	}
	switch sub {
	case "verify", "replay", "stats", "show":
		fs.Var(&c.archives, "archive", "read this archive `file` (or every *.gz in a directory) with the live log; repeat it, or list more files after it")
	}
	switch sub {
	case "list":
		fs.IntVar(&c.limit, "limit", 100, "show the newest `N` matching calls (0 = all)")
	case "stats":
		fs.StringVar(&c.bucket, "bucket", "day", "`width` of the JSON series' buckets: hour or day (UTC)")
	case "tail":
		fs.BoolVar(&c.follow, "f", false, "follow: keep printing new calls until interrupted")
		fs.IntVar(&c.limit, "n", 10, "print the last `N` calls first")
		fs.DurationVar(&c.interval, "interval", 500*time.Millisecond, "how often -f polls for new calls")
	case "export":
		fs.StringVar(&c.format, "format", "jsonl", "`format`: jsonl (what import reads) or csv")
	case "verify":
		fs.StringVar(&c.checkpoints, "checkpoints", "", "published checkpoints `file` (JSON lines) the log must match")
		fs.StringVar(&c.pubkey, "pubkey", "", "public key `file` the checkpoints are signed with")
	case "replay":
		fs.StringVar(&c.rulesPath, "rules", "", "the rule `file` to replay against (required)")
		fs.BoolVar(&c.failOnChange, "fail-on-change", false, "exit 1 if any decision would change (for CI)")
		fs.IntVar(&c.limit, "limit", 0, "replay only the newest `N` matching calls (0 = all)")
		fs.IntVar(&c.show, "show", 200, "list at most `N` changed calls in text output (0 = all)")
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: audit %s: %v", errUsage, sub, err)
	}
	if c.output != "" && c.output != "text" && c.output != "table" && c.output != "json" {
		return fmt.Errorf("%w: audit %s: --output must be text or json", errUsage, sub)
	}
	if err := c.parseFilter(); err != nil {
		return err
	}
	wantPos := 0
	if sub == "show" || sub == "import" {
		wantPos = 1
	}
	if len(c.archives) > 0 {
		// --archive A B C: the files after the flag are archives too;
		// show's first argument stays its call's id.
		n := min(wantPos, len(pos))
		c.archives, pos = append(c.archives, pos[n:]...), pos[:n]
	}
	if len(pos) != wantPos {
		return fmt.Errorf("%w: audit %s takes %d argument(s), got %d: %s", errUsage, sub, wantPos, len(pos), strings.Join(pos, " "))
	}
	c.path, err = dbPath(c.db, env)
	if err != nil {
		return err
	}
	if sub != "import" {
		if err := dbExists(c.path); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	st, err := audit.Open(ctx, c.path, audit.Options{ReadOnly: sub != "import", ToolgateVersion: version})
	if err != nil {
		return err
	}
	defer st.Close()
	c.st = st
	if len(c.archives) > 0 && (sub == "replay" || sub == "stats") {
		done, err := c.useCombined(ctx)
		if err != nil {
			return err
		}
		defer done()
	}
	switch sub {
	case "list":
		return c.list(ctx)
	case "show":
		return c.showOne(ctx, pos[0])
	case "tail":
		return c.tail(ctx)
	case "export":
		return c.export(ctx)
	case "import":
		return c.importFile(ctx, pos[0])
	case "stats":
		return c.stats(ctx)
	case "verify":
		return c.verify(ctx)
	default:
		return c.replay(ctx)
	}
}

// auditCmd holds one audit subcommand's flags and streams.
type auditCmd struct {
	sub            string
	env            environ
	stdout, stderr io.Writer
	now            func() time.Time
	st             *audit.Store
	path           string

	db, output, format, rulesPath string
	bucket                        string
	checkpoints, pubkey           string
	archives                      archiveList
	since, until                  string
	filter                        audit.Filter
	limit, show                   int
	follow, failOnChange          bool
	interval                      time.Duration
}

func (c *auditCmd) json() bool { return c.output == "json" }

func (c *auditCmd) filterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.since, "since", "", "only calls received at or after `T` (RFC 3339, 2006-01-02, or a duration ago: 1h, 7d)")
	fs.StringVar(&c.until, "until", "", "only calls received before `T` (same forms as --since)")
	fs.StringVar(&c.filter.Tool, "tool", "", "only this upstream tool `name`")
	fs.StringVar(&c.filter.Server, "server", "", "only this upstream server `name`")
	fs.StringVar(&c.filter.Action, "action", "", "only this `action`: allow, deny or review")
	fs.StringVar(&c.filter.Client, "client", "", "only this MCP client `name`")
	fs.StringVar(&c.filter.Model, "model", "", "only this model `name`")
	fs.StringVar(&c.filter.Session, "session", "", "only this session `id`")
	fs.StringVar(&c.filter.Rule, "rule", "", "only calls decided by this rule `name`")
	fs.StringVar(&c.filter.User, "user", "", "only calls made by this principal `user`")
	fs.StringVar(&c.filter.Kind, "kind", "", "only calls of this `kind`: tool, resource, prompt or completion")
}

func (c *auditCmd) parseFilter() error {
	var err error
	if c.filter.Since, err = parseWhen(c.since, c.now()); err != nil {
		return fmt.Errorf("%w: audit %s: --since: %v", errUsage, c.sub, err)
	}
	if c.filter.Until, err = parseWhen(c.until, c.now()); err != nil {
		return fmt.Errorf("%w: audit %s: --until: %v", errUsage, c.sub, err)
	}
	switch toolgate.Action(c.filter.Action) {
	case "", toolgate.Allow, toolgate.Deny, toolgate.Review:
	default:
		return fmt.Errorf("%w: audit %s: --action must be allow, deny or review", errUsage, c.sub)
	}
	if c.limit < 0 {
		return fmt.Errorf("%w: audit %s: a count must not be negative", errUsage, c.sub)
	}
	return nil
}

// parseWhen reads an RFC 3339 time, a date, or a duration before now
// ("90m", "36h", "7d"); see audit.ParseWhen.
func parseWhen(s string, now time.Time) (time.Time, error) { return audit.ParseWhen(s, now) }

// writeJSON writes v indented, with audit.NewJSONEncoder's escapes: the
// records hold agent- and upstream-chosen text.
func (c *auditCmd) writeJSON(v any) error {
	enc := audit.NewJSONEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *auditCmd) list(ctx context.Context) error {
	c.filter.Limit = c.limit
	recs, err := c.st.List(ctx, c.filter)
	if err != nil {
		return err
	}
	if c.json() {
		if recs == nil {
			recs = []*audit.Record{}
		}
		return c.writeJSON(recs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, listHeader)
	for _, r := range recs {
		fmt.Fprintln(tw, listRow(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(recs) == 0 {
		fmt.Fprintln(c.stderr, "no matching calls")
	} else if c.limit > 0 && len(recs) == c.limit {
		fmt.Fprintf(c.stderr, "showing the newest %d; use --limit 0 for all\n", c.limit)
	}
	return nil
}

const listHeader = "TIME\tID\tSTATUS\tACTION\tRULE\tTOOL\tUSER\tCLIENT\tMODEL\tREVIEWER"

func listRow(r *audit.Record) string {
	reviewer := "-"
	if r.Review != nil {
		reviewer = dash(r.Review.Reviewer)
		if r.Review.Reviewer == "" {
			reviewer = "(" + r.Review.Channel + ")"
		}
	}
	action := string(r.Action)
	if r.AutoApproved {
		action += " (auto)"
	}
	what := r.Server + "/" + r.Tool
	if r.Kind != "" {
		// A resource read, prompt get or completion: say which.
		what = r.Kind + " " + what
	}
	return visibleCells(
		r.ReceivedAt.Local().Format("2006-01-02 15:04:05"), r.ID, r.Status, action, dash(r.Rule),
		what, dash(r.Principal.User), dash(r.Client.Name), dash(r.Model.Name), reviewer,
	)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *auditCmd) showOne(ctx context.Context, id string) error {
	r, err := c.st.Get(ctx, id)
	if errors.Is(err, audit.ErrNotFound) && len(c.archives) > 0 {
		r, err = c.getArchived(ctx, id)
	}
	if errors.Is(err, audit.ErrNotFound) {
		if len(c.archives) > 0 {
			return fmt.Errorf("audit show: no call %s in %s nor in its archives", id, c.path)
		}
		// Retention and `audit archive` move older calls out of the log.
		return fmt.Errorf("audit show: no call %s in %s; if it is older, it may be archived: add --archive DIR (audit.archive_dir) to look in the archives", id, c.path)
	}
	if err != nil {
		return err
	}
	if c.json() {
		return c.writeJSON(r)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	// Every value is made visible, so none can break its line or
	// rewrite the ones above; only the indentation of the arguments and
	// _meta spans lines (rawRow).
	rawRow := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row := func(k, v string) { rawRow(k, toolgate.Visible(v)) }
	peer := func(name, ver string) string {
		if ver == "" {
			return name
		}
		return name + " " + ver
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format(time.RFC3339Nano)
	}
	row("id", r.ID)
	row("status", r.Status)
	row("received", ts(r.ReceivedAt))
	row("decided", ts(r.DecidedAt))
	row("kind", r.KindName())
	row("tool", fmt.Sprintf("%s/%s (exposed as %s)", r.Server, r.Tool, dash(r.Name)))
	row("server version", r.ServerVersion)
	row("schema hash", r.SchemaHash)
	row("client", peer(r.Client.Name, r.Client.Version))
	row("model", peer(r.Model.Name, r.Model.Version))
	row("session", r.Session)
	row("principal", r.Principal.String())
	if r.Confidence != nil {
		row("confidence", fmt.Sprint(*r.Confidence))
	} else {
		row("confidence", "unknown")
	}
	rawRow("args", visibleJSON(r.Args, "\t"))
	row("args hash", r.ArgsHash)
	if len(r.Meta) > 0 {
		rawRow("_meta", visibleJSON(r.Meta, "\t"))
	}
	action := string(r.Action)
	if r.AutoApproved {
		action += " (auto-approved)"
	}
	row("action", action)
	row("confidence effect", r.ConfidenceEffect)
	row("rule", dash(r.Rule)+"  (rules "+r.RulesVersion+labelSuffix(r.RulesLabel)+")")
	row("reason", r.Reason)
	row("sandbox", r.Sandbox)
	row("eval error", r.EvalError)
	for _, s := range r.Shadow {
		row("shadow", fmt.Sprintf("%s would %s %s", s.Rule, s.Action, s.Reason))
	}
	if v := r.Review; v != nil {
		verdict := "denied"
		if v.Approved {
			verdict = "approved"
		}
		row("review", fmt.Sprintf("%s by %s via %s after %v", verdict, dash(v.Reviewer), v.Channel, v.TimeToDecision))
		row("review reason", v.Reason)
		row("review decided", ts(v.DecidedAt))
	}
	if r.SlackChannel != "" {
		row("slack message", r.SlackChannel+" "+r.SlackTS)
	}
	if o := r.Outcome; o != nil {
		row("outcome", fmt.Sprintf("%s in %v, %d bytes", o.Status, o.Duration, o.ResultSize))
		row("outcome error", o.Error)
		row("result hash", o.ResultHash)
		row("finished", ts(o.FinishedAt))
	}
	row("toolgate", r.ToolgateVersion)
	return tw.Flush()
}

// getArchived looks for the call id in c's archives, opening one at a time
// (each is decompressed to a temporary copy), newest first: recent
// archives are the likelier place of a call someone asks about.
func (c *auditCmd) getArchived(ctx context.Context, id string) (*audit.Record, error) {
	files, err := archiveFiles(c.archives)
	if err != nil {
		return nil, err
	}
	for _, f := range slices.Backward(files) {
		a, err := audit.OpenArchive(ctx, f, "")
		if err != nil {
			return nil, err
		}
		r, err := a.Get(ctx, id)
		a.Close()
		if !errors.Is(err, audit.ErrNotFound) {
			if err != nil {
				return nil, fmt.Errorf("audit show: archive %s: %w", f, err)
			}
			return r, nil
		}
	}
	return nil, audit.ErrNotFound
}

func labelSuffix(l string) string {
	if l == "" {
		return ""
	}
	return ", " + l
}

func (c *auditCmd) tail(ctx context.Context) error {
	f := c.filter
	f.Limit = c.limit
	// Read the follow point first: a call recorded in between is then
	// printed twice rather than never.
	last, err := c.st.LastSeq(ctx)
	if err != nil {
		return err
	}
	recs, err := c.st.List(ctx, f)
	if err != nil {
		return err
	}
	if c.limit == 0 {
		recs = nil
	}
	enc := audit.NewJSONEncoder(c.stdout)
	// Followed rows cannot be aligned by tabwriter after the fact, so tail
	// pads columns to fixed widths.
	emit := func(r *audit.Record) error {
		if c.json() {
			return enc.Encode(r) // one JSON object per line (JSON Lines)
		}
		cols := strings.Split(listRow(r), "\t")
		widths := []int{19, 26, 10, 7, 20, 28, 14, 14, 0}
		var b strings.Builder
		for i, col := range cols {
			if i == len(cols)-1 {
				b.WriteString(col)
				break
			}
			fmt.Fprintf(&b, "%-*s  ", widths[i], col)
		}
		_, err := fmt.Fprintln(c.stdout, strings.TrimRight(b.String(), " "))
		return err
	}
	if !c.json() {
		r := strings.Split(listHeader, "\t")
		fmt.Fprintf(c.stdout, "%-19s  %-26s  %-10s  %-7s  %-20s  %-28s  %-14s  %-14s  %s\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
	}
	for _, r := range recs {
		if err := emit(r); err != nil {
			return err
		}
	}
	if !c.follow {
		return nil
	}
	f.Limit, f.After = 0, last
	return c.st.Tail(ctx, f, c.interval, emit)
}

func (c *auditCmd) export(ctx context.Context) error {
	recs := c.st.Records(ctx, c.filter)
	switch c.format {
	case "jsonl":
		return audit.WriteJSONL(c.stdout, recs)
	case "csv":
		return audit.WriteCSV(c.stdout, recs)
	default:
		return fmt.Errorf("%w: audit export: --format must be jsonl or csv", errUsage)
	}
}

func (c *auditCmd) importFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit import: %w", err)
	}
	defer f.Close()
	n, err := c.st.Import(ctx, f)
	if c.json() {
		if werr := c.writeJSON(map[string]any{"imported": n}); werr != nil && err == nil {
			err = werr
		}
	} else {
		fmt.Fprintf(c.stdout, "imported %d records into %s\n", n, c.path)
	}
	return err
}

func (c *auditCmd) stats(ctx context.Context) error {
	if c.json() {
		// The web dashboard serves the same Report (package web).
		b, err := audit.ParseBucket(c.bucket)
		if err != nil {
			return fmt.Errorf("%w: audit stats: --bucket: %v", errUsage, err)
		}
		r, err := c.st.Report(ctx, c.filter, b, c.now())
		if err != nil {
			return err
		}
		return c.writeJSON(r)
	}
	s, err := c.st.Stats(ctx, c.filter)
	if err != nil {
		return err
	}
	pct := func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "calls:\t%d\n", s.Calls)
	fmt.Fprintf(tw, "allow:\t%d\t%s\n", s.Allow, pct(s.AllowRate))
	fmt.Fprintf(tw, "deny:\t%d\t%s\n", s.Deny, pct(s.DenyRate))
	fmt.Fprintf(tw, "review:\t%d\t%s\n", s.Review, pct(s.ReviewRate))
	fmt.Fprintf(tw, "auto-approved:\t%d\t%s of review-rule matches\n", s.AutoApproved, pct(s.AutoApprovalRate))
	fmt.Fprintf(tw, "rule errors:\t%d\n", s.EvalErrors)
	rv := s.Reviews
	fmt.Fprintf(tw, "reviews:\t%d approved, %d denied (%s approved), %d unanswered, %d pending\n",
		rv.Approved, rv.Denied, pct(rv.ApprovalRate), rv.Unanswered, rv.Pending)
	p := func(name string, p audit.Percentiles) {
		if p.N == 0 {
			fmt.Fprintf(tw, "%s:\tno data\n", name)
			return
		}
		fmt.Fprintf(tw, "%s:\tp50 %v\tp90 %v\tp99 %v\t(n=%d)\n", name, p.P50, p.P90, p.P99, p.N)
	}
	p("time to decision", rv.TimeToDecision)
	p("time to approval", rv.TimeToApproval)
	keys := make([]string, 0, len(s.Status))
	for k := range s.Status {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var st []string
	for _, k := range keys {
		st = append(st, fmt.Sprintf("%s %d", toolgate.Visible(k), s.Status[k]))
	}
	fmt.Fprintf(tw, "status:\t%s\n", strings.Join(st, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := func(title string, cs []audit.Count) {
		fmt.Fprintln(c.stdout)
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tCALLS\tALLOW\tDENY\tREVIEW\t\n", title)
		for _, x := range cs {
			key := x.Key
			if key == "" {
				key = "(default)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", toolgate.Visible(key), x.Calls, x.Allow, x.Deny, x.Review)
		}
		tw.Flush()
	}
	counts("TOOL", s.ByTool)
	counts("RULE", s.ByRule)
	return nil
}

func (c *auditCmd) verify(ctx context.Context) error {
	if c.checkpoints != "" || c.pubkey != "" {
		return c.verifyCheckpoints(ctx)
	}
	if len(c.archives) > 0 {
		return c.verifyArchives(ctx)
	}
	rep, err := c.st.Verify(ctx)
	if err != nil {
		return err
	}
	if c.json() {
		if err := c.writeJSON(map[string]any{"ok": rep.OK(), "report": rep}); err != nil {
			return err
		}
	} else if rep.OK() {
		fmt.Fprintf(c.stdout, "OK: %d events and %d calls verified; chain head %s\n", rep.Events, rep.Calls, rep.Head)
	} else {
		fmt.Fprintf(c.stdout, "BROKEN: first bad link: %s\n", toolgate.Visible(rep.First().String()))
		for _, p := range rep.Problems[1:] {
			fmt.Fprintf(c.stdout, "  also: %s\n", toolgate.Visible(p.String()))
		}
		if rep.More {
			fmt.Fprintln(c.stdout, "  (more problems not listed)")
		}
		fmt.Fprintf(c.stdout, "checked %d events and %d calls\n", rep.Events, rep.Calls)
	}
	if !rep.OK() {
		return errFailed
	}
	return nil
}

func (c *auditCmd) replay(ctx context.Context) error {
	if c.rulesPath == "" {
		return fmt.Errorf("%w: audit replay: --rules FILE is required", errUsage)
	}
	set, err := rules.Load(c.rulesPath)
	if err != nil {
		return fmt.Errorf("audit replay: %w", err)
	}
	f := c.filter
	f.Limit = c.limit
	var progress func(done, total int)
	if isTerminal(c.stderr) {
		progress = progressBar(c.stderr)
	}
	// Replayed logs repeat calls: each distinct one is decided once.
	rep, err := audit.Replay(ctx, c.st, set.Memo(replayMemo), f, progress)
	if err != nil {
		return err
	}
	if c.json() {
		if rep.Changes == nil {
			rep.Changes = []audit.Change{}
		}
		if rep.Grants == nil {
			rep.Grants = []audit.GrantReplay{}
		}
		if err := c.writeJSON(rep); err != nil {
			return err
		}
	} else if err := c.replayText(rep); err != nil {
		return err
	}
	if c.failOnChange && rep.Changed > 0 {
		return errFailed
	}
	return nil
}

// replayMemo bounds how many distinct calls' decisions a replay keeps.
const replayMemo = 100_000

func (c *auditCmd) replayText(rep audit.ReplayReport) error {
	w := c.stdout
	fmt.Fprintf(w, "replayed %d calls against %s (%s%s) in %v: %d would change\n",
		rep.Total, c.rulesPath, rep.RulesVersion, labelSuffix(rep.RulesLabel), rep.Elapsed.Round(time.Millisecond), rep.Changed)
	if rep.ArgsNotStored > 0 {
		fmt.Fprintf(w, "%d calls not replayed: their arguments were not stored (audit.store_args: hash), only their hash\n", rep.ArgsNotStored)
	}
	if rep.Masked > 0 {
		fmt.Fprintf(w, "%d of the calls were evaluated on masked values ([REDACTED ...] in their stored arguments): "+
			"their results may differ from the live decisions ([masked] below)\n", rep.Masked)
	}
	if len(rep.Confidence) > 0 {
		var parts []string
		for _, e := range []string{toolgate.ConfidenceTightenedToReview, toolgate.ConfidenceTightenedToDeny, toolgate.ConfidenceAutoApproved} {
			if n := rep.Confidence[e]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, e))
			}
		}
		fmt.Fprintf(w, "the agents' stated confidence changed %s of the new decisions\n", strings.Join(parts, ", "))
	}
	dec := func(a toolgate.Action, rule string) string {
		return toolgate.Visible(string(a) + " (" + ruleName(rule) + ")")
	}
	if rep.Changed > 0 {
		if err := c.replayChanges(rep, dec); err != nil {
			return err
		}
	}
	if len(rep.Grants) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nGRANTS (issued by reviews of the replayed calls)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tREVIEW\tTOOL\tSCOPE\tAPPROVER\tUSES\tREVOKED\tDECISION THEN\t\tNOW")
	for _, g := range rep.Grants {
		revoked := "-"
		if g.RevokedAt != nil {
			revoked = g.RevokedAt.Local().Format("2006-01-02 15:04:05") + " by " + toolgate.Visible(g.RevokedBy)
		}
		now := dec(g.NewAction, g.NewRule)
		if g.Changed {
			now += " CHANGED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t->\t%s\n", visibleCells(g.ID, g.ReviewID, g.Server+"/"+g.Tool, g.Scope, g.Approver),
			g.Uses, revoked, dec(g.OldAction, g.OldRule), now)
	}
	return tw.Flush()
}

// replayChanges prints the calls a replay would decide differently.
func (c *auditCmd) replayChanges(rep audit.ReplayReport, dec func(toolgate.Action, string) string) error {
	w := c.stdout
	fmt.Fprintln(w, "\nCHANGED CALLS")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tTOOL\tOLD\t\tNEW")
	for i, ch := range rep.Changes {
		if c.show > 0 && i == c.show {
			fmt.Fprintf(tw, "... %d more (use --show 0 or --output json)\n", len(rep.Changes)-c.show)
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t->\t%s\n", ch.ReceivedAt.Local().Format("2006-01-02 15:04:05"), visibleCells(ch.ID, ch.Server+"/"+ch.Tool),
			dec(ch.OldAction, ch.OldRule)+effectNote(ch.OldConfidence), dec(ch.NewAction, ch.NewRule)+effectNote(ch.NewConfidence)+grantNote(ch.Grant)+maskedNote(ch.Masked))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nCHANGES BY RULE")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALLS\tOLD\t\tNEW")
	for _, t := range rep.Transitions {
		fmt.Fprintf(tw, "%d\t%s\t->\t%s\n", t.Calls, dec(t.OldAction, t.OldRule), dec(t.NewAction, t.NewRule))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPER RULE")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tBEFORE\tAFTER\tLOST\tGAINED\t")
	for _, r := range rep.Rules {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", toolgate.Visible(ruleName(r.Rule)), r.Before, r.After, r.Lost, r.Gained)
	}
	return tw.Flush()
}

// effectNote marks a decision the agent's stated confidence changed.
func effectNote(e string) string {
	if e == "" || e == toolgate.ConfidenceNone {
		return ""
	}
	return " [confidence: " + e + "]"
}

// maskedNote marks a change decided on redaction masks, not on the values.
func maskedNote(masked bool) string {
	if masked {
		return " [masked]"
	}
	return ""
}

func ruleName(r string) string {
	if r == "" {
		return "default"
	}
	return r
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a one-line bar on w, redrawn in place.
func progressBar(w io.Writer) func(done, total int) {
	const width = 30
	start := time.Now()
	return func(done, total int) {
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		n := int(frac * width)
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "\rreplaying [%s%s] %d/%d %3.0f%% %.0f calls/s", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total, 100*frac, rate)
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}

// grantNote marks a changed call that ran on a grant.
func grantNote(grant string) string {
	if grant == "" {
		return ""
	}
	return " (ran on a grant: " + toolgate.Visible(grant) + ")"
}
