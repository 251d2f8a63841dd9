package audit

import (
	"database/sql"
	"encoding/json"
	"fmt"
)

// recordCols are the columns scanRecord reads from recordFrom: the row's
// own state (what no event holds, or the latest status) and the at and
// body of its decision, verdict and outcome events, which a format-2 body
// needs to decode (chain.go).
const recordCols = `calls.seq, calls.id, calls.status, calls.slack_channel, calls.slack_ts, calls.args,
d.at, d.body, v.at, v.body, o.at, o.body`

// recordJoins join a calls row to its events by primary key.
const recordJoins = ` JOIN events d ON d.seq = calls.seq LEFT JOIN events v ON v.seq = calls.verdict_seq
LEFT JOIN events o ON o.seq = calls.outcome_seq`

// recordFrom is the FROM clause scanRecord's columns are read from.
const recordFrom = `calls` + recordJoins

type scanner interface{ Scan(dest ...any) error }

// joined is an event a calls row points at, as a LEFT JOIN reads it
// (body.Valid false: the row points at none).
type joined struct {
	at   sql.NullInt64
	body sql.NullString
}

// decode decodes the event of call id and kind.
func (j *joined) decode(id, kind string) (*event, error) {
	return decodeEvent(id, kind, j.at.Int64, j.body.String)
}

// rawRecord is a row read from recordCols, its events not decoded yet.
type rawRecord struct {
	r       Record
	args    sql.NullString
	d, v, o joined
}

// scanRaw reads a row from recordCols.
func scanRaw(sc scanner) (*rawRecord, error) {
	var w rawRecord
	err := sc.Scan(&w.r.Seq, &w.r.ID, &w.r.Status, &w.r.SlackChannel, &w.r.SlackTS, &w.args,
		&w.d.at, &w.d.body, &w.v.at, &w.v.body, &w.o.at, &w.o.body)
	return &w, err
}

// record decodes the row's events, its decision's context from look.
func (w *rawRecord) record(look ctxLookup) (*Record, error) {
	if err := w.r.load(w.r.ID, &w.d, &w.v, &w.o, w.args, look); err != nil {
		return nil, err
	}
	return &w.r, nil
}

// scanRecord reads a Record from recordCols.
func scanRecord(sc scanner, look ctxLookup) (*Record, error) {
	w, err := scanRaw(sc)
	if err != nil {
		return nil, err
	}
	return w.record(look)
}

// load fills r's entry, review and outcome from the events of call id (o
// may be nil: not read), its decision's context from look, and its row's
// legacy arguments.
func (r *Record) load(id string, d, v, o *joined, args sql.NullString, look ctxLookup) error {
	de, ve, oe, err := decodeJoined(id, d, v, o, look)
	if err != nil {
		return err
	}
	r.fill(de, ve, oe)
	if args.Valid {
		r.Args = json.RawMessage(args.String)
	}
	return nil
}

// fill sets r's entry, review and outcome from its decision event and its
// verdict and outcome events (nil: none).
func (r *Record) fill(de, ve, oe *event) {
	r.Entry = *de.Decision
	if ve != nil {
		r.Review = ve.Verdict
	}
	if oe != nil {
		r.Outcome = oe.Outcome
	}
}

// decodeJoined decodes the decision (its context from look), verdict and
// outcome events of call id a row points at; v and o may be nil (not read) or point at none, and
// give nil events then.
func decodeJoined(id string, d, v, o *joined, look ctxLookup) (de, ve, oe *event, err error) {
	if de, err = d.decode(id, kindDecision); err != nil {
		return nil, nil, nil, fmt.Errorf("audit: decision event of %s: %w", id, err)
	}
	if de.Decision == nil {
		return nil, nil, nil, fmt.Errorf("audit: decision event of %s has no decision", id)
	}
	if err = de.resolve(look); err != nil {
		return nil, nil, nil, fmt.Errorf("audit: decision event of %s: %w", id, err)
	}
	if v != nil && v.body.Valid {
		if ve, err = v.decode(id, kindVerdict); err != nil {
			return nil, nil, nil, fmt.Errorf("audit: verdict event of %s: %w", id, err)
		}
	}
	if o != nil && o.body.Valid {
		if oe, err = o.decode(id, kindOutcome); err != nil {
			return nil, nil, nil, fmt.Errorf("audit: outcome event of %s: %w", id, err)
		}
	}
	return de, ve, oe, nil
}
