package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate"
)

// rewriteChain is the attacker who can write the DB: it runs edit (SQL that
// changes event bodies and rows at will), then recomputes every event's
// prev_hash and hash from the start, so that the chain is whole again and
// plain Verify passes.
func rewriteChain(t testing.TB, path, edit string) {
	t.Helper()
	db := rawDB(t, path)
	if _, err := db.Exec(`DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;` + edit); err != nil {
		t.Fatalf("attacker's edit: %v", err)
	}
	rehashChain(t, db)
}

func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ckpt.key")
	if _, err := GenerateKey(path); err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// seedCalls records n allowed, finished calls with ids 01C<i>.
func seedCalls(t testing.TB, s *Store, from, n int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("01C%03d", i)
		if err := s.Begin(ctx, testCall(id, i), testDecision(toolgate.Deny)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckpointDetectsRewrite(t *testing.T) {
	ctx := context.Background()
	pub, priv := testKey(t)
	setup := func(t *testing.T) (*Store, string, []*Checkpoint) {
		path := filepath.Join(t.TempDir(), "a.db")
		s := openTest(t, path, Options{})
		seedCalls(t, s, 0, 4)
		c1, err := s.Checkpoint(ctx, priv)
		if err != nil {
			t.Fatal(err)
		}
		seedCalls(t, s, 4, 3)
		c2, err := s.Checkpoint(ctx, priv)
		if err != nil {
			t.Fatal(err)
		}
		// A context event first.
		if c1.Seq != 5 || c1.Events != 5 || c1.Calls != 4 || c2.Seq != 8 || c2.Calls != 7 || c2.Prev != c1.Hash() || c1.Prev != "" {
			t.Fatalf("checkpoints = %+v, %+v", c1, c2)
		}
		seedCalls(t, s, 7, 2) // after the last checkpoint
		rep, err := s.VerifyCheckpoints(ctx, []*Checkpoint{c1, c2}, pub)
		if err != nil || !rep.OK() || rep.Checkpoints != 2 || rep.Latest.Hash() != c2.Hash() || rep.Log.Events != 10 {
			t.Fatalf("clean VerifyCheckpoints = %+v, %v", rep, err)
		}
		// What the DB stored is what was signed.
		stored, err := s.Checkpoints(ctx)
		if err != nil || len(stored) != 2 || stored[1].Hash() != c2.Hash() || stored[1].Verify(pub) != nil {
			t.Fatalf("stored checkpoints = %v, %v", stored, err)
		}
		return s, path, []*Checkpoint{c1, c2}
	}
	problem := func(t *testing.T, rep CheckpointReport, want string) {
		t.Helper()
		if rep.OK() {
			t.Fatalf("VerifyCheckpoints passed; want a problem containing %q", want)
		}
		var all []string
		for _, p := range rep.Problems {
			all = append(all, p.What)
		}
		if !strings.Contains(strings.Join(all, "\n"), want) {
			t.Fatalf("problems = %q (log: %v); want one containing %q", all, rep.Log.Problems, want)
		}
	}

	t.Run("whole chain rewritten", func(t *testing.T) {
		s, path, cps := setup(t)
		// The rule that decided call 01C001 is renamed, in its event and
		// its row; every hash after it is recomputed.
		rewriteChain(t, path, `
UPDATE events SET body = replace(body, '"rule":"r-deny"', '"rule":"r-harmless"') WHERE call_id = '01C001';
INSERT INTO names (name) VALUES ('r-harmless');
UPDATE calls SET rule_ref = (SELECT id FROM names WHERE name = 'r-harmless') WHERE id = '01C001';`)
		plain, err := s.Verify(ctx)
		if err != nil || !plain.OK() {
			t.Fatalf("the attacker's rewrite should pass plain Verify: %+v, %v", plain, err)
		}
		rep, err := s.VerifyCheckpoints(ctx, cps, pub)
		if err != nil {
			t.Fatal(err)
		}
		problem(t, rep, "log rewritten since")
		if len(rep.Problems) != 2 {
			t.Fatalf("both checkpoints cover event 2: problems = %v", rep.Problems)
		}
	})
	t.Run("rewrite after the last checkpoint is not covered", func(t *testing.T) {
		// The limit of the proof: events after the newest checkpoint are
		// only as safe as the chain. Publishing often narrows the window.
		s, path, cps := setup(t)
		rewriteChain(t, path, `UPDATE events SET body = replace(body, '"rule":"r-deny"', '"rule":"r-x"') WHERE call_id = '01C008';
INSERT INTO names (name) VALUES ('r-x');
UPDATE calls SET rule_ref = (SELECT id FROM names WHERE name = 'r-x') WHERE id = '01C008';`)
		rep, err := s.VerifyCheckpoints(ctx, cps, pub)
		if err != nil || !rep.OK() {
			t.Fatalf("rewrite past the last checkpoint: %+v, %v", rep, err)
		}
	})
	t.Run("truncated log", func(t *testing.T) {
		s, path, cps := setup(t)
		rewriteChain(t, path, `DELETE FROM events WHERE seq > 5; DELETE FROM calls WHERE seq > 5;`)
		if plain, err := s.Verify(ctx); err != nil || !plain.OK() {
			t.Fatalf("truncation should pass plain Verify: %+v, %v", plain, err)
		}
		rep, err := s.VerifyCheckpoints(ctx, cps, pub)
		if err != nil {
			t.Fatal(err)
		}
		problem(t, rep, "log truncated")
	})
	t.Run("forged checkpoint", func(t *testing.T) {
		s, path, cps := setup(t)
		rewriteChain(t, path, `UPDATE events SET body = replace(body, '"rule":"r-deny"', '"rule":"r-x"') WHERE call_id = '01C001';
INSERT INTO names (name) VALUES ('r-x');
UPDATE calls SET rule_ref = (SELECT id FROM names WHERE name = 'r-x') WHERE id = '01C001';`)
		// The attacker edits the published checkpoints to the new heads.
		var head2, head7 string
		db := rawDB(t, path)
		db.QueryRow(`SELECT hash FROM events WHERE seq = 4`).Scan(&head2)
		db.QueryRow(`SELECT hash FROM events WHERE seq = 7`).Scan(&head7)
		f1, f2 := *cps[0], *cps[1]
		f1.Head, f2.Head = head2, head7
		f2.Prev = f1.Hash()
		rep, err := s.VerifyCheckpoints(ctx, []*Checkpoint{&f1, &f2}, pub)
		if err != nil {
			t.Fatal(err)
		}
		problem(t, rep, "signature does not verify")
		// Signed with the attacker's own key, under the right key id.
		_, other := testKey(t)
		f1.Sig = signWith(other, &f1)
		rep, _ = s.VerifyCheckpoints(ctx, []*Checkpoint{&f1}, pub)
		problem(t, rep, "signature does not verify")
	})
	t.Run("checkpoint dropped from the list", func(t *testing.T) {
		s, _, cps := setup(t)
		c3, err := s.Checkpoint(ctx, priv)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.VerifyCheckpoints(ctx, []*Checkpoint{cps[0], c3}, pub)
		if err != nil {
			t.Fatal(err)
		}
		problem(t, rep, "does not follow")
	})
}

func signWith(k ed25519.PrivateKey, c *Checkpoint) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k, c.Payload()))
}

func TestReadCheckpointsAndKeys(t *testing.T) {
	pub, priv := testKey(t)
	s := openTest(t, "", Options{})
	c, err := s.Checkpoint(context.Background(), priv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Seq != 0 || c.Head != "" {
		t.Fatalf("checkpoint of an empty log = %+v", c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	line := string(b) + "\n\n"
	got, err := ReadCheckpoints(strings.NewReader(line))
	if err != nil || len(got) != 1 || got[0].Verify(pub) != nil {
		t.Fatalf("ReadCheckpoints = %v, %v", got, err)
	}
	if _, err := ReadCheckpoints(strings.NewReader("{not json\n")); err == nil {
		t.Fatal("bad line accepted")
	}
	path := filepath.Join(t.TempDir(), "k")
	if _, err := GenerateKey(path); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(path); err == nil {
		t.Fatal("GenerateKey overwrote a key")
	}
}
