package audit

import (
	"context"
	"testing"
)

// fastClean runs the fast pass alone and reports whether it found the log
// clean, and the detailed pass's row problems.
func fastClean(t testing.TB, s *Store) (bool, []Problem) {
	t.Helper()
	ctx := context.Background()
	evTx, rowTx, err := s.snapshotPair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer evTx.Rollback()
	if rowTx != nil {
		defer rowTx.Rollback()
	}
	var fast VerifyReport
	clean, err := verifyFast(ctx, evTx, rowTx, &fast)
	if err != nil {
		t.Fatal(err)
	}
	var detailed VerifyReport
	if err := verifyRows(ctx, evTx, &detailed); err != nil {
		t.Fatal(err)
	}
	return clean, detailed.Problems
}

func TestVerifyFastClean(t *testing.T) {
	for name, s := range map[string]*Store{"fixture": importFixture(t), "synthetic": importSynth(t, 3000)} {
		clean, probs := fastClean(t, s)
		if !clean || len(probs) > 0 {
			t.Errorf("%s: fast pass clean = %v, detailed problems %v", name, clean, probs)
		}
	}
}
