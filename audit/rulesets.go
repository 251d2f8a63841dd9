package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Rule sets in the audit log. Every rule set a server loads (at start and
// on each hot reload) is kept with its source in the rulesets table, once
// per version; each load, and each rollback an admin asks for, is a
// chained event (kinds rules_load and rules_rollback, call_id
// "rules:VERSION") that carries the source's sha256, so Verify catches a
// stored source that was altered, and the history of what was in force is
// as tamper-evident as the calls.

// Event kinds of rule-set loads and rollbacks (standalone: no calls row).
const (
	kindRulesLoad     = "rules_load"
	kindRulesRollback = "rules_rollback"
)

// Errors of rule-set lookups.
var (
	// ErrNoRuleset: no stored rule set has that version.
	ErrNoRuleset = errors.New("audit: no such rule set")
	// ErrAmbiguous: a version prefix names more than one stored rule set.
	ErrAmbiguous = errors.New("audit: ambiguous rule-set version")
)

// RulesetLoad is a rule set a server put in force.
type RulesetLoad struct {
	// Version is the set's content hash as rules.Set.Version gives it
	// ("sha256:" and 12 hex digits).
	Version string
	Label   string
	// File is the rules file it came from ("@default" for the embedded pack).
	File   string
	Source []byte
}

// RulesetRollback is an admin's rollback of a rules file to a stored version.
type RulesetRollback struct {
	// Version is the version written back.
	Version string
	// File is the rules file written.
	File string
	// From is the version of the file's content it replaced ("" if unknown).
	From string
	// By is who asked ("cli:" and the OS account).
	By string
}

// rulesetEvent is the chained body of a load or a rollback.
type rulesetEvent struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	At      int64  `json:"at"`
	Version string `json:"version"`
	Label   string `json:"label,omitempty"`
	// SHA256 is the full hex sha256 of the version's source.
	SHA256 string `json:"sha256"`
	File   string `json:"file,omitempty"`
	// Owner is the loading server's review owner (Options.Owner).
	Owner string `json:"owner,omitempty"`
	From  string `json:"from,omitempty"`
	By    string `json:"by,omitempty"`
}

func rulesetEventID(version string) string { return "rules:" + version }

// RulesetVersion is the version rules.Set.Version gives a source: its
// sha256 as "sha256:" and the first 12 hex digits.
func RulesetVersion(source []byte) string {
	sum := sha256.Sum256(source)
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

func sourceSHA(source []byte) string {
	sum := sha256.Sum256(source)
	return hex.EncodeToString(sum[:])
}

// RecordRulesetLoad stores l's source (once per version) and chains its
// load by this store's owner. A source whose version does not match its
// content is refused, so a rollback can trust what it finds.
func (s *Store) RecordRulesetLoad(ctx context.Context, l RulesetLoad) error {
	if got := RulesetVersion(l.Source); got != l.Version {
		return fmt.Errorf("audit: rule set %s: its source hashes to %s", l.Version, got)
	}
	at := utc(s.o.Now())
	sha := sourceSHA(l.Source)
	return s.write(ctx, func(w *wtx) error {
		var stored string
		err := w.s.conn.QueryRowContext(w.ctx, `SELECT sha256 FROM rulesets WHERE version = ?`, l.Version).Scan(&stored)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO rulesets (version, label, sha256, source, first_loaded_at) VALUES (?,?,?,?,?)`,
				l.Version, l.Label, sha, l.Source, at.UnixNano()); err != nil {
				return fmt.Errorf("audit: store rule set %s: %w", l.Version, err)
			}
		case err != nil:
			return fmt.Errorf("audit: read rule set %s: %w", l.Version, err)
		case stored != sha:
			return fmt.Errorf("audit: rule set %s: a different source with the same version is stored (sha256 %.16s…, this one %.16s…)", l.Version, stored, sha)
		}
		return w.appendRulesetEvent(&rulesetEvent{Kind: kindRulesLoad, Version: l.Version, Label: l.Label, SHA256: sha, File: l.File, Owner: w.s.o.Owner}, at)
	})
}

// RecordRulesetRollback chains an admin's rollback of a rules file to a
// stored version.
func (s *Store) RecordRulesetRollback(ctx context.Context, r RulesetRollback) error {
	at := utc(s.o.Now())
	return s.write(ctx, func(w *wtx) error {
		var label, sha string
		err := w.s.conn.QueryRowContext(w.ctx, `SELECT label, sha256 FROM rulesets WHERE version = ?`, r.Version).Scan(&label, &sha)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNoRuleset, r.Version)
		}
		if err != nil {
			return fmt.Errorf("audit: read rule set %s: %w", r.Version, err)
		}
		return w.appendRulesetEvent(&rulesetEvent{Kind: kindRulesRollback, Version: r.Version, Label: label, SHA256: sha, File: r.File, From: r.From, By: r.By}, at)
	})
}

func (w *wtx) appendRulesetEvent(e *rulesetEvent, at time.Time) error {
	e.ID, e.At = rulesetEventID(e.Version), at.UnixNano()
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode %s event: %w", e.Kind, err)
	}
	return w.appendBody(e.ID, e.Kind, e.At, body)
}

// Ruleset is a stored rule set.
type Ruleset struct {
	Version       string    `json:"version"`
	Label         string    `json:"label,omitempty"`
	SHA256        string    `json:"sha256"`
	Source        []byte    `json:"-"`
	FirstLoadedAt time.Time `json:"first_loaded_at"`
}

// Ruleset returns the stored rule set whose version is, or starts with,
// version ("sha256:" may be left out). No match is ErrNoRuleset; a prefix
// of several is ErrAmbiguous.
func (s *Store) Ruleset(ctx context.Context, version string) (*Ruleset, error) {
	v := strings.TrimSpace(version)
	if !strings.HasPrefix(v, "sha256:") {
		v = "sha256:" + v
	}
	if len(v) <= len("sha256:") || strings.ContainsAny(v, "%_") {
		return nil, fmt.Errorf("%w: %q", ErrNoRuleset, version)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT version, label, sha256, source, first_loaded_at FROM rulesets WHERE version LIKE ? || '%' LIMIT 2`, v)
	if err != nil {
		return nil, fmt.Errorf("audit: rule set %s: %w", version, err)
	}
	defer rows.Close()
	var found []*Ruleset
	for rows.Next() {
		var (
			r  Ruleset
			at int64
		)
		if err := rows.Scan(&r.Version, &r.Label, &r.SHA256, &r.Source, &at); err != nil {
			return nil, fmt.Errorf("audit: rule set %s: %w", version, err)
		}
		r.FirstLoadedAt = time.Unix(0, at).UTC()
		found = append(found, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: rule set %s: %w", version, err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s (see `toolgate rules history`)", ErrNoRuleset, version)
	case 1:
		if sourceSHA(found[0].Source) != found[0].SHA256 {
			return nil, fmt.Errorf("audit: rule set %s: its stored source does not match its sha256 (altered?)", found[0].Version)
		}
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %q matches more than one (give more digits)", ErrAmbiguous, version)
}

// RulesetPeriod is one entry of the rule-set history: a load (a version
// put in force by a server) or a rollback (an admin writing a version back
// to the rules file, which the servers then load).
type RulesetPeriod struct {
	// Kind is "load" or "rollback".
	Kind    string `json:"kind"`
	Version string `json:"version"`
	Label   string `json:"label,omitempty"`
	File    string `json:"file,omitempty"`
	// From is when it was loaded (or the rollback was made).
	From time.Time `json:"from"`
	// To, for a load, is when the same server loaded another version, or
	// (the server gone) when any server next loaded one; nil while the
	// server still holds a lease (InForce), or when nothing followed.
	To      *time.Time `json:"to,omitempty"`
	InForce bool       `json:"in_force,omitempty"`
	// Owner is the loading server (its review owner id).
	Owner string `json:"owner,omitempty"`
	// By and Previous are a rollback's admin and the version it replaced.
	By       string `json:"by,omitempty"`
	Previous string `json:"previous,omitempty"`
	// Allow, Deny and Review count, by recorded action, the calls this
	// version decided from From until it was next loaded (by any server),
	// calls decided just after a swap to another version included (a
	// server records a load before the set decides anything). Calls by
	// another server running the same version meanwhile count too.
	Allow  int `json:"allow"`
	Deny   int `json:"deny"`
	Review int `json:"review"`
}

// RulesetHistory returns every load and rollback, oldest first, with when
// each load was in force and the decisions its version made meanwhile.
func (s *Store) RulesetHistory(ctx context.Context) ([]RulesetPeriod, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("audit: rule-set history: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT kind, body FROM events WHERE kind IN ('rules_load', 'rules_rollback') ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("audit: rule-set history: %w", err)
	}
	var out []RulesetPeriod
	for rows.Next() {
		var kind, body string
		if err := rows.Scan(&kind, &body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: rule-set history: %w", err)
		}
		var e rulesetEvent
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: rule-set history: event %s: %w", kind, err)
		}
		p := RulesetPeriod{Kind: "load", Version: e.Version, Label: e.Label, File: e.File, From: time.Unix(0, e.At).UTC(), Owner: e.Owner}
		if kind == kindRulesRollback {
			p.Kind, p.By, p.Previous, p.Owner = "rollback", e.By, e.From, ""
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: rule-set history: %w", err)
	}
	alive, err := s.liveOwners(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		p := &out[i]
		if p.Kind != "load" {
			continue
		}
		p.To = nextLoad(out[i+1:], p.Owner, alive[p.Owner])
		p.InForce = p.To == nil && alive[p.Owner]
		var until *time.Time
		for j := i + 1; j < len(out) && until == nil; j++ {
			if out[j].Kind == "load" && out[j].Version == p.Version {
				until = &out[j].From
			}
		}
		if err := s.countDecisions(ctx, p, until); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nextLoad returns when the load by owner that later ends: owner's next
// load, or, if owner is gone, the next load by any server (a restart);
// nil if none.
func nextLoad(later []RulesetPeriod, owner string, alive bool) *time.Time {
	var first *time.Time
	for j := range later {
		q := &later[j]
		if q.Kind != "load" {
			continue
		}
		if q.Owner == owner && owner != "" {
			return &q.From
		}
		if first == nil {
			first = &q.From
		}
	}
	if alive {
		return nil
	}
	return first
}

// liveOwners returns the review owners whose lease is current.
func (s *Store) liveOwners(ctx context.Context) (map[string]bool, error) {
	ttl := s.o.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT owner FROM review_owners WHERE heartbeat_at >= ?`, s.o.Now().Add(-ttl).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("audit: rule-set history: %w", err)
	}
	defer rows.Close()
	alive := map[string]bool{}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("audit: rule-set history: %w", err)
		}
		alive[o] = true
	}
	return alive, rows.Err()
}

// decideWithin bounds how long after receiving a call toolgate decides it
// (rule evaluation is bounded by rules.CostLimit per expression). It only
// lets countDecisions use the received_at index; the decision event's at
// (its decided_at) is exact.
const decideWithin = time.Hour

// countDecisions fills p's counts: the calls p's version decided from
// p.From until until (nil: no end).
func (s *Store) countDecisions(ctx context.Context, p *RulesetPeriod, until *time.Time) error {
	to := int64(1<<63 - 1)
	if until != nil {
		to = until.UnixNano()
	}
	from := p.From.UnixNano()
	rows, err := s.rdb.QueryContext(ctx, `SELECT calls.action, count(*) FROM calls JOIN events d ON d.seq = calls.seq
		WHERE calls.received_at >= ? AND calls.received_at < ? AND d.at >= ? AND d.at < ? AND calls.rules_version_ref = `+nameRef+`
		GROUP BY calls.action`,
		from-int64(decideWithin), to, from, to, p.Version)
	if err != nil {
		return fmt.Errorf("audit: rule-set history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			action string
			n      int
		)
		if err := rows.Scan(&action, &n); err != nil {
			return fmt.Errorf("audit: rule-set history: %w", err)
		}
		switch action {
		case "allow":
			p.Allow = n
		case "deny":
			p.Deny = n
		case "review":
			p.Review = n
		}
	}
	return rows.Err()
}

// verifyRulesets checks that every chained load and rollback names a
// stored source whose content still hashes to the chained sha256.
func (s *Store) verifyRulesets(ctx context.Context, rep *VerifyReport) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT e.seq, e.call_id, e.body, r.source FROM events e LEFT JOIN rulesets r ON r.version = substr(e.call_id, 7)
		WHERE e.kind IN ('rules_load', 'rules_rollback') ORDER BY e.seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq      int64
			id, body string
			source   []byte
			e        rulesetEvent
		)
		if err := rows.Scan(&seq, &id, &body, &source); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			continue // checkStandalone reports it
		}
		switch {
		case source == nil:
			rep.add(Problem{Seq: seq, CallID: id, What: "the rule set's source is missing from the rulesets table (row deleted?)"})
		case sourceSHA(source) != e.SHA256 || RulesetVersion(source) != e.Version:
			rep.add(Problem{Seq: seq, CallID: id, What: "the rule set's stored source does not hash to the chained sha256 (source altered)"})
		}
	}
	return rows.Err()
}
