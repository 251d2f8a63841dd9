package main

import (
	"flag"
	"fmt"
	"path/filepath"

	"github.com/toolgate/toolgate/audit"
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
