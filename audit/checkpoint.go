package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// checkpointDomain prefixes every signed checkpoint, so that a signature
// made by the checkpoint key can never be taken for one over anything else.
const checkpointDomain = "toolgate-checkpoint-v1\n"

// Checkpoint is a signed statement of the chain head: "at At, the log's
// event Seq had hash Head". A copy kept outside the log (published) lets
// VerifyCheckpoints prove the log was not rewritten since: rewriting an
// event at or before Seq changes Head, and only the key's holder can sign
// a new one. The hash chain alone cannot show this, since whoever can
// write the DB can recompute every hash.
type Checkpoint struct {
	// Seq and Head are the last event's sequence number and hash.
	Seq  int64  `json:"seq"`
	Head string `json:"head"`
	// Events and Calls are how many events and call rows the log held.
	Events int64 `json:"events"`
	Calls  int64 `json:"calls"`
	// At is when the checkpoint was taken (UTC).
	At time.Time `json:"at"`
	// Prev is the Hash of the previous checkpoint ("" for the first), so a
	// checkpoint dropped from a published list is noticed.
	Prev string `json:"prev"`
	// Key is the signing key's id (KeyID of its public key).
	Key string `json:"key"`
	// Sig is the Ed25519 signature of Payload, base64.
	Sig string `json:"sig,omitempty"`
}

// Payload is what the signature covers: every field but Sig.
func (c *Checkpoint) Payload() []byte {
	u := *c
	u.Sig = ""
	u.At = u.At.UTC()
	b, _ := json.Marshal(&u) // a struct of strings, ints and a time: cannot fail
	return append([]byte(checkpointDomain), b...)
}

// Hash identifies the checkpoint (a later one's Prev).
func (c *Checkpoint) Hash() string {
	h := sha256.Sum256(c.Payload())
	return hex.EncodeToString(h[:])
}

// Verify reports whether c carries pub's valid signature.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	if c.Key != KeyID(pub) {
		return fmt.Errorf("signed by key %s, not %s", c.Key, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(pub, c.Payload(), sig) {
		return errors.New("signature does not verify (forged or altered)")
	}
	return nil
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Checkpoint signs the current chain head with key and stores the
// checkpoint in the log's checkpoints table (which proves nothing by
// itself: publish it elsewhere). It runs as one write, so the head, the
// counts and the previous checkpoint are of one state of the log.
func (s *Store) Checkpoint(ctx context.Context, key ed25519.PrivateKey) (*Checkpoint, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("audit: checkpoint: not an Ed25519 key")
	}
	var cp *Checkpoint
	err := s.write(ctx, func(w *wtx) error {
		c := &Checkpoint{At: s.o.Now().UTC(), Key: KeyID(pub), Head: hashHex(w.prev)}
		q := w.s.conn
		if err := q.QueryRowContext(w.ctx, `SELECT coalesce(max(seq), 0), count(*) FROM events`).Scan(&c.Seq, &c.Events); err != nil {
			return fmt.Errorf("audit: checkpoint: %w", err)
		}
		if err := q.QueryRowContext(w.ctx, `SELECT count(*) FROM calls`).Scan(&c.Calls); err != nil {
			return fmt.Errorf("audit: checkpoint: %w", err)
		}
		err := q.QueryRowContext(w.ctx, `SELECT hash FROM checkpoints ORDER BY id DESC LIMIT 1`).Scan(&c.Prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: checkpoint: %w", err)
		}
		c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.Payload()))
		line, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("audit: checkpoint: %w", err)
		}
		if _, err := q.ExecContext(w.ctx, `INSERT INTO checkpoints (at, head_seq, body, hash) VALUES (?,?,?,?)`,
			c.At.UnixNano(), c.Seq, string(line), c.Hash()); err != nil {
			return fmt.Errorf("audit: checkpoint: %w", err)
		}
		cp = c
		return nil
	})
	return cp, err
}

// Checkpoints returns the checkpoints stored in the log, oldest first.
func (s *Store) Checkpoints(ctx context.Context) ([]*Checkpoint, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT body FROM checkpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoints: %w", err)
	}
	defer rows.Close()
	var out []*Checkpoint
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("audit: checkpoints: %w", err)
		}
		var c Checkpoint
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, fmt.Errorf("audit: checkpoints: stored checkpoint: %w", err)
		}
		out = append(out, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: checkpoints: %w", err)
	}
	return out, nil
}

// ReadCheckpoints parses published checkpoints, one JSON object a line
// (blank lines skipped).
func ReadCheckpoints(r io.Reader) ([]*Checkpoint, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out []*Checkpoint
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("audit: checkpoint line %d: %w", n, err)
		}
		out = append(out, &c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	return out, nil
}

// CheckpointReport is the result of VerifyCheckpoints.
type CheckpointReport struct {
	// Checkpoints is how many were checked; Latest the newest valid one.
	Checkpoints int         `json:"checkpoints"`
	Latest      *Checkpoint `json:"latest,omitempty"`
	// Problems are the checkpoints' problems (Seq is the checkpoint's
	// head seq); the log's own are in Log.
	Problems []Problem    `json:"problems,omitempty"`
	Log      VerifyReport `json:"log"`
	// Archives is the check of the archives and the live log together,
	// when archives were given.
	Archives *ArchiveReport `json:"archives,omitempty"`
}

// OK reports whether every checkpoint and the log (and archives) verified.
func (r *CheckpointReport) OK() bool {
	return len(r.Problems) == 0 && r.Log.OK() && (r.Archives == nil || r.Archives.OK())
}

// VerifyCheckpoints checks that the log is the one the checkpoints signed:
// each checkpoint carries pub's signature and links to the one before it
// (Prev), the log still holds, at each checkpoint's Seq, the event whose
// hash was signed (so nothing at or before it was rewritten, even with
// the whole chain recomputed), the log reaches every Seq (no truncation),
// and the whole chain and every row verify (Verify). A checkpoint that
// fails its signature is reported and otherwise ignored.
//
// A checkpoint of an event since moved to an archive is checked against
// the archive that holds it: pass the archives (then the log's check is
// VerifyArchives', in Archives, and Log is its live part). Without them
// such a checkpoint is reported as unchecked, a problem: the live log
// alone cannot show that the archived events are the ones signed.
func (s *Store) VerifyCheckpoints(ctx context.Context, cps []*Checkpoint, pub ed25519.PublicKey, archives ...*Archived) (CheckpointReport, error) {
	var rep CheckpointReport
	var last int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&last); err != nil {
		return rep, fmt.Errorf("audit: verify checkpoints: %w", err)
	}
	base, err := chainBase(ctx, s.rdb)
	if err != nil {
		return rep, err
	}
	last = max(last, base.Seq)
	var prev *Checkpoint
	for i, c := range cps {
		rep.Checkpoints++
		p := func(format string, args ...any) {
			if len(rep.Problems) < maxProblems {
				rep.Problems = append(rep.Problems, Problem{Seq: c.Seq, What: fmt.Sprintf("checkpoint %d (%s): ", i+1, c.At.UTC().Format(time.RFC3339)) + fmt.Sprintf(format, args...)})
			}
		}
		if err := c.Verify(pub); err != nil {
			p("%v", err)
			continue
		}
		if prev != nil && c.Prev != prev.Hash() {
			p("does not follow the checkpoint before it (one removed, reordered or from another log)")
		}
		prev = c
		rep.Latest = c
		if c.Seq == 0 {
			continue // signed an empty log
		}
		if c.Seq > last {
			p("signed event %d, but the log ends at event %d (log truncated)", c.Seq, last)
			continue
		}
		var hash string
		var err error
		if c.Seq <= base.Seq {
			var found bool
			hash, found, err = archivedHash(ctx, archives, c.Seq)
			switch {
			case err != nil:
				return rep, err
			case !found && len(archives) == 0:
				p("signed event %d, which was moved to an archive: pass the archives (--archive) to check it", c.Seq)
				continue
			case !found:
				p("signed event %d, which was moved to an archive, and none of the archives given holds it", c.Seq)
				continue
			}
		} else {
			err = s.rdb.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, c.Seq).Scan(hexScan{&hash})
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			p("signed event %d, which the log no longer has (events removed)", c.Seq)
		case err != nil:
			return rep, fmt.Errorf("audit: verify checkpoints: %w", err)
		case hash != c.Head:
			p("event %d hashes to %.12s… but the checkpoint signed %.12s… (log rewritten since)", c.Seq, hash, c.Head)
		}
	}
	if len(archives) > 0 {
		ar, err := VerifyArchives(ctx, s, archives)
		rep.Log, rep.Archives = ar.Live, &ar
		return rep, err
	}
	rep.Log, err = s.Verify(ctx)
	return rep, err
}

// GenerateKey writes a new Ed25519 key pair: the private key to path
// (PKCS #8 PEM, mode 0600, never overwriting) and the public key to
// path+".pub" (PKIX PEM). It returns the public key.
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit: keygen: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("audit: keygen: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit: keygen: %w", err)
	}
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("audit: keygen: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: keygen: write %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads an Ed25519 private key written by GenerateKey. A
// key file others can read is refused: whoever reads it can sign
// checkpoints of a rewritten log.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: checkpoint key %s has mode %v: others can read it (chmod 600 it)", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: checkpoint key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: checkpoint key %s: not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadPublicKey reads an Ed25519 public key: PKIX PEM (what GenerateKey
// writes) or the raw 32 bytes in base64 (what keygen prints).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	if b, _ := pem.Decode(data); b != nil {
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: public key %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit: public key %s: not an Ed25519 key", path)
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: public key %s: neither PEM nor a base64 Ed25519 key", path)
	}
	return ed25519.PublicKey(raw), nil
}
