package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// TestRunSmoke runs a tiny benchmark of the three sides on each transport
// and upstream, and checks the report has a row for each side and level
// and compares toolgate with the plain proxy.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds toolgate and starts processes")
	}
	for _, tc := range []struct{ server, transport, want string }{
		{"go", "stdio", "echo tool of the Go test upstream"},
		{"go", "http", "echo tool of the Go test upstream"},
		{"everything", "stdio", "echo tool of the npm reference server @modelcontextprotocol/server-everything"},
	} {
		t.Run(tc.server+"/"+tc.transport, func(t *testing.T) {
			if tc.server == "everything" {
				if _, err := os.Stat(filepath.Join("..", "..", "..", "e2e", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")); err != nil {
					t.Skip("server-everything is not installed (cd e2e && npm ci)")
				}
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"-server", tc.server, "-transport", tc.transport,
				"-c", "1,2", "-n", "20", "-warmup", "5", "-rounds", "2"}, &out, &errb)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out.String(), errb.String())
			}
			report := out.String()
			wants := []string{regexp.QuoteMeta(tc.want), "toolgate against the plain proxy:",
				`c=1: p50 \d+µs vs \d+µs`, `c=2: \d+ vs \d+ calls/s`, `peak RSS [0-9.]+ MiB vs [0-9.]+ MiB`}
			for _, side := range []string{"direct", "plain", "toolgate"} {
				for _, c := range []string{"1", "2"} {
					// calls, p50, p99, calls/s, CPU/call, peak RSS, anon + file
					wants = append(wants, side+` +`+c+` +20 +\d+µs +\d+µs +\d+ +\d+µs +[0-9.]+ MiB +[0-9]+\.[0-9] \+ [0-9]+\.[0-9]\b`)
				}
			}
			for _, want := range wants {
				if !regexp.MustCompile(want).MatchString(report) {
					t.Errorf("report lacks %q:\n%s", want, report)
				}
			}
		})
	}
}

// TestProcStats reads this process's CPU time and memory the way tgbench
// reads a side's.
func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	before, err := procCPU(pid)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	buf := make([]byte, 64<<20)
	for i := range buf { // touch it, and spend CPU time
		buf[i] = byte(i)
	}
	after, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before {
		t.Errorf("CPU time went back: %v then %v", before, after)
	}
	m, err := procMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.peak < int64(len(buf)) || m.anon < int64(len(buf)) {
		t.Errorf("peak RSS %d bytes, anonymous %d: less than the %d just touched", m.peak, m.anon, len(buf))
	}
	if m.file <= 0 || m.peak < m.anon+m.file {
		t.Errorf("file-backed RSS %d bytes (this test's executable runs from a file), peak %d below anonymous %d + file %d", m.file, m.peak, m.anon, m.file)
	}
	runtime.KeepAlive(buf)
}
