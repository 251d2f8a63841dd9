package audit

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/toolgate/toolgate"
)

// decodeEvent decodes the body of a chained event of the given kind. It is
// the one place that knows how a body is laid out: the calls projection,
// its readers and verify's row check all read bodies through it.
func decodeEvent(kind string, body []byte) (*event, error) {
	var e event
	if err := json.Unmarshal(body, &e); err != nil {
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

// replayedCall is what a replay reads of a decision event: the call as the
// rules saw it (Args the stored ones) and the decision it got.
type replayedCall struct {
	call         toolgate.Call
	rule, effect string
	action       toolgate.Action
}

// decodeReplayed decodes from a decision event's body what a replay
// needs, and no more: replay reads every call, and decoding the whole
// Entry (its times, shadow results, the arguments as raw JSON to decode
// again) is most of its cost. args, when valid, are the row's arguments
// (a decision event that chains only their hash).
func decodeReplayed(body []byte, args sql.NullString) (replayedCall, error) {
	var v struct {
		Decision *struct {
			ID               string               `json:"id"`
			ReceivedAt       time.Time            `json:"received_at"`
			Client           toolgate.Peer        `json:"client"`
			Model            toolgate.Peer        `json:"model"`
			Principal        toolgate.Principal   `json:"principal"`
			Session          string               `json:"session"`
			Server           string               `json:"server"`
			ServerVersion    string               `json:"server_version"`
			Tool             string               `json:"tool"`
			Name             string               `json:"name"`
			Kind             string               `json:"kind"`
			SchemaHash       string               `json:"schema_hash"`
			Annotations      toolgate.Annotations `json:"annotations"`
			Args             map[string]any       `json:"args"`
			Confidence       *float64             `json:"confidence"`
			Rule             string               `json:"rule"`
			Action           toolgate.Action      `json:"action"`
			ConfidenceEffect string               `json:"confidence_effect"`
		} `json:"decision"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return replayedCall{}, fmt.Errorf("audit: decode decision event: %w", err)
	}
	d := v.Decision
	if d == nil {
		return replayedCall{}, errors.New("audit: decision event has no decision")
	}
	if args.Valid {
		d.Args = nil
		if err := json.Unmarshal([]byte(args.String), &d.Args); err != nil {
			return replayedCall{}, fmt.Errorf("audit: call %s: args: %w", d.ID, err)
		}
	}
	return replayedCall{
		call: toolgate.Call{
			ID: d.ID, Server: d.Server, Tool: d.Tool, Name: d.Name, Kind: d.Kind, Annotations: d.Annotations,
			SchemaHash: d.SchemaHash, ServerVersion: d.ServerVersion, Client: d.Client, Model: d.Model,
			Confidence: d.Confidence, SessionID: d.Session, Principal: d.Principal, Time: d.ReceivedAt, Args: d.Args,
		},
		rule: d.Rule, effect: d.ConfidenceEffect, action: d.Action,
	}, nil
}
