package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/toolgate/toolgate/toolgatetest"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConformance runs the MCP conformance suite's server scenarios
// (@modelcontextprotocol/conformance, its default "active" suite) against
// the suite's reference server, testdata/conformance/everything-server.mjs,
// three ways:
//
//   - direct: the fixture itself, over streamable HTTP;
//   - stdio upstream: toolgate --http with the fixture as its stdio upstream;
//   - http upstream: toolgate --http with the fixture, over HTTP, as its
//     upstream.
//
// The suite is an HTTP client that takes a server URL, so toolgate is always
// tested as an HTTP server here; toolgate serving stdio to an agent cannot
// be handed to it (the stdio upstream case covers the fixture's side of
// stdio). The contract: every scenario the fixture passes directly passes
// through toolgate, both ways. Counts are logged.
func TestConformance(t *testing.T) {
	t.Parallel()
	direct := startConformanceFixture(t)
	viaHTTP := startConformanceFixture(t)

	stdioGW := startHTTP(t, conformanceGateway(t, fmt.Sprintf("command: %q\n    args: [%q, --stdio]",
		harness.node, filepath.Join(harness.dir, "testdata", "conformance", "everything-server.mjs"))), "")
	httpGW := startHTTP(t, conformanceGateway(t, fmt.Sprintf("url: %s", viaHTTP)), "")

	// The three runs are independent; run together they take about as long
	// as the slowest.
	targets := []struct{ name, url string }{
		{"direct", direct},
		{"toolgate, stdio upstream", stdioGW.url},
		{"toolgate, http upstream", httpGW.url},
	}
	runs := make([]conformanceRun, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tc := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = runConformance(tc.url)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("conformance %s: %v", targets[i].name, err)
		}
	}

	want := runs[0]
	passedDirect := want.passed()
	if len(passedDirect) == 0 {
		t.Fatalf("the fixture passes no scenario directly; results:\n%s", want.report())
	}
	t.Logf("conformance direct: %d/%d scenarios pass", len(passedDirect), len(want))
	for i, tc := range targets[1:] {
		got := runs[i+1]
		t.Logf("conformance %s: %d/%d scenarios pass", tc.name, len(got.passed()), len(got))
		var lost []string
		for _, sc := range passedDirect {
			if r, ok := got[sc]; !ok || !r.pass() {
				lost = append(lost, sc)
			}
		}
		if len(lost) > 0 {
			t.Errorf("%s: %d of the %d scenarios the fixture passes directly fail:\n%s",
				tc.name, len(lost), len(passedDirect), got.report(lost...))
		}
	}
}

// startConformanceFixture starts the vendored reference server on a free
// loopback port and returns its MCP URL.
func startConformanceFixture(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(harness.node, filepath.Join(harness.dir, "testdata", "conformance", "everything-server.mjs"))
	cmd.Dir = harness.dir
	cmd.Env = append(os.Environ(), "PORT=0")
	out := &toolgatetest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, "conformance everything-server", out)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := regexp.MustCompile(`MCP endpoint: (http://127\.0\.0\.1:\d+/mcp)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := endpoint.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("conformance everything-server did not report its endpoint within 30s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// conformanceGateway writes a toolgate config whose only upstream is the
// fixture ("everything", given by the YAML of its server entry), exposed
// under its own names (naming.prefix false: the suite calls the fixture's
// tools and prompts by name), and whose rules allow everything: the suite
// tests the protocol, not the policy.
func conformanceGateway(t *testing.T, server string) *fixture {
	t.Helper()
	dir := realTempDir(t)
	rules := filepath.Join(dir, "rules.yaml")
	mustWrite(t, rules, allowAll, 0o644)
	fx := &fixture{dir: dir, config: filepath.Join(dir, "toolgate.yaml")}
	mustWrite(t, fx.config, fmt.Sprintf(`start_wait: 120s
servers:
  everything:
    %s
naming: {prefix: false}
workspace: {enabled: false}
rules: {file: %q}
audit: {path: %q}
`, server, rules, filepath.Join(dir, "audit.db")), 0o644)
	return fx
}

// scenarioResult is one scenario's checks, as the suite saved them.
type scenarioResult struct {
	Checks []struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		ErrorMessage string `json:"errorMessage"`
	}
}

// pass is the suite's own verdict (its tier-check): no check failed, and at
// least one succeeded.
func (r scenarioResult) pass() bool {
	ok := false
	for _, c := range r.Checks {
		switch c.Status {
		case "FAILURE":
			return false
		case "SUCCESS":
			ok = true
		}
	}
	return ok
}

// conformanceRun maps scenario names to their results.
type conformanceRun map[string]scenarioResult

func (run conformanceRun) passed() []string {
	var p []string
	for name, r := range run {
		if r.pass() {
			p = append(p, name)
		}
	}
	slices.Sort(p)
	return p
}

// report describes the named scenarios (all when none are named): verdict
// and the messages of failed checks.
func (run conformanceRun) report(names ...string) string {
	if len(names) == 0 {
		for n := range run {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		r, ok := run[n]
		switch {
		case !ok:
			fmt.Fprintf(&b, "  %s: no result\n", n)
		case r.pass():
			fmt.Fprintf(&b, "  %s: pass\n", n)
		default:
			fmt.Fprintf(&b, "  %s: FAIL\n", n)
			for _, c := range r.Checks {
				if c.Status == "FAILURE" {
					fmt.Fprintf(&b, "    %s: %s\n", c.ID, c.ErrorMessage)
				}
			}
		}
	}
	return b.String()
}

// resultDir matches the directory the suite saves a scenario's checks in:
// server-<scenario>-<ISO time with - for :>.
var resultDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)

// runConformance runs the suite's server scenarios against url and reads
// their results. The suite exits non-zero when a scenario fails, so its
// exit status is not the verdict; a run that saved no result is an error.
func runConformance(url string) (conformanceRun, error) {
	out, err := os.MkdirTemp("", "toolgate-conformance-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	cmd := exec.Command(harness.node, filepath.Join(harness.dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"),
		"server", "--url", url, "--output-dir", out)
	cmd.Dir = out
	// On Node 20 the suite needs fs.globSync (see the preload's header); on
	// Node 22+ the preload does nothing.
	preload := filepath.Join(harness.dir, "testdata", "node20", "globsync-preload.mjs")
	cmd.Env = append(os.Environ(), "NODE_OPTIONS="+strings.TrimSpace(os.Getenv("NODE_OPTIONS")+` --import="`+preload+`"`))
	log, runErr := cmd.CombinedOutput()
	run := conformanceRun{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "checks.json" {
			return err
		}
		m := resultDir.FindStringSubmatch(filepath.Base(filepath.Dir(p)))
		if m == nil {
			return fmt.Errorf("unexpected result directory %s", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r scenarioResult
		if err := json.Unmarshal(b, &r.Checks); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		run[m[1]] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	if len(run) == 0 {
		return nil, fmt.Errorf("the suite saved no result (%v):\n%s", runErr, log)
	}
	return run, nil
}
