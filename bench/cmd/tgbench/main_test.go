package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the relay side, which tgbench
// starts by re-executing itself (os.Executable is this binary here).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == relayFlag {
		if err := relayMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "tgbench relay:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunSmoke runs a tiny benchmark against each upstream and checks the
// report names it.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds toolgate and starts processes")
	}
	for _, tc := range []struct{ server, want string }{
		{"go", "echo tool of the Go test upstream"},
		{"everything", "echo tool of the npm reference server @modelcontextprotocol/server-everything"},
	} {
		t.Run(tc.server, func(t *testing.T) {
			if tc.server == "everything" {
				if _, err := os.Stat(filepath.Join("..", "..", "..", "e2e", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")); err != nil {
					t.Skip("server-everything is not installed (cd e2e && npm ci)")
				}
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"-server", tc.server, "-c", "1,2", "-n", "20", "-warmup", "5", "-rounds", "1", "-rules", "default"}, &out, &errb)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out.String(), errb.String())
			}
			for _, want := range []string{tc.want, "added p50 at concurrency 1", "throughput at concurrency 2",
				"floor: a byte relay adds", "floor: a byte relay reaches"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
