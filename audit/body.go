package audit

import (
	"database/sql"
	"encoding/json"
	"fmt"

	jsonv1 "github.com/go-json-experiment/json/v1"
)

// decodeEvent decodes the body of a chained event of the given kind. It is
// the one place that knows how a body is laid out: the calls projection,
// its readers (list, show, export, replay, the web UI) and verify's row
// check all read bodies through it. It decodes as encoding/json does
// (jsonv1: the same rules on the v2 engine, which decodes these bodies in
// about half the time, and replay and export decode one per call).
func decodeEvent(kind string, body []byte) (*event, error) {
	var e event
	if err := jsonv1.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("audit: decode %s event: %w", kind, err)
	}
	return &e, nil
}

// recordCols are the columns scanRecord reads from recordFrom: the row's
// own state (what no event holds, or the latest status) and the bodies of
// its decision, verdict and outcome events.
const recordCols = `calls.seq, calls.status, calls.slack_channel, calls.slack_ts, calls.args, d.body, v.body, o.body`

// recordJoins join a calls row to its events by primary key.
const recordJoins = ` JOIN events d ON d.seq = calls.seq LEFT JOIN events v ON v.seq = calls.verdict_seq
LEFT JOIN events o ON o.seq = calls.outcome_seq`

// recordFrom is the FROM clause scanRecord's columns are read from.
const recordFrom = `calls` + recordJoins

type scanner interface{ Scan(dest ...any) error }

// scanRecord reads a Record from recordCols.
func scanRecord(sc scanner) (*Record, error) {
	var (
		r                   Record
		args, vbody, obody  sql.NullString
		dbody               string
		status, slackC, slk string
	)
	if err := sc.Scan(&r.Seq, &status, &slackC, &slk, &args, &dbody, &vbody, &obody); err != nil {
		return nil, err
	}
	if err := r.load(dbody, vbody, obody, args); err != nil {
		return nil, err
	}
	r.Status, r.SlackChannel, r.SlackTS = status, slackC, slk
	return &r, nil
}

// load fills r from its events' bodies and its row's legacy arguments.
func (r *Record) load(dbody string, vbody, obody, args sql.NullString) error {
	d, err := decodeEvent(kindDecision, []byte(dbody))
	if err != nil {
		return err
	}
	if d.Decision == nil {
		return fmt.Errorf("audit: decision event of %s has no decision", d.ID)
	}
	r.Entry = *d.Decision
	if args.Valid {
		r.Args = json.RawMessage(args.String)
	}
	if vbody.Valid {
		v, err := decodeEvent(kindVerdict, []byte(vbody.String))
		if err != nil {
			return err
		}
		r.Review = v.Verdict
	}
	if obody.Valid {
		o, err := decodeEvent(kindOutcome, []byte(obody.String))
		if err != nil {
			return err
		}
		r.Outcome = o.Outcome
	}
	return nil
}
