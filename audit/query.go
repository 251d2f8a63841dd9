package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/toolgate/toolgate"
)

// Filter selects recorded calls. Zero fields match everything; string
// fields match exactly.
type Filter struct {
	// Since and Until bound the received time: Since <= t < Until.
	Since, Until time.Time
	Tool         string
	Server       string
	// Action is the decision's action: allow, deny or review.
	Action  string
	Client  string // client name
	Model   string // model name
	Session string
	Rule    string // matched rule
	User    string // the principal's user
	// Kind is the call's kind: tool, resource, prompt or completion.
	Kind string
	// After keeps rows with Seq > After (for tailing).
	After int64
	// Limit keeps only the newest Limit matches (still returned oldest
	// first); 0 means no limit.
	Limit int
}

func (f Filter) where() (string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	if !f.Since.IsZero() {
		add("calls.received_at >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add("calls.received_at < ?", f.Until.UnixNano())
	}
	if f.Action != "" {
		add("calls.action = ?", f.Action)
	}
	for _, c := range []struct{ col, v string }{
		{"tool_ref", f.Tool}, {"server_ref", f.Server}, {"client_ref", f.Client}, {"model_ref", f.Model},
		{"session_ref", f.Session}, {"rule_ref", f.Rule}, {"user_ref", f.User}, {"kind_ref", f.Kind},
	} {
		if c.v != "" {
			add("calls."+c.col+" = "+nameRef, c.v)
		}
	}
	if f.After > 0 {
		add("calls.seq > ?", f.After)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// selectSQL returns the query for cols under f, oldest first; joins
// follow calls (recordJoins when cols are recordCols).
func (f Filter) selectSQL(cols, joins string) (string, []any) {
	return f.selectOrdered(cols, joins, true)
}

// selectOrdered is selectSQL; with ordered false, rows come in whatever
// order is cheapest (a full scan reads the table in insertion order
// instead of walking an index and looking up each row).
func (f Filter) selectOrdered(cols, joins string, ordered bool) (string, []any) {
	where, args := f.where()
	if f.Limit > 0 {
		return `SELECT ` + cols + ` FROM (SELECT * FROM calls` + where +
			` ORDER BY calls.received_at DESC, calls.seq DESC LIMIT ?) AS calls` + joins +
			` ORDER BY calls.received_at, calls.seq`, append(args, f.Limit)
	}
	if !ordered {
		return `SELECT ` + cols + ` FROM calls` + joins + where, args
	}
	return `SELECT ` + cols + ` FROM calls` + joins + where + ` ORDER BY calls.received_at, calls.seq`, args
}

// Records streams the calls matching f, oldest first. Stop early by
// breaking out of the loop.
func (s *Store) Records(ctx context.Context, f Filter) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		if err := s.catchUp(ctx); err != nil {
			yield(nil, fmt.Errorf("audit: list: %w", err))
			return
		}
		q, args := f.selectSQL(recordCols, recordJoins)
		rows, err := s.rdb.QueryContext(ctx, q, args...)
		if err != nil {
			yield(nil, fmt.Errorf("audit: list: %w", err))
			return
		}
		defer rows.Close()
		look := newCtxReader(ctx, s.rdb).get
		for rows.Next() {
			r, err := scanRecord(rows, look)
			if err != nil {
				yield(nil, fmt.Errorf("audit: list: %w", err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("audit: list: %w", err))
		}
	}
}

// List returns the calls matching f, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]*Record, error) {
	var out []*Record
	for r, err := range s.Records(ctx, f) {
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Get returns call id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("audit: get %s: %w", id, err)
	}
	return s.getOn(ctx, s.rdb, id)
}

// rowQueryer is a *sql.DB, or the writer's *sql.Conn inside a write.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (s *Store) getOn(ctx context.Context, q rowQueryer, id string) (*Record, error) {
	r, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+recordCols+` FROM `+recordFrom+` WHERE calls.id = ?`, id),
		newCtxReader(ctx, q).get)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: get %s: %w", id, err)
	}
	return r, nil
}

// LastSeq returns the highest row Seq (0 for an empty log).
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.catchUp(ctx); err != nil {
		return 0, fmt.Errorf("audit: last seq: %w", err)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT max(seq) FROM calls`).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: last seq: %w", err)
	}
	return n.Int64, nil
}

// Tail calls fn for each new call matching f (rows with Seq > f.After, in
// insertion order), polling every interval, until ctx ends (returns nil) or
// fn fails. It follows new rows only; later status changes of a row already
// shown are not reported again. f.Limit is ignored.
func (s *Store) Tail(ctx context.Context, f Filter, interval time.Duration, fn func(*Record) error) error {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	f.Limit = 0
	t := time.NewTicker(interval)
	defer t.Stop()
	look := newCtxReader(ctx, s.rdb).get
	for {
		if err := s.catchUp(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("audit: tail: %w", err)
		}
		where, args := f.where()
		rows, err := s.rdb.QueryContext(ctx, `SELECT `+recordCols+` FROM `+recordFrom+where+` ORDER BY calls.seq`, args...)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("audit: tail: %w", err)
		}
		for rows.Next() {
			r, err := scanRecord(rows, look)
			if err == nil {
				f.After = r.Seq
				err = fn(r)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("audit: tail: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Stats are the headline numbers for a set of calls.
type Stats struct {
	Calls  int `json:"calls"`
	Allow  int `json:"allow"`
	Deny   int `json:"deny"`
	Review int `json:"review"`
	// AllowRate, DenyRate and ReviewRate are fractions of Calls (0..1).
	AllowRate  float64 `json:"allow_rate"`
	DenyRate   float64 `json:"deny_rate"`
	ReviewRate float64 `json:"review_rate"`
	// AutoApproved counts review rules turned into allow by auto_approve_at.
	AutoApproved int `json:"auto_approved"`
	// AutoApprovalRate is AutoApproved / (AutoApproved + Review): how often a
	// review rule did not need a human.
	AutoApprovalRate float64 `json:"auto_approval_rate"`
	// EvalErrors counts decisions forced by a rule evaluation error.
	EvalErrors int `json:"eval_errors"`
	// Reviews breaks down the verdicts of review decisions.
	Reviews ReviewStats `json:"reviews"`
	// Status counts calls per status (ok, refused, ...).
	Status map[string]int `json:"status"`
	// ByTool is per "server/tool", ByRule per matched rule ("" = default),
	// each sorted by calls, most first.
	ByTool []Count `json:"by_tool"`
	ByRule []Count `json:"by_rule"`
	// ByUser is per principal user, ByModel per "name@version" of the
	// model ("" = unknown), sorted as ByTool.
	ByUser  []Count `json:"by_user"`
	ByModel []Count `json:"by_model"`
}

// ReviewStats summarises verdicts.
type ReviewStats struct {
	Pending  int `json:"pending"`
	Approved int `json:"approved"`
	Denied   int `json:"denied"` // by a person
	// Unanswered counts reviews that ended without a human answer
	// (timeout, expired, no channel, error).
	Unanswered   int     `json:"unanswered"`
	ApprovalRate float64 `json:"approval_rate"` // Approved / (Approved + Denied)
	// TimeToDecision is over human answers; TimeToApproval over approvals.
	TimeToDecision Percentiles `json:"time_to_decision"`
	TimeToApproval Percentiles `json:"time_to_approval"`
}

// Percentiles of a duration (nearest rank); zero when there is no data.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
}

// Count is the number of calls for one key, by action.
type Count struct {
	Key    string `json:"key"`
	Calls  int    `json:"calls"`
	Allow  int    `json:"allow"`
	Deny   int    `json:"deny"`
	Review int    `json:"review"`
}

// unansweredChannels are verdict channels that mean no person answered.
const unansweredChannels = `('timeout','expired','none','error','limit')`

// Stats computes Stats over the calls matching f (f.Limit is ignored).
func (s *Store) Stats(ctx context.Context, f Filter) (Stats, error) {
	f.Limit = 0
	where, args := f.where()
	and := " AND "
	if where == "" {
		and = " WHERE "
	}
	st := Stats{Status: map[string]int{}}
	wrap := func(err error) error { return fmt.Errorf("audit: stats: %w", err) }
	if err := s.catchUp(ctx); err != nil {
		return st, wrap(err)
	}

	// counts groups by the refs, then names each group.
	counts := func(refs, keyExpr string) ([]Count, error) {
		rows, err := s.rdb.QueryContext(ctx, `SELECT `+keyExpr+`, action, n FROM (SELECT `+refs+`, action, count(*) AS n FROM calls`+
			where+` GROUP BY `+refs+`, action) AS g`, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		m := map[string]*Count{}
		var keys []string
		for rows.Next() {
			var (
				k, a string
				n    int
			)
			if err := rows.Scan(&k, &a, &n); err != nil {
				return nil, err
			}
			c := m[k]
			if c == nil {
				c = &Count{Key: k}
				m[k] = c
				keys = append(keys, k)
			}
			c.Calls += n
			switch toolgate.Action(a) {
			case toolgate.Allow:
				c.Allow += n
			case toolgate.Deny:
				c.Deny += n
			case toolgate.Review:
				c.Review += n
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out := make([]Count, 0, len(keys))
		for _, k := range keys {
			out = append(out, *m[k])
		}
		slices.SortStableFunc(out, func(a, b Count) int {
			if a.Calls != b.Calls {
				return b.Calls - a.Calls
			}
			return strings.Compare(a.Key, b.Key)
		})
		return out, nil
	}
	var err error
	if st.ByTool, err = counts(`server_ref, tool_ref`, nameOf(`g.server_ref`)+` || '/' || `+nameOf(`g.tool_ref`)); err != nil {
		return st, wrap(err)
	}
	if st.ByRule, err = counts(`rule_ref`, nameOf(`g.rule_ref`)); err != nil {
		return st, wrap(err)
	}
	if st.ByUser, err = counts(`user_ref`, nameOf(`g.user_ref`)); err != nil {
		return st, wrap(err)
	}
	version := nameOf(`g.model_version_ref`)
	if st.ByModel, err = counts(`model_ref, model_version_ref`,
		nameOf(`g.model_ref`)+` || CASE WHEN `+version+` != '' THEN '@' || `+version+` ELSE '' END`); err != nil {
		return st, wrap(err)
	}
	for _, c := range st.ByTool {
		st.Calls += c.Calls
		st.Allow += c.Allow
		st.Deny += c.Deny
		st.Review += c.Review
	}
	var pending, approved, denied, unanswered sql.NullInt64
	err = s.rdb.QueryRowContext(ctx, `SELECT
		sum(auto_approved), sum(eval_failed),
		sum(CASE WHEN action = 'review' AND review_approved IS NULL THEN 1 ELSE 0 END),
		sum(CASE WHEN review_approved = 1 THEN 1 ELSE 0 END),
		sum(CASE WHEN review_approved = 0 AND review_channel NOT IN `+unansweredChannels+` THEN 1 ELSE 0 END),
		sum(CASE WHEN review_approved = 0 AND review_channel IN `+unansweredChannels+` THEN 1 ELSE 0 END)
		FROM calls`+where, args...).Scan(nullInt(&st.AutoApproved), nullInt(&st.EvalErrors), &pending, &approved, &denied, &unanswered)
	if err != nil {
		return st, wrap(err)
	}
	st.Reviews.Pending, st.Reviews.Approved = int(pending.Int64), int(approved.Int64)
	st.Reviews.Denied, st.Reviews.Unanswered = int(denied.Int64), int(unanswered.Int64)
	rows, err := s.rdb.QueryContext(ctx, `SELECT status, count(*) FROM calls`+where+` GROUP BY 1`, args...)
	if err != nil {
		return st, wrap(err)
	}
	for rows.Next() {
		var (
			k string
			n int
		)
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return st, wrap(err)
		}
		st.Status[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, wrap(err)
	}
	pct := func(cond string) (Percentiles, error) {
		rows, err := s.rdb.QueryContext(ctx, `SELECT review_ms FROM calls`+where+and+cond+` ORDER BY review_ms`, args...)
		if err != nil {
			return Percentiles{}, err
		}
		defer rows.Close()
		var ms []int64
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				return Percentiles{}, err
			}
			ms = append(ms, v)
		}
		return percentiles(ms), rows.Err()
	}
	human := `review_ms IS NOT NULL AND review_approved IS NOT NULL AND review_channel NOT IN ` + unansweredChannels
	if st.Reviews.TimeToDecision, err = pct(human); err != nil {
		return st, wrap(err)
	}
	if st.Reviews.TimeToApproval, err = pct(human + ` AND review_approved = 1`); err != nil {
		return st, wrap(err)
	}
	rate := func(n, d int) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	st.AllowRate, st.DenyRate, st.ReviewRate = rate(st.Allow, st.Calls), rate(st.Deny, st.Calls), rate(st.Review, st.Calls)
	st.AutoApprovalRate = rate(st.AutoApproved, st.AutoApproved+st.Review)
	st.Reviews.ApprovalRate = rate(st.Reviews.Approved, st.Reviews.Approved+st.Reviews.Denied)
	return st, nil
}

// percentiles takes sorted millisecond values.
func percentiles(ms []int64) Percentiles {
	if len(ms) == 0 {
		return Percentiles{}
	}
	at := func(p float64) time.Duration {
		i := int(math.Ceil(float64(len(ms))*p)) - 1 // nearest rank
		i = max(0, min(i, len(ms)-1))
		return time.Duration(ms[i]) * time.Millisecond
	}
	return Percentiles{N: len(ms), P50: at(0.50), P90: at(0.90), P99: at(0.99)}
}

// nullInt scans a nullable integer into *int (NULL -> 0).
func nullInt(p *int) sql.Scanner { return (*nullIntScanner)(p) }

type nullIntScanner int

func (n *nullIntScanner) Scan(v any) error {
	var x sql.NullInt64
	if err := x.Scan(v); err != nil {
		return err
	}
	*n = nullIntScanner(x.Int64)
	return nil
}
