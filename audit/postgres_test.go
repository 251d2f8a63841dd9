package audit

import (
	"os"
	"os/exec"
	"testing"

	"github.com/toolgate/toolgate/audit/pgtest"
)

// envDriver, set to "postgres" in the environment of this package's test
// binary, makes openTest(t, "", ...) open a fresh PostgreSQL schema instead
// of a SQLite file: the store's suite then runs on PostgreSQL.
// TestSuiteOnPostgres sets it for a second run of the binary.
const envDriver = "TOOLGATE_AUDIT_TEST_DRIVER"

func onPostgres() bool { return os.Getenv(envDriver) == "postgres" }

// skipOnPostgres skips a test of SQLite's own mechanics (files, WAL,
// PRAGMAs) in the PostgreSQL run.
func skipOnPostgres(t *testing.T) {
	t.Helper()
	if onPostgres() {
		t.Skip("tests SQLite's file handling")
	}
}

// TestSuiteOnPostgres runs this package's tests again, with every store
// that openTest opens on PostgreSQL.
func TestSuiteOnPostgres(t *testing.T) {
	if onPostgres() {
		t.Skip("already the PostgreSQL run")
	}
	pgtest.Require(t)
	if testing.Short() {
		t.Skip("-short")
	}
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envDriver+"=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the suite on PostgreSQL failed: %v\n%s", err, out)
	}
}
