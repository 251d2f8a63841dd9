package rules

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

func TestSessionGrantKey(t *testing.T) {
	s, err := Parse("r.yaml", []byte("version: 1\nrules:\n  - name: shell\n    match: 'true'\n    action: review\n    session_grant: 30m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Evaluate(context.Background(), toolgate.Call{Tool: "x"}); d.SessionGrant != 30*time.Minute {
		t.Fatalf("decision session_grant = %v", d.SessionGrant)
	}
	for _, bad := range []string{"action: allow\n    session_grant: 30m", "action: review\n    session_grant: 13h", "action: review\n    session_grant: soon"} {
		_, err := Parse("r.yaml", []byte("version: 1\nrules:\n  - name: x\n    match: 'true'\n    "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "session_grant") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}
