package sandbox_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools/sandbox"
)

// BenchmarkCommand runs `sh -c true` directly and in each built-in
// profile, and reports p50 and p99: what a sandbox costs a command. The
// workspace is empty, so the walk for secret files costs next to nothing;
// BenchmarkSecretWalk measures it.
func BenchmarkCommand(b *testing.B) {
	ws := b.TempDir()
	sb := benchSandbox(b, ws, []sandbox.Profile{{Name: sandbox.None, Unsandboxed: true}})
	for _, profile := range []string{sandbox.None, sandbox.ReadOnly, sandbox.WorkspaceWrite} {
		b.Run(profile, func(b *testing.B) { runLatency(b, sb, profile) })
	}
}

// BenchmarkSecretWalk times the walk that finds the workspace's secret
// files, with the rules' secret class: alone, with no listing of a past
// walk (walk-cold: the first run) and with all of them still good
// (walk-warm: directories that have not changed for a few seconds), and as
// part of a run of `sh -c true` in read-only and (but for the repository)
// workspace-write, warm. On a synthetic tree of 20,000 files in 1,000
// directories with 20 secrets among them (and a node_modules of 20,000
// more, skipped), on the same tree as a git repository with 20 more
// secret-named files committed (git-20k), and on this repository.
func BenchmarkSecretWalk(b *testing.B) {
	synthetic := b.TempDir()
	synthTree(b, synthetic, false)
	withGit := b.TempDir()
	synthTree(b, withGit, true)
	repo, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, ws string }{{"synthetic-20k", synthetic}, {"git-20k", withGit}, {"repo", repo}} {
		sb := benchSandbox(b, tc.ws, nil)
		walk := func(b *testing.B, cold bool) {
			var n int
			for b.Loop() {
				if cold {
					sb.ForgetWalks()
				}
				files, dirs, err := sb.SecretPaths(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				n = len(files) + len(dirs)
			}
			b.ReportMetric(float64(n), "secrets")
		}
		b.Run(tc.name+"/walk-cold", func(b *testing.B) { walk(b, true) })
		sb.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
		b.Run(tc.name+"/walk-warm", func(b *testing.B) { walk(b, false) })
		profiles := []string{sandbox.ReadOnly, sandbox.WorkspaceWrite}
		if tc.ws == repo {
			profiles = profiles[:1] // a writable run would create the protected directories in the checkout
		}
		for _, profile := range profiles {
			b.Run(tc.name+"/run-"+profile, func(b *testing.B) { runLatency(b, sb, profile) })
		}
	}
}

// synthTree fills ws with 20,000 empty files in 1,000 directories, 20 of
// them .env files, and a node_modules of 20,000 more. With git, ws is a
// repository, the .env files hold a line each (never added), and 20 more
// directories hold a server.key, committed.
func synthTree(b *testing.B, ws string, git bool) {
	b.Helper()
	var keys []string
	for i := range 1000 {
		dir := filepath.Join(ws, fmt.Sprintf("pkg%02d", i/25), fmt.Sprintf("mod%02d", i%25))
		nm := filepath.Join(ws, "node_modules", fmt.Sprintf("dep%03d", i))
		for _, d := range []string{dir, nm} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			for j := range 20 {
				name, content := fmt.Sprintf("file%02d.go", j), ""
				switch {
				case j == 0 && i%50 == 0:
					name = ".env"
					if git {
						content = fmt.Sprintf("TOKEN=%d\n", i)
					}
				case j == 0 && i%50 == 25 && git && d == dir:
					name, content = "server.key", fmt.Sprintf("KEY %d\n", i)
					keys = append(keys, filepath.Join(d, name))
				}
				if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if !git {
		return
	}
	for _, args := range [][]string{{"init", "-q"}, append([]string{"add", "--"}, keys...),
		{"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "keys"}} {
		if out, err := exec.Command("git", append([]string{"-C", ws}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

func benchSandbox(b *testing.B, ws string, profiles []sandbox.Profile) *sandbox.Sandbox {
	b.Helper()
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		b.Fatal(err)
	}
	ws, err = filepath.EvalSymlinks(ws)
	if err != nil {
		b.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Options{Bwrap: bwrap, Workspace: ws, Protect: sandbox.DefaultProtect,
		Env: []string{"PATH=/usr/bin:/bin"}, Secret: rules.WorkspaceSecret, Profiles: profiles})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sb.Close)
	return sb
}

// runLatency runs `sh -c true` in profile and reports p50 and p99.
func runLatency(b *testing.B, sb *sandbox.Sandbox, profile string) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		c, err := sb.Command(b.Context(), profile, sb.Workspace(), []string{"/bin/sh", "-c", "true"})
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
}
