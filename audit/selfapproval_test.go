package audit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

func TestSelfApprovalRefused(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", Options{})
	alice := toolgate.Principal{User: "alice", Auth: toolgate.AuthToken}
	n := 0
	begin := func(id string, p toolgate.Principal) {
		t.Helper()
		n++
		c := testCall(id, n) // each its own call, none another's retry
		c.Principal = p
		if err := s.Begin(ctx, c, testDecision(toolgate.Review)); err != nil {
			t.Fatal(err)
		}
	}
	clicks := func() int {
		t.Helper()
		var n int
		if err := rawDB(t, s.Path()).QueryRow(`SELECT count(*) FROM events WHERE kind = 'click'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	begin("01A", alice)
	cases := []struct {
		name string
		v    toolgate.Verdict
		want string // in the error; "" for none
	}{
		{"the caller on the CLI", toolgate.Verdict{Approved: true, Reviewer: "cli:alice", ReviewerUser: "alice", Channel: toolgate.ChannelCLI}, "alice made this call"},
		{"the caller via elicitation", toolgate.Verdict{Approved: true, Reviewer: "elicitation:x", ReviewerUser: "alice", Channel: toolgate.ChannelElicitation}, "alice made this call"},
		{"the caller, in other case", toolgate.Verdict{Approved: true, Reviewer: "U7", ReviewerUser: "ALICE", Channel: toolgate.ChannelSlack}, "alice made this call"},
		{"an unmapped slack user", toolgate.Verdict{Approved: true, Reviewer: "U999", Channel: toolgate.ChannelSlack}, "cannot tell whether U999 is alice"},
	}
	for i, tc := range cases {
		ok, err := s.SubmitVerdict(ctx, "01A", tc.v)
		if ok || !errors.Is(err, toolgate.ErrSelfApproval) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: ok %v err %v", tc.name, ok, err)
		}
		if n := clicks(); n != i+1 {
			t.Fatalf("%s: %d refusals chained, want %d", tc.name, n, i+1)
		}
	}
	if _, decided, _ := s.ReviewVerdict(ctx, "01A"); decided {
		t.Fatal("a refused self-approval ended the review")
	}
	// Another principal's approval counts.
	if ok, err := s.SubmitVerdict(ctx, "01A", toolgate.Verdict{Approved: true, Reviewer: "U1", ReviewerUser: "bob", Channel: toolgate.ChannelSlack}); !ok || err != nil {
		t.Fatalf("bob's approval: %v %v", ok, err)
	}

	// The caller may deny their own call.
	begin("01B", alice)
	if ok, err := s.SubmitVerdict(ctx, "01B", toolgate.Verdict{Reviewer: "cli:alice", ReviewerUser: "alice", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatalf("self-denial: %v %v", ok, err)
	}
	// A shared token names no person: no one can be told from the caller.
	begin("01C", toolgate.Principal{User: "shared", Auth: toolgate.AuthShared})
	if ok, err := s.SubmitVerdict(ctx, "01C", toolgate.Verdict{Approved: true, Reviewer: "cli:shared", ReviewerUser: "shared", Channel: toolgate.ChannelCLI}); !ok || err != nil {
		t.Fatalf("shared-token call: %v %v", ok, err)
	}
	// Resolve refuses a self-approval it is handed directly.
	begin("01D", alice)
	err := s.Resolve(ctx, "01D", toolgate.Verdict{Approved: true, Reviewer: "elicitation:x", ReviewerUser: "alice", Channel: toolgate.ChannelElicitation})
	if !errors.Is(err, toolgate.ErrSelfApproval) {
		t.Fatalf("Resolve: %v", err)
	}
	if r, _ := s.Get(ctx, "01D"); r.Status != toolgate.StatusRefused || r.Review == nil || r.Review.Approved {
		t.Fatalf("01D after a refused self-approval: %+v", r)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}
