package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Retention is how long records stay in the live log; see ApplyRetention.
type Retention struct {
	// MaxAge archives the calls decided longer ago than this (0: none).
	MaxAge time.Duration
	// MaxSize archives the oldest calls while the records take more than
	// this many bytes (0: no limit), down to nine tenths of it, but never
	// one received less than MinAge ago.
	MaxSize int64
	// MinAge is the age below which MaxSize archives no call (0:
	// DefaultRetentionMinAge; negative: none). An agent can make the log
	// grow (large arguments, refused calls are recorded too); without a
	// floor it could push its own recent calls out of every everyday view
	// (list, show, export, the web UI) into an archive within minutes.
	// MaxAge is the operator's own choice and is not bounded by it.
	MinAge time.Duration
	// Dir is where the archives go, one file per run, named by the time
	// of the run (created 0700 if missing).
	Dir string
	// PerRun bounds the calls one run archives (0: DefaultRetentionPerRun),
	// so that its prune holds the write lock briefly; ArchiveResult.More
	// says another run is due at once.
	PerRun int
	// Horizon is the longest a call may take from its decision to its
	// outcome: each run first closes the calls left started longer ago
	// (or by a process that is gone) as interrupted, so that a crash does
	// not hold the cut back for good (see CloseInterrupted).
	Horizon time.Duration
}

// DefaultRetentionPerRun is Retention.PerRun's default: about a second of
// prune on a 2-core machine.
const DefaultRetentionPerRun = 20000

// DefaultRetentionMinAge is Retention.MinAge's default: a week, long
// enough for someone to look at what an agent did before a size cut can
// take it out of the live log.
const DefaultRetentionMinAge = 7 * 24 * time.Hour

// ApplyRetention archives what r says is too old or too much (one
// Archive, without a vacuum: freed pages are reused by new records, so
// the file stops growing without a pause in writes). It returns
// ErrNothingToArchive when nothing is due or can be cut off whole; like
// Archive, a failure prunes nothing.
//
// On PostgreSQL one replica at a time applies it (the others get
// ErrNothingToArchive), and the prune is followed by a plain VACUUM: it
// blocks no writer, and makes the freed space reusable at once rather
// than when autovacuum comes round.
func (s *Store) ApplyRetention(ctx context.Context, r Retention) (*ArchiveResult, error) {
	unlock, busy, err := s.retentionLock(ctx)
	if err != nil {
		return nil, err
	}
	if busy {
		return nil, fmt.Errorf("%w: another replica is applying the retention", ErrNothingToArchive)
	}
	defer unlock()
	if _, err := s.CloseInterrupted(ctx, r.Horizon); err != nil {
		return nil, err
	}
	now := s.o.Now()
	var before time.Time
	if r.MaxAge > 0 {
		before = now.Add(-r.MaxAge)
	}
	if r.MaxSize > 0 {
		t, err := s.sizeCut(ctx, r.MaxSize)
		if err != nil {
			return nil, err
		}
		minAge := r.MinAge
		if minAge == 0 {
			minAge = DefaultRetentionMinAge
		}
		// Archive takes the calls decided before the cut, and a call is
		// decided no earlier than it is received: a cut at floor keeps
		// every call received less than minAge ago.
		if floor := now.Add(-minAge); minAge > 0 && t.After(floor) {
			s.o.Logger.Warn("audit retention: the log takes more than max_size with calls younger than min_age; they stay in the live log",
				"max_size", r.MaxSize, "min_age", minAge, "size_cut", t, "kept_from", floor)
			t = floor
		}
		if t.After(before) {
			before = t
		}
	}
	if before.IsZero() {
		return nil, ErrNothingToArchive
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: retention: %w", err)
	}
	name := "audit-" + now.UTC().Format("20060102T150405.000Z") + ".db.gz"
	perRun := r.PerRun
	if perRun <= 0 {
		perRun = DefaultRetentionPerRun
	}
	return s.Archive(ctx, ArchiveOptions{Before: before, To: filepath.Join(r.Dir, name), MaxCalls: perRun, Vacuum: s.pg != nil})
}

// sizeCut returns the cut time that brings the records under nine tenths
// of maxSize, assuming calls of even size (zero if they are under it).
func (s *Store) sizeCut(ctx context.Context, maxSize int64) (time.Time, error) {
	used, err := s.usedBytes(ctx)
	if err != nil || used <= maxSize {
		return time.Time{}, err
	}
	var calls int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM calls`).Scan(&calls); err != nil {
		return time.Time{}, fmt.Errorf("audit: retention: %w", err)
	}
	target := maxSize / 10 * 9
	drop := int64(float64(calls) * float64(used-target) / float64(used))
	if drop <= 0 {
		return time.Time{}, nil
	}
	var at int64
	err = s.rdb.QueryRowContext(ctx, `SELECT received_at FROM calls ORDER BY received_at LIMIT 1 OFFSET ?`, min(drop, calls-1)).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("audit: retention: %w", err)
	}
	return time.Unix(0, at+1), nil
}

// usedBytes is how much of the DB file its records take (the file less
// its free pages; on PostgreSQL see pgUsedBytes).
func (s *Store) usedBytes(ctx context.Context) (int64, error) {
	if s.pg != nil {
		return s.pgUsedBytes(ctx)
	}
	var pages, free, size int64
	for _, p := range []struct {
		q   string
		dst *int64
	}{{"PRAGMA page_count", &pages}, {"PRAGMA freelist_count", &free}, {"PRAGMA page_size", &size}} {
		if err := s.rdb.QueryRowContext(ctx, p.q).Scan(p.dst); err != nil {
			return 0, fmt.Errorf("audit: retention: %w", err)
		}
	}
	return (pages - free) * size, nil
}
