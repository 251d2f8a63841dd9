package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// maxProblems bounds how many problems Verify lists.
const maxProblems = 100

// VerifyReport is the result of Verify.
type VerifyReport struct {
	// Events and Calls are how many chain events and call rows were checked.
	Events int64 `json:"events"`
	Calls  int64 `json:"calls"`
	// Head is the hash of the last event. Keep a copy elsewhere to detect
	// truncation of the log's tail, which a hash chain alone cannot.
	Head string `json:"head"`
	// Problems lists what is wrong, chain breaks (in event order) first,
	// then rows that disagree with their events (in id order). At most
	// 100 are listed; More says there were more.
	Problems []Problem `json:"problems,omitempty"`
	More     bool      `json:"more,omitempty"`
}

// Problem is one broken link or altered row.
type Problem struct {
	// Seq is the event's sequence number; 0 for a problem with a calls row.
	Seq int64 `json:"seq,omitempty"`
	// CallID is the call the broken event or row belongs to.
	CallID string `json:"call_id,omitempty"`
	// What says what mismatched.
	What string `json:"what"`
}

func (p Problem) String() string {
	switch {
	case p.Seq > 0:
		return fmt.Sprintf("event %d (call %s): %s", p.Seq, p.CallID, p.What)
	default:
		return fmt.Sprintf("call %s: %s", p.CallID, p.What)
	}
}

// OK reports whether the log verified cleanly.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// First returns the first problem, or nil.
func (r *VerifyReport) First() *Problem {
	if len(r.Problems) == 0 {
		return nil
	}
	return &r.Problems[0]
}

func (r *VerifyReport) add(p Problem) {
	if len(r.Problems) >= maxProblems {
		r.More = true
		return
	}
	r.Problems = append(r.Problems, p)
}

// Verify checks the log's tamper evidence in two streaming passes:
//  1. the events chain: each event's prev_hash is the previous event's hash
//     and its hash is sha256(prev_hash || body);
//  2. every calls row equals the record rebuilt from its events (so an
//     UPDATE of any chained column is caught), every row has events and
//     every event has a row.
//
// Slack message locations and Seq are not covered. An error means Verify
// could not read the DB; a tampered log is reported in the VerifyReport.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	if err := s.catchUp(ctx); err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	// One read transaction: the chain and the rows are checked against
	// the same snapshot, so a call committed between the two reads is not
	// reported as a mismatch.
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	defer tx.Rollback()
	if err := verifyChain(ctx, tx, &rep); err != nil {
		return rep, err
	}
	if err := verifyRows(ctx, tx, &rep); err != nil {
		return rep, err
	}
	if err := s.verifyRulesets(ctx, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

func verifyChain(ctx context.Context, tx *sql.Tx, rep *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, call_id, body, prev_hash, hash FROM events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	prev := ""
	var (
		seq                        int64
		id, body, prevHash, stored string
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &id, &body, &prevHash, &stored); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		rep.Events++
		if prevHash != prev {
			rep.add(Problem{Seq: seq, CallID: id, What: fmt.Sprintf("prev_hash %.12s… does not match the previous event's hash %.12s… (event missing, reordered or inserted)", prevHash, prev)})
		}
		if h := chainHash(prevHash, []byte(body)); h != stored {
			rep.add(Problem{Seq: seq, CallID: id, What: fmt.Sprintf("hash mismatch: body hashes to %.12s…, stored %.12s… (event body altered)", h, stored)})
		}
		prev = stored
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	rep.Head = prev
	return nil
}

type evRow struct {
	seq        int64
	callID     string
	kind, body string
}

func verifyRows(ctx context.Context, tx *sql.Tx, rep *VerifyReport) error {
	calls, err := tx.QueryContext(ctx, `SELECT `+recordCols+` FROM calls ORDER BY id`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer calls.Close()
	// Rows reflect the events up to the projection's watermark; later ones
	// (committed since the last projection) are checked by the chain only.
	evs, err := tx.QueryContext(ctx, `SELECT seq, call_id, kind, body FROM events
		WHERE seq <= (SELECT seq FROM projection WHERE name = 'calls') ORDER BY call_id, seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer evs.Close()

	var (
		pending *evRow // next event not yet consumed
		evErr   error
	)
	next := func() *evRow {
		if pending != nil {
			e := pending
			pending = nil
			return e
		}
		if !evs.Next() {
			evErr = evs.Err()
			return nil
		}
		var e evRow
		if evErr = evs.Scan(&e.seq, &e.callID, &e.kind, &e.body); evErr != nil {
			return nil
		}
		return &e
	}
	orphan := func(e *evRow) {
		if e.kind == kindToken {
			return // a token's events belong to no call
		}
		if standaloneKinds[e.kind] || e.kind == kindRulesLoad || e.kind == kindRulesRollback {
			checkStandalone(rep, e)
			return
		}
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "event has no calls row (row deleted?)"})
	}
	for calls.Next() {
		row, err := scanRecord(calls)
		if err != nil {
			rep.add(Problem{What: "unreadable calls row: " + err.Error()})
			continue
		}
		rep.Calls++
		var want Record
		n := 0
		for {
			e := next()
			if e == nil {
				break
			}
			if e.callID < row.ID {
				orphan(e)
				continue
			}
			if e.callID > row.ID {
				pending = e
				break
			}
			var ev event
			if err := json.Unmarshal([]byte(e.body), &ev); err != nil {
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "event body is not valid JSON: " + err.Error()})
				continue
			}
			switch {
			case ev.ID != e.callID || ev.Kind != e.kind:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("event columns (%s, %s) disagree with its body (%s, %s)", e.callID, e.kind, ev.ID, ev.Kind)})
			case n == 0 && ev.Kind != kindDecision:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "first event of the call is " + ev.Kind + ", not a decision"})
			case n > 0 && ev.Kind == kindDecision:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "second decision event for the call"})
			}
			want.fold(&ev)
			n++
		}
		if evErr != nil {
			return fmt.Errorf("audit: verify: %w", evErr)
		}
		if n == 0 {
			rep.add(Problem{CallID: row.ID, What: "calls row has no events (inserted outside toolgate?)"})
			continue
		}
		got := *row
		got.Seq, got.SlackChannel, got.SlackTS = 0, "", ""
		if a := string(want.Args); a == "" || a == "null" {
			// The decision event chains the arguments' hash only (logs
			// written before that chain the arguments themselves).
			if argsHash(got.Args) != want.ArgsHash {
				rep.add(Problem{CallID: row.ID, What: "row's args do not match the chained args_hash"})
			}
			want.Args = got.Args // compared by hash; the diff below names the other columns
		}
		if diff := recordDiff(&want, &got); diff != "" {
			rep.add(Problem{CallID: row.ID, What: "row differs from its chained events: " + diff})
		}
	}
	if err := calls.Err(); err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	for e := next(); e != nil; e = next() {
		orphan(e)
	}
	if evErr != nil {
		return fmt.Errorf("audit: verify: %w", evErr)
	}
	return nil
}

// recordDiff names the fields where got differs from want ("" if none).
func recordDiff(want, got *Record) string {
	wb, err1 := json.Marshal(want)
	gb, err2 := json.Marshal(got)
	if err1 == nil && err2 == nil && bytes.Equal(wb, gb) {
		return ""
	}
	var wm, gm map[string]any
	json.Unmarshal(wb, &wm)
	json.Unmarshal(gb, &gm)
	var diffs []string
	diffMaps("", wm, gm, &diffs)
	if len(diffs) == 0 {
		return "encoding differs"
	}
	return strings.Join(diffs, "; ")
}

func diffMaps(prefix string, want, got map[string]any, out *[]string) {
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		w, g := want[k], got[k]
		if reflect.DeepEqual(w, g) {
			continue
		}
		wm, ok1 := w.(map[string]any)
		gm, ok2 := g.(map[string]any)
		if ok1 && ok2 {
			diffMaps(prefix+k+".", wm, gm, out)
			continue
		}
		*out = append(*out, fmt.Sprintf("%s%s: chained %s, row has %s", prefix, k, short(w), short(g)))
	}
}

func short(v any) string {
	if v == nil {
		return "nothing"
	}
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// checkStandalone checks an event that belongs to no call (standaloneKinds):
// its columns must agree with its body, so that a call's event cannot hide
// from the row check by a changed kind column.
func checkStandalone(rep *VerifyReport, e *evRow) {
	var b struct{ Kind, ID string }
	if err := json.Unmarshal([]byte(e.body), &b); err != nil {
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "event body is not valid JSON: " + err.Error()})
		return
	}
	if b.Kind != e.kind || b.ID != e.callID {
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("event columns (%s, %s) disagree with its body (%s, %s)", e.callID, e.kind, b.ID, b.Kind)})
	}
}
