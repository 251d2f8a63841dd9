package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLargeAnswerFailsItsCall: a file larger than the default message
// limit (8 MiB), read through server-filesystem (the TypeScript SDK, which
// writes a response's id after its result), fails that one call with a
// message the agent can act on, instead of being buffered whole; the same
// server answers the next call.
func TestLargeAnswerFailsItsCall(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, allowAll)
	line := strings.Repeat("0123456789", 10) + "\n"
	mustWrite(t, filepath.Join(fx.fsDir, "big.log"), strings.Repeat(line, (9<<20)/len(line)), 0o644)
	c := goStdio(t, fx)

	text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": filepath.Join(fx.fsDir, "big.log")})
	if !isErr || !strings.Contains(text, "max_message_bytes") || !strings.Contains(text, "ask for less") {
		t.Errorf("reading a 9 MiB file: isError %v, %d bytes: %.300q", isErr, len(text), text)
	}
	if text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": filepath.Join(fx.fsDir, "note.txt")}); isErr || text != fsText {
		t.Errorf("the next read: %q (isError %v)", text, isErr)
	}
}
