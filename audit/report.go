package audit

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate"
)

// Bucket widths of a Report's series.
const (
	BucketHour = time.Hour
	BucketDay  = 24 * time.Hour
)

// Drift test: a rule drifted when its match rate (its calls over all calls
// in the period) in the window is at least DriftRatio times, or at most
// 1/DriftRatio times, its rate in the period of the same length just
// before, and it matched at least DriftMinCalls times in one of the two
// periods (so that 1 call against 0 is not flagged). A rule matching in
// only one of the periods counts as an infinite (or zero) ratio.
const (
	DriftRatio    = 2.0
	DriftMinCalls = 10
)

// Report is Stats plus the KPI series and drift of the governance
// dashboard. `toolgate audit stats --output json` prints it and the web
// dashboard serves it, from this one computation.
type Report struct {
	Stats
	// Since and Until are the window ([Since, Until)); Since is zero when
	// the filter has no lower bound.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until"`
	// EscalationRate is the fraction of calls sent to a person (decided
	// review and not auto-approved): Stats.ReviewRate, named as the KPI.
	EscalationRate float64 `json:"escalation_rate"`
	// Bucket is the series' bucket width: "hour" or "day" (UTC).
	Bucket string `json:"bucket"`
	// Series has one point per bucket holding at least one call, oldest
	// first.
	Series []Point `json:"series"`
	// Drift compares each rule's match rate in the window with the period
	// of the same length before it; nil without Since. Sorted flagged
	// first, then by rule.
	Drift []Drift `json:"drift"`
	// DriftTest states the test Flagged applies.
	DriftTest string `json:"drift_test"`
}

// Point is one bucket of a Report's series.
type Point struct {
	Start          time.Time   `json:"start"`
	Calls          int         `json:"calls"`
	Allow          int         `json:"allow"`
	Deny           int         `json:"deny"`
	Review         int         `json:"review"`
	AutoApproved   int         `json:"auto_approved"`
	TimeToApproval Percentiles `json:"time_to_approval"`
}

// Drift is one rule's match rate in the window against the period before.
type Drift struct {
	Rule      string  `json:"rule"`
	Calls     int     `json:"calls"`
	PrevCalls int     `json:"prev_calls"`
	Rate      float64 `json:"rate"`
	PrevRate  float64 `json:"prev_rate"`
	// Ratio is Rate / PrevRate; -1 stands for infinite (no match before).
	Ratio   float64 `json:"ratio"`
	Flagged bool    `json:"flagged"`
}

// Report computes the Report of the calls matching f, with series in
// buckets of width bucket (BucketHour or BucketDay). now ends the window
// when f.Until is zero. f.Limit is ignored.
func (s *Store) Report(ctx context.Context, f Filter, bucket time.Duration, now time.Time) (Report, error) {
	if err := s.catchUp(ctx); err != nil {
		return Report{}, fmt.Errorf("audit: report: %w", err)
	}
	var name string
	switch bucket {
	case BucketHour:
		name = "hour"
	case BucketDay:
		name = "day"
	default:
		return Report{}, fmt.Errorf("audit: report: bucket must be an hour or a day, not %v", bucket)
	}
	f.Limit = 0
	if f.Until.IsZero() {
		f.Until = now
	}
	st, err := s.Stats(ctx, f)
	if err != nil {
		return Report{}, err
	}
	r := Report{Stats: st, Since: utc(f.Since), Until: utc(f.Until), EscalationRate: st.ReviewRate, Bucket: name,
		DriftTest: fmt.Sprintf("rate = a rule's calls / all calls in the period; flagged when rate/previous rate >= %g or <= %g and the rule matched at least %d times in one of the two periods",
			DriftRatio, 1/DriftRatio, DriftMinCalls)}
	if f.Since.IsZero() {
		r.Since = time.Time{}
	}
	if r.Series, err = s.series(ctx, f, bucket); err != nil {
		return Report{}, fmt.Errorf("audit: report: %w", err)
	}
	if !f.Since.IsZero() && f.Until.After(f.Since) {
		if r.Drift, err = s.drift(ctx, f); err != nil {
			return Report{}, fmt.Errorf("audit: report: %w", err)
		}
	}
	return r, nil
}

// series buckets the calls matching f by received time (UTC-aligned: Unix
// time is, and hours and days divide it).
func (s *Store) series(ctx context.Context, f Filter, width time.Duration) ([]Point, error) {
	where, args := f.where()
	w := int64(width)
	rows, err := s.rdb.QueryContext(ctx, `SELECT received_at / ?, action, count(*), sum(auto_approved) FROM calls`+where+
		` GROUP BY 1, 2 ORDER BY 1`, append([]any{w}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byBucket := map[int64]*Point{}
	var keys []int64
	for rows.Next() {
		var (
			b, n, auto int64
			a          string
		)
		if err := rows.Scan(&b, &a, &n, &auto); err != nil {
			return nil, err
		}
		p := byBucket[b]
		if p == nil {
			p = &Point{Start: time.Unix(0, b*w).UTC()}
			byBucket[b] = p
			keys = append(keys, b)
		}
		p.Calls += int(n)
		p.AutoApproved += int(auto)
		switch toolgate.Action(a) {
		case toolgate.Allow:
			p.Allow += int(n)
		case toolgate.Deny:
			p.Deny += int(n)
		case toolgate.Review:
			p.Review += int(n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	and := " AND "
	if where == "" {
		and = " WHERE "
	}
	// The same rows as Stats' time to approval, per bucket.
	trows, err := s.rdb.QueryContext(ctx, `SELECT received_at / ?, review_ms FROM calls`+where+and+
		`review_ms IS NOT NULL AND review_approved = 1 AND review_channel NOT IN `+unansweredChannels+
		` ORDER BY 1, 2`, append([]any{w}, args...)...)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	ms := map[int64][]int64{}
	for trows.Next() {
		var b, v int64
		if err := trows.Scan(&b, &v); err != nil {
			return nil, err
		}
		ms[b] = append(ms[b], v)
	}
	if err := trows.Err(); err != nil {
		return nil, err
	}
	out := make([]Point, 0, len(keys))
	for _, b := range keys {
		p := byBucket[b]
		p.TimeToApproval = percentiles(ms[b])
		out = append(out, *p)
	}
	return out, nil
}

// drift applies the drift test to every rule that matched in f's window
// or the period of the same length before it.
func (s *Store) drift(ctx context.Context, f Filter) ([]Drift, error) {
	prev := f
	prev.Since, prev.Until = f.Since.Add(-f.Until.Sub(f.Since)), f.Since
	cur, curTotal, err := s.ruleCounts(ctx, f)
	if err != nil {
		return nil, err
	}
	old, oldTotal, err := s.ruleCounts(ctx, prev)
	if err != nil {
		return nil, err
	}
	var out []Drift
	for rule := range mergeKeys(cur, old) {
		d := Drift{Rule: rule, Calls: cur[rule], PrevCalls: old[rule]}
		d.Rate, d.PrevRate = frac(d.Calls, curTotal), frac(d.PrevCalls, oldTotal)
		switch {
		case d.PrevRate == 0:
			d.Ratio = -1
		default:
			d.Ratio = d.Rate / d.PrevRate
		}
		moved := d.Ratio == -1 || d.Ratio >= DriftRatio || d.Ratio <= 1/DriftRatio
		d.Flagged = moved && max(d.Calls, d.PrevCalls) >= DriftMinCalls
		d.Ratio = math.Round(d.Ratio*1000) / 1000
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Drift) int {
		if a.Flagged != b.Flagged {
			if a.Flagged {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return out, nil
}

// ruleCounts counts the calls matching f per rule, and in all.
func (s *Store) ruleCounts(ctx context.Context, f Filter) (map[string]int, int, error) {
	where, args := f.where()
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+nameOf(`g.rule_ref`)+`, n FROM (SELECT rule_ref, count(*) AS n FROM calls`+where+
		` GROUP BY rule_ref) AS g`, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	m := map[string]int{}
	total := 0
	for rows.Next() {
		var (
			k string
			n int
		)
		if err := rows.Scan(&k, &n); err != nil {
			return nil, 0, err
		}
		m[k] = n
		total += n
	}
	return m, total, rows.Err()
}

func mergeKeys(a, b map[string]int) map[string]struct{} {
	out := map[string]struct{}{}
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

func frac(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// ParseBucket reads a bucket width: "hour" or "day".
func ParseBucket(s string) (time.Duration, error) {
	switch s {
	case "hour":
		return BucketHour, nil
	case "day", "":
		return BucketDay, nil
	}
	return 0, fmt.Errorf("%q is not hour or day", s)
}

// ParseWhen reads a time bound as the audit commands and the web UI take
// it: an RFC 3339 time, a date (2006-01-02, local time), or a duration
// before now ("90m", "36h", "7d"). "" is the zero time (no bound).
func ParseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date (2006-01-02) or a duration such as 1h or 7d", s)
}

// RuleVersion is one rule-set version as the calls recorded it.
type RuleVersion struct {
	Version string    `json:"version"`
	Label   string    `json:"label,omitempty"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Calls   int       `json:"calls"`
}

// RuleVersions lists the rule-set versions the calls were decided under,
// in order of first use: a timeline of the rules in force.
func (s *Store) RuleVersions(ctx context.Context) ([]RuleVersion, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("audit: rule versions: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+nameOf(`g.v`)+`, `+nameOf(`g.l`)+`, g.first, g.last, g.n FROM (
		SELECT rules_version_ref AS v, max(rules_label_ref) AS l, min(received_at) AS first, max(received_at) AS last, count(*) AS n
		FROM calls GROUP BY rules_version_ref) AS g ORDER BY g.first`)
	if err != nil {
		return nil, fmt.Errorf("audit: rule versions: %w", err)
	}
	defer rows.Close()
	var out []RuleVersion
	for rows.Next() {
		var (
			v           RuleVersion
			first, last int64
		)
		if err := rows.Scan(&v.Version, &v.Label, &first, &last, &v.Calls); err != nil {
			return nil, fmt.Errorf("audit: rule versions: %w", err)
		}
		v.First, v.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// ChainEvent is one event of the hash chain.
type ChainEvent struct {
	Seq  int64     `json:"seq"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	Hash string    `json:"hash"`
}

// ChainOf returns the chain events of call id, in chain order, and the
// chain's length. It scans the events table (there is no index on the
// call, see the schema): for one call's page, not for bulk use.
func (s *Store) ChainOf(ctx context.Context, id string) ([]ChainEvent, int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq, kind, at, hash FROM events WHERE call_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: chain of %s: %w", id, err)
	}
	defer rows.Close()
	var out []ChainEvent
	for rows.Next() {
		var (
			e  ChainEvent
			at int64
		)
		if err := rows.Scan(&e.Seq, &e.Kind, &at, hexScan{&e.Hash}); err != nil {
			return nil, 0, fmt.Errorf("audit: chain of %s: %w", id, err)
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("audit: chain of %s: %w", id, err)
	}
	var n sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("audit: chain length: %w", err)
	}
	return out, n.Int64, nil
}
