package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
			for _, want := range []string{tc.want, "added p50 at concurrency 1", "throughput at concurrency 2"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
