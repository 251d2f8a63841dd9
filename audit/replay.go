package audit

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
)

// Evaluator decides a call; *rules.Set implements it.
type Evaluator interface {
	Evaluate(ctx context.Context, c toolgate.Call) toolgate.Decision
}

// ReplayReport says which recorded decisions a rule set would change.
type ReplayReport struct {
	// Total is how many calls were re-evaluated; Changed how many got a
	// different action or rule.
	Total   int `json:"total"`
	Changed int `json:"changed"`
	// RulesVersion and RulesLabel identify the new rule set.
	RulesVersion string `json:"rules_version,omitempty"`
	RulesLabel   string `json:"rules_label,omitempty"`
	// Changes lists every changed call, oldest first.
	Changes []Change `json:"changes"`
	// Transitions counts changed calls per (old action, old rule) -> (new
	// action, new rule), most first.
	Transitions []Transition `json:"transitions"`
	// Rules counts, per rule name (old or new; "" is the default), how many
	// calls it matched before and after and how many changed.
	Rules []RuleSummary `json:"rules"`
	// Grants lists the grants issued by reviews of the replayed calls, with
	// their uses and revocation, and what the new rules decide for the call
	// whose review issued each: an approval the new rules would not ask for
	// (or would refuse) shows here even when the grant was never used.
	Grants []GrantReplay `json:"grants"`
	// Confidence counts the calls whose decision under the new rules the
	// agent's stated confidence changed, by rules.Confidence* effect
	// ("none" left out): what the thresholds tighten and auto_approve_at
	// waives on the recorded claims.
	Confidence map[string]int `json:"confidence,omitempty"`
	// ArgsNotStored counts the matching calls recorded with only their
	// arguments' hash (Options.ArgsHashOnly): they are not re-evaluated,
	// since rules that look at the arguments cannot be, and are not in
	// Total.
	ArgsNotStored int `json:"args_not_stored,omitempty"`
	// Masked counts the replayed calls whose stored arguments hold a
	// redaction mask ("[REDACTED ...]", see HasMask): the new rules saw
	// the mask where the live decision saw the value, so their result for
	// these calls may differ from what the live decision would be.
	Masked int `json:"masked,omitempty"`
	// Elapsed is how long the replay took.
	Elapsed time.Duration `json:"elapsed"`
}

// GrantReplay is one grant in a replay: the grant as recorded (uses,
// revocation) and the reviewed call's decision then and under the new rules.
type GrantReplay struct {
	Grant
	OldAction toolgate.Action `json:"old_action"`
	OldRule   string          `json:"old_rule,omitempty"`
	NewAction toolgate.Action `json:"new_action"`
	NewRule   string          `json:"new_rule,omitempty"`
	// Changed is true when the new rules decide the reviewed call
	// differently (another action or rule).
	Changed bool `json:"changed"`
}

// Change is one call whose decision would change.
type Change struct {
	ID         string          `json:"id"`
	ReceivedAt time.Time       `json:"received_at"`
	Server     string          `json:"server"`
	Tool       string          `json:"tool"`
	OldAction  toolgate.Action `json:"old_action"`
	OldRule    string          `json:"old_rule,omitempty"`
	NewAction  toolgate.Action `json:"new_action"`
	NewRule    string          `json:"new_rule,omitempty"`
	NewReason  string          `json:"new_reason,omitempty"`
	// OldConfidence and NewConfidence are how the agent's stated
	// confidence changed the old and the new decision ("" for none, or
	// for an old call recorded before it was kept).
	OldConfidence string `json:"old_confidence_effect,omitempty"`
	NewConfidence string `json:"new_confidence_effect,omitempty"`
	// NewError is the evaluation error under the new rules, if any.
	NewError string `json:"new_error,omitempty"`
	// Masked says the call's stored arguments hold a redaction mask: the
	// new decision was made on the mask, not on the value (see
	// ReplayReport.Masked).
	Masked bool `json:"masked,omitempty"`
	// Grant says, for a call that ran on a grant, whose ("approved by X
	// via grant G of review R"): the approval the new rules would revisit.
	Grant string `json:"grant,omitempty"`
	seq   int64
}

// Transition is a count of changed calls with the same old and new outcome.
type Transition struct {
	OldAction toolgate.Action `json:"old_action"`
	OldRule   string          `json:"old_rule,omitempty"`
	NewAction toolgate.Action `json:"new_action"`
	NewRule   string          `json:"new_rule,omitempty"`
	Calls     int             `json:"calls"`
}

// RuleSummary is one rule's part in a replay.
type RuleSummary struct {
	Rule string `json:"rule"`
	// Before and After count the calls the rule decided in the log and
	// under the new rules.
	Before int `json:"before"`
	After  int `json:"after"`
	// Lost counts changed calls it decided before; Gained changed calls it
	// decides now.
	Lost   int `json:"lost"`
	Gained int `json:"gained"`
}

// replayCols are the columns a replay needs: the call and the old decision
// (the decision event), how a review ended (the verdict event), and the
// arguments a decision event does not chain.
const replayCols = `calls.seq, calls.id, d.at, d.body, v.at, v.body, calls.args`

// replayJoins join a calls row to the events replayCols read.
const replayJoins = ` JOIN events d ON d.seq = calls.seq LEFT JOIN events v ON v.seq = calls.verdict_seq`

// replayRow is a row as read; JSON is decoded by the workers, in parallel.
type replayRow struct {
	seq  int64
	id   string
	d, v joined
	args sql.NullString
}

type replayResult struct {
	id               string
	oldAction        toolgate.Action
	newAction        toolgate.Action
	oldRule, newRule string
	version, label   string
	effect           string
	change           *Change
	noArgs           bool // only the args' hash is stored: not evaluated
	masked           bool // evaluated on args that hold a redaction mask
}

// maskPrefix starts every mask redaction writes in place of a value or
// part of one (redact.Mask, and redact.Describe's "[REDACTED 12 chars —
// ...]"); audit does not import redact, so a test keeps the two in step.
const maskPrefix = "[REDACTED"

// HasMask reports whether the stored arguments args (JSON) hold a
// redaction mask anywhere, in a whole value or inside one. An agent can
// write the text itself; it then counts as masked too, which errs on the
// side of a warning.
func HasMask(args []byte) bool { return bytes.Contains(args, []byte(maskPrefix)) }

const replayChunk = 256

// Replay re-evaluates the calls matching f with set, rebuilding each
// toolgate.Call from its recorded context (client, model, session, principal,
// server and version, tool, annotations, args, confidence; `now` is the
// recorded receive time, so time-based rules replay deterministically).
// Args are the stored ones, after redaction: rules that look at a redacted
// value see its mask, and ReplayReport.Masked counts the calls so decided. Rows are streamed and evaluated by GOMAXPROCS
// workers; give it a rules.Memo to decide each distinct call once.
// progress, if not nil, is called from one goroutine with (done, total).
func Replay(ctx context.Context, st *Store, set Evaluator, f Filter, progress func(done, total int)) (ReplayReport, error) {
	start := time.Now()
	var rep ReplayReport
	if err := st.catchUp(ctx); err != nil {
		return rep, fmt.Errorf("audit: replay: %w", err)
	}
	// Grants are few next to calls: index them by the review that issued
	// them and pick out those whose reviewed call is replayed.
	all, err := st.Grants(ctx, true)
	if err != nil {
		return rep, fmt.Errorf("audit: replay: %w", err)
	}
	byReview := map[string][]*Grant{}
	for _, g := range all {
		byReview[g.ReviewID] = append(byReview[g.ReviewID], g)
	}
	total := 0
	if progress != nil {
		if total, err = st.count(ctx, f); err != nil {
			return rep, err
		}
		progress(0, total)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	chunks := make(chan []replayRow, 4)
	results := make(chan []replayResult, 4)
	var readErr error
	go func() {
		defer close(chunks)
		readErr = st.readReplay(ctx, f, chunks)
	}()
	var (
		wg      sync.WaitGroup
		evalErr error
		errOnce sync.Once
	)
	look := newCtxReader(ctx, st.rdb).get
	workers := runtime.GOMAXPROCS(0)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range chunks {
				out := make([]replayResult, len(chunk))
				for i := range chunk {
					row := &chunk[i]
					var r Record
					err := r.load(row.id, &row.d, &row.v, nil, row.args, look)
					if err == nil && !argsStored(r.Args) {
						out[i] = replayResult{id: r.ID, noArgs: true}
						continue
					}
					var c toolgate.Call
					if err == nil {
						c, err = r.Call()
					}
					if err != nil {
						errOnce.Do(func() { evalErr = err; cancel() })
						break
					}
					d := set.Evaluate(ctx, c)
					out[i] = replayResult{id: r.ID, oldAction: r.Action, newAction: d.Action,
						oldRule: r.Rule, newRule: d.Rule, version: d.Version, label: d.Label, effect: d.ConfidenceEffect,
						masked: HasMask(r.Args)}
					if d.Action != r.Action || d.Rule != r.Rule {
						out[i].change = &Change{
							ID: r.ID, ReceivedAt: c.Time, Server: r.Server, Tool: r.Tool,
							OldAction: r.Action, OldRule: r.Rule,
							NewAction: d.Action, NewRule: d.Rule, NewReason: d.Reason, NewError: d.Error, seq: row.seq,
							OldConfidence: decisionEffect(r.ConfidenceEffect), NewConfidence: d.ConfidenceEffect,
							Masked: out[i].masked,
						}
						if r.Review != nil && r.Review.Channel == toolgate.ChannelGrant {
							out[i].change.Grant = r.Review.Reason
						}
					}
				}
				select {
				case results <- out:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	type key struct {
		oa toolgate.Action
		or string
		na toolgate.Action
		nr string
	}
	trans := map[key]int{}
	perRule := map[string]*RuleSummary{}
	rule := func(name string) *RuleSummary {
		r := perRule[name]
		if r == nil {
			r = &RuleSummary{Rule: name}
			perRule[name] = r
		}
		return r
	}
	// Changes are gathered and sorted by pointer, then copied out once:
	// a log replayed against very different rules changes most calls.
	var changes []*Change
	lastReport := 0
	for out := range results {
		for _, res := range out {
			if res.noArgs {
				rep.ArgsNotStored++
				continue
			}
			rep.Total++
			if res.masked {
				rep.Masked++
			}
			if rep.RulesVersion == "" {
				rep.RulesVersion, rep.RulesLabel = res.version, res.label
			}
			if res.effect != "" {
				if rep.Confidence == nil {
					rep.Confidence = map[string]int{}
				}
				rep.Confidence[res.effect]++
			}
			rule(res.oldRule).Before++
			rule(res.newRule).After++
			for _, g := range byReview[res.id] {
				rep.Grants = append(rep.Grants, GrantReplay{Grant: *g, OldAction: res.oldAction, OldRule: res.oldRule,
					NewAction: res.newAction, NewRule: res.newRule, Changed: res.change != nil})
			}
			if ch := res.change; ch != nil {
				rep.Changed++
				changes = append(changes, ch)
				trans[key{ch.OldAction, ch.OldRule, ch.NewAction, ch.NewRule}]++
				rule(ch.OldRule).Lost++
				rule(ch.NewRule).Gained++
			}
		}
		if progress != nil && rep.Total-lastReport >= 10000 {
			lastReport = rep.Total
			progress(rep.Total, max(total, rep.Total))
		}
	}
	if evalErr != nil {
		return rep, fmt.Errorf("audit: replay: %w", evalErr)
	}
	if readErr != nil {
		return rep, readErr
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("audit: replay: %w", err)
	}
	if progress != nil {
		progress(rep.Total, max(total, rep.Total))
	}
	slices.SortFunc(changes, func(a, b *Change) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.seq, b.seq))
	})
	if len(changes) > 0 {
		rep.Changes = make([]Change, len(changes))
		for i, ch := range changes {
			rep.Changes[i] = *ch
		}
	}
	slices.SortFunc(rep.Grants, func(a, b GrantReplay) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for k, n := range trans {
		rep.Transitions = append(rep.Transitions, Transition{k.oa, k.or, k.na, k.nr, n})
	}
	slices.SortFunc(rep.Transitions, func(a, b Transition) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.OldRule, b.OldRule), cmp.Compare(a.NewRule, b.NewRule),
			cmp.Compare(a.OldAction, b.OldAction), cmp.Compare(a.NewAction, b.NewAction))
	})
	for _, r := range perRule {
		rep.Rules = append(rep.Rules, *r)
	}
	slices.SortFunc(rep.Rules, func(a, b RuleSummary) int {
		return cmp.Or(cmp.Compare(b.Lost+b.Gained, a.Lost+a.Gained), cmp.Compare(b.Before+b.After, a.Before+a.After), cmp.Compare(a.Rule, b.Rule))
	})
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func (s *Store) count(ctx context.Context, f Filter) (int, error) {
	q, args := f.selectSQL("1", "")
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (`+q+`) AS matched`, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: count: %w", err)
	}
	return n, nil
}

func (s *Store) readReplay(ctx context.Context, f Filter, out chan<- []replayRow) error {
	q, args := f.selectOrdered(replayCols, replayJoins, false) // Replay sorts its changes itself
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("audit: replay: %w", err)
	}
	defer rows.Close()
	chunk := make([]replayRow, 0, replayChunk)
	for rows.Next() {
		chunk = append(chunk, replayRow{})
		r := &chunk[len(chunk)-1]
		if err := rows.Scan(&r.seq, &r.id, &r.d.at, &r.d.body, &r.v.at, &r.v.body, &r.args); err != nil {
			return fmt.Errorf("audit: replay: %w", err)
		}
		if len(chunk) == replayChunk {
			select {
			case out <- chunk:
			case <-ctx.Done():
				return nil
			}
			chunk = make([]replayRow, 0, replayChunk)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: replay: %w", err)
	}
	if len(chunk) > 0 {
		select {
		case out <- chunk:
		case <-ctx.Done():
		}
	}
	return nil
}
