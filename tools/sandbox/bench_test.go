package sandbox

import (
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkCommand runs `sh -c true` directly and in each built-in
// profile, and reports p50 and p99: what a sandbox costs a command.
func BenchmarkCommand(b *testing.B) {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		b.Fatal(err)
	}
	ws := b.TempDir()
	sb, err := New(Options{Bwrap: bwrap, Workspace: ws, Protect: DefaultProtect, Env: []string{"PATH=/usr/bin:/bin"},
		Profiles: []Profile{{Name: None, Unsandboxed: true}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, profile := range []string{None, ReadOnly, WorkspaceWrite} {
		b.Run(profile, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				c, err := sb.Command(b.Context(), profile, ws, []string{"/bin/sh", "-c", "true"})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
