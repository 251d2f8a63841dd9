package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/tools"
)

const toolsNamesUsage = `usage: toolgate tools names [--config FILE] [--output text|json]

Connects to the config's servers as serve does, and prints each exposed
tool name with the server and the upstream tool name it stands for: the
mapping agents see (exposed) and rules, the audit log and the upstream see
(server and tool). A name is exposed unchanged when it is valid for Claude
and Cursor (at most 64 characters of A-Z a-z 0-9 _ -), else made valid and
suffixed with a hash (see README, "Tool names"). Servers that do not come
up are reported on stderr; two servers exposing one name is an error.

Flags:`

// namesStartWait bounds how long tools names waits for the servers.
const namesStartWait = 30 * time.Second

// toolName is one row of tools names --output json.
type toolName struct {
	Exposed string `json:"exposed"`
	Server  string `json:"server"`
	Tool    string `json:"tool"`
	// How is "unchanged", "prefixed" or "renamed" (made valid and hashed).
	How string `json:"how"`
}

// runToolsNames is `toolgate tools names`.
func runToolsNames(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tools names", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, toolsNamesUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "config file, YAML or JSON (default $"+envConfig+")")
	output := fs.String("output", "text", "output: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: tools names: %v", errUsage, err)
	}
	if fs.NArg() > 0 || (*output != "text" && *output != "json") {
		return fmt.Errorf("%w: tools names takes no arguments and --output text or json", errUsage)
	}
	path, cfg, err := loadConfig(*configPath, env)
	if err != nil {
		return err
	}
	_, _, ups, err := configUpstreams(ctx, path, cfg, env, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	cat, err := tools.New(tools.Options{Upstreams: ups, Separator: cfg.Naming.Separator, Version: version,
		StartWait: namesStartWait})
	if err != nil {
		return fmt.Errorf("tools names: %w", err)
	}
	cat.Start(ctx)
	defer cat.Close()

	for _, st := range cat.Status() {
		if !st.Up {
			fmt.Fprintf(stderr, "toolgate: server %q is not up (%s); its tools are not listed\n", st.Name, orNone(st.LastError))
		}
	}
	var rows []toolName
	for _, t := range cat.Tools() {
		how := "renamed"
		switch t.Name {
		case t.Def.Name:
			how = "unchanged"
		case t.Server + cfg.Naming.Separator + t.Def.Name:
			how = "prefixed"
		}
		rows = append(rows, toolName{Exposed: t.Name, Server: t.Server, Tool: t.Def.Name, How: how})
	}
	if *output == "json" {
		enc := audit.NewJSONEncoder(stdout)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []toolName{}
		}
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "EXPOSED\tSERVER\tTOOL\tHOW")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%q\t%s\n", r.Exposed, r.Server, r.Tool, r.How)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return cat.Collisions()
}

func orNone(s string) string {
	if s == "" {
		return "not connected"
	}
	return s
}
