package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
)

// dbPath picks the audit DB: --db, $TOOLGATE_AUDIT_DB,
// $XDG_STATE_HOME/toolgate/audit.db, ~/.local/state/toolgate/audit.db.
func dbPath(flagPath string, env environ) (string, error) {
	switch {
	case flagPath != "":
		return flagPath, nil
	case env.Getenv("TOOLGATE_AUDIT_DB") != "":
		return env.Getenv("TOOLGATE_AUDIT_DB"), nil
	case env.Getenv("XDG_STATE_HOME") != "":
		return audit.DefaultPath(env.Getenv("XDG_STATE_HOME")), nil
	case env.Getenv("HOME") != "":
		return audit.DefaultPath(filepath.Join(env.Getenv("HOME"), ".local", "state")), nil
	}
	return "", fmt.Errorf("%w: cannot find the audit DB: pass --db, or set TOOLGATE_AUDIT_DB or HOME", errUsage)
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("show ID --output json"), returning the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseWithDB parses a subcommand's flags (interleaved with its arguments)
// and finds the audit DB it works on, which must exist. A subcommand with a
// --config flag takes the DB from the config file's audit.path when --db
// is not given. path is "" when the command must stop: err is then nil for
// -h, else what went wrong.
func parseWithDB(fs *flag.FlagSet, args []string, what string, env environ) (pos []string, path string, err error) {
	pos, err = parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", errUsage, what, err)
	}
	db := fs.Lookup("db").Value.String()
	if c := fs.Lookup("config"); c != nil && c.Value.String() != "" && db == "" {
		cfg, err := config.Load(c.Value.String())
		if err != nil {
			return nil, "", err
		}
		db = configDB(cfg.Audit, env)
	}
	if path, err = dbPath(db, env); err != nil {
		return nil, "", err
	}
	if err := dbExists(path); err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	return pos, path, nil
}

// dbExists reports a SQLite log missing at path, so that a command reading
// it does not create an empty one; a PostgreSQL DSN is the server's to check.
func dbExists(path string) error {
	if _, err := os.Stat(path); err != nil && !audit.IsPostgres(path) {
		return fmt.Errorf("no audit DB at %s (pass --db or set TOOLGATE_AUDIT_DB to the server's): %w", path, err)
	}
	return nil
}
