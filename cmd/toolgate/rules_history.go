package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/rules"
)

const rulesHistoryUsage = `usage:
  toolgate rules history [--db PATH] [--config FILE] [--output text|json]
  toolgate rules rollback VERSION [--db PATH] [--config FILE] [--rules FILE]

history lists every rule set the servers using the audit DB loaded, with
when each was in force and the calls it allowed, denied and sent to review
meanwhile, and every rollback. rollback writes a stored version's source
back to the rules file (the config's rules.file, or --rules) atomically;
a running server's hot reload then puts it in force. The rollback is
recorded in the audit log with the OS account that asked. VERSION is the
version as history prints it, or a unique prefix of its digits.

The audit DB is --db, else the config's audit.path, else
$TOOLGATE_AUDIT_DB, $XDG_STATE_HOME/toolgate/audit.db or
~/.local/state/toolgate/audit.db. The config is --config, else
$TOOLGATE_CONFIG.`

// rulesHistoryCmd is `toolgate rules history` and `toolgate rules rollback`.
type rulesHistoryCmd struct {
	env            environ
	stdout, stderr io.Writer
	db, configPath string
	rulesFile      string
	output         string
	cfg            *config.Config
}

// runRulesHistory runs `rules history` (rollback false) or `rules rollback`.
func runRulesHistory(ctx context.Context, args []string, rollback bool, env environ, stdout, stderr io.Writer) error {
	name := "rules history"
	if rollback {
		name = "rules rollback"
	}
	c := &rulesHistoryCmd{env: env, stdout: stdout, stderr: stderr}
	flags := rulesFlags(name, rulesHistoryUsage, stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, rulesHistoryUsage) }
	flags.StringVar(&c.db, "db", "", "audit DB `path`")
	flags.StringVar(&c.configPath, "config", "", "config `file` (default $"+envConfig+")")
	if rollback {
		flags.StringVar(&c.rulesFile, "rules", "", "rules `file` to write (overrides the config's rules.file)")
	} else {
		flags.StringVar(&c.output, "output", "text", "output format: text or json")
	}
	pos, err := rulesArgs(flags, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case rollback && len(pos) != 1:
		return fmt.Errorf("%w: rules rollback needs exactly one VERSION (see `toolgate rules history`)", errUsage)
	case !rollback && len(pos) != 0:
		return fmt.Errorf("%w: rules history takes no arguments", errUsage)
	case !rollback && c.output != "text" && c.output != "json":
		return fmt.Errorf("%w: rules history: --output must be text or json", errUsage)
	}
	if err := c.loadConfig(); err != nil {
		return err
	}
	if rollback {
		return c.rollback(ctx, pos[0])
	}
	return c.history(ctx)
}

// loadConfig reads the config, if one is named, and picks the audit DB.
func (c *rulesHistoryCmd) loadConfig() error {
	path := c.configPath
	if path == "" {
		path = c.env.Getenv(envConfig)
	}
	c.cfg = config.Default()
	if path != "" {
		cfg, err := config.Load(path)
		if err != nil {
			return err
		}
		c.cfg = cfg
	}
	db := c.db
	if db == "" {
		db = configDB(c.cfg.Audit, c.env)
	}
	var err error
	if c.db, err = dbPath(db, c.env); err != nil {
		return err
	}
	if _, err := os.Stat(c.db); err != nil && !audit.IsPostgres(c.db) {
		return fmt.Errorf("rules: no audit DB at %s (pass --db or --config, or set TOOLGATE_AUDIT_DB to the server's): %w", c.db, err)
	}
	return nil
}

func (c *rulesHistoryCmd) history(ctx context.Context) error {
	st, err := audit.Open(ctx, c.db, audit.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("rules history: %w", err)
	}
	defer st.Close()
	h, err := st.RulesetHistory(ctx)
	if err != nil {
		return fmt.Errorf("rules history: %w", err)
	}
	if c.output == "json" {
		enc := audit.NewJSONEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if h == nil {
			h = []audit.RulesetPeriod{}
		}
		return enc.Encode(h)
	}
	if len(h) == 0 {
		fmt.Fprintln(c.stdout, "no rule sets recorded (a server records each one it loads)")
		return nil
	}
	ts := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tVERSION\tLABEL\tALLOW\tDENY\tREVIEW\tNOTE")
	for _, p := range h {
		if p.Kind == "rollback" {
			note := "rollback by " + p.By
			if p.Previous != "" {
				note += " (replacing " + p.Previous + ")"
			}
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\t-\t-\t-\t%s\n", ts(p.From), p.Version, dash(p.Label), note)
			continue
		}
		to := "-"
		switch {
		case p.To != nil:
			to = ts(*p.To)
		case p.InForce:
			to = "in force"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\tloaded from %s\n", ts(p.From), to, p.Version, dash(p.Label), p.Allow, p.Deny, p.Review, p.File)
	}
	return tw.Flush()
}

func (c *rulesHistoryCmd) rollback(ctx context.Context, version string) error {
	file := c.rulesFile
	if file == "" {
		file = c.cfg.Rules.File
	}
	if file == "" || file == rules.DefaultName {
		return fmt.Errorf("%w: rules rollback: no rules file is configured (the server serves the embedded default pack): pass --config or --rules", errUsage)
	}
	// Write through a symlink to the file it names, as an editor would.
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	}
	st, err := audit.Open(ctx, c.db, audit.Options{})
	if err != nil {
		return fmt.Errorf("rules rollback: %w", err)
	}
	defer st.Close()
	rs, err := st.Ruleset(ctx, version)
	if err != nil {
		return fmt.Errorf("rules rollback: %w", err)
	}
	if _, err := rules.Parse(file, rs.Source); err != nil {
		printRuleErrors(c.stderr, err)
		return fmt.Errorf("rules rollback: version %s does not compile with this toolgate; nothing written", rs.Version)
	}
	from := ""
	mode := fs.FileMode(0o600)
	if cur, err := os.ReadFile(file); err == nil {
		from = audit.RulesetVersion(cur)
		if fi, err := os.Stat(file); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	if from == rs.Version {
		fmt.Fprintf(c.stdout, "%s already holds %s%s; nothing written\n", file, rs.Version, labelSuffix(rs.Label))
		return nil
	}
	commit, err := stageFile(file, rs.Source, mode)
	if err != nil {
		return fmt.Errorf("rules rollback: %w", err)
	}
	// Recorded before the file changes: no rollback takes effect unrecorded.
	rec := audit.RulesetRollback{Version: rs.Version, File: file, From: from, By: "cli:" + reviewAccount(os.Getuid())}
	if err := st.RecordRulesetRollback(ctx, rec); err != nil {
		commit(false)
		return fmt.Errorf("rules rollback: %w; nothing written", err)
	}
	if err := commit(true); err != nil {
		return fmt.Errorf("rules rollback: recorded, but writing %s failed: %w", file, err)
	}
	fmt.Fprintf(c.stdout, "rolled %s back to %s%s (was %s); a running server's hot reload puts it in force\n",
		file, rs.Version, labelSuffix(rs.Label), dash(from))
	return nil
}

// stageFile writes data to a temporary file next to path, synced, with
// mode; commit(true) renames it over path (and syncs the directory), so
// readers see the old content or the new, never a mix; commit(false)
// removes it.
func stageFile(path string, data []byte, mode fs.FileMode) (commit func(bool) error, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".rollback-*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	fail := func(err error) (func(bool) error, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return func(ok bool) error {
		if !ok {
			return os.Remove(tmp)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}, nil
}
