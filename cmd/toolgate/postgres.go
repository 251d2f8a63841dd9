package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
)

// configDB is where a's audit log is: the SQLite path, or for PostgreSQL
// the DSN with the password from the environment variable a.PasswordEnv
// (when set) added. The result may hold a secret: log only what the
// Store's Path returns.
func configDB(a config.Audit, env environ) string {
	if a.Driver != config.DriverPostgres {
		return a.Path
	}
	pw := ""
	if a.PasswordEnv != "" {
		pw = env.Getenv(a.PasswordEnv)
	}
	if pw == "" {
		return a.DSN
	}
	u, err := url.Parse(a.DSN)
	if err != nil {
		return a.DSN // audit.Open reports it, without quoting it
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

const migrateUsage = `usage: toolgate audit migrate [--db SQLITE_PATH] (--to postgres://... | --config FILE) [--output text|json]
copies the SQLite audit log (--db, default as for every audit command) into
an empty PostgreSQL database (--to, or the config's audit.dsn with
audit.driver postgres), in one transaction, then verifies both chains and
that the copy ends at the same head. Stop the servers writing the SQLite
log first. The password comes from $PGPASSWORD (or ~/.pgpass), or from
the config's audit.password_env.`

// runAuditMigrate is `toolgate audit migrate`.
func runAuditMigrate(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, migrateUsage); fs.PrintDefaults() }
	db := fs.String("db", "", "the SQLite audit DB `path` to copy")
	to := fs.String("to", "", "the PostgreSQL `DSN` to copy into")
	cfgPath := fs.String("config", "", "take --to from this config `file`'s audit section")
	output := fs.String("output", "text", "output `format`: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: audit migrate: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: audit migrate takes no arguments", errUsage)
	}
	if *to == "" && *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		*to = configDB(cfg.Audit, env)
	}
	if !audit.IsPostgres(*to) {
		return fmt.Errorf("%w: audit migrate: pass --to postgres://... or a --config with audit.driver postgres", errUsage)
	}
	src, err := dbPath(*db, env)
	if err != nil {
		return err
	}
	if audit.IsPostgres(src) {
		return fmt.Errorf("%w: audit migrate copies a SQLite log; --db is a PostgreSQL DSN", errUsage)
	}
	from, err := audit.Open(ctx, src, audit.Options{ReadOnly: true, ToolgateVersion: version})
	if err != nil {
		return fmt.Errorf("audit migrate: %w", err)
	}
	defer from.Close()
	dst, err := audit.Open(ctx, *to, audit.Options{ToolgateVersion: version})
	if err != nil {
		return fmt.Errorf("audit migrate: %w", err)
	}
	defer dst.Close()
	rep, err := dst.CopyFrom(ctx, from)
	if err != nil {
		return fmt.Errorf("audit migrate: %w", err)
	}
	if *output == "json" {
		enc := audit.NewJSONEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		tables := make([]string, 0, len(rep.Rows))
		for t := range rep.Rows {
			tables = append(tables, t)
		}
		sort.Strings(tables)
		fmt.Fprintf(stdout, "copied %s into %s:\n", from.Path(), dst.Path())
		for _, t := range tables {
			fmt.Fprintf(stdout, "  %-18s %d rows\n", t, rep.Rows[t])
		}
		fmt.Fprintf(stdout, "source: %d events, head %s, %d problems\n", rep.Source.Events, rep.Source.Head, len(rep.Source.Problems))
		fmt.Fprintf(stdout, "copy:   %d events, head %s, %d problems\n", rep.Copy.Events, rep.Copy.Head, len(rep.Copy.Problems))
	}
	if !rep.OK() {
		return fmt.Errorf("%w: audit migrate: the copy does not verify to the source's head", errFailed)
	}
	if *output != "json" {
		fmt.Fprintln(stdout, "verified: the copy's chain ends at the source's head")
	}
	return nil
}
