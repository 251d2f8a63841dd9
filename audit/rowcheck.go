package audit

import (
	"database/sql"
	"fmt"
	"strings"
)

// rowCols are what verify reads of a calls row: the columns the projection
// derives from the call's events (slimNames, in order; a ref as the string
// it names), the legacy arguments, and the at and body of the events the
// row points at.
var rowCols = func() string {
	cols := make([]string, len(slimNames))
	for i, c := range slimNames {
		cols[i] = "calls." + c
		if strings.HasSuffix(c, "_ref") {
			cols[i] = nameOf(cols[i])
		}
	}
	return strings.Join(cols, ", ") + ", calls.args, d.at, d.body, v.at, v.body, o.at, o.body"
}()

// rowFrom joins a row to the events it points at, keeping a row whose
// decision event is missing (verify names it).
const rowFrom = `calls LEFT JOIN events d ON d.seq = calls.seq LEFT JOIN events v ON v.seq = calls.verdict_seq
LEFT JOIN events o ON o.seq = calls.outcome_seq`

// slimNames name the derived columns, in rowCols' order.
var slimNames = []string{"seq", "id", "received_at", "client_ref", "model_ref", "model_version_ref",
	"session_ref", "server_ref", "tool_ref", "kind_ref", "user_ref", "rules_version_ref", "rules_label_ref",
	"rule_ref", "action", "auto_approved", "eval_failed", "status", "verdict_seq", "outcome_seq",
	"review_approved", "review_channel", "review_ms"}

// slimRow is a row's derived columns, each an int64, a string or nil
// (NULL).
type slimRow [23]any

// storedRow is a calls row as verify reads it.
type storedRow struct {
	cols            slimRow
	args            sql.NullString
	d, v, o         joined
	seq, vseq, oseq int64 // 0: NULL
	id, status      string
	rec             *Record // from the events the row points at; nil if they do not decode
	recErr          error
	// dStatus, vStatus and oStatus are the statuses of the events the
	// row points at, as decoded.
	dStatus, vStatus, oStatus string
}

// scanRawRow reads a row from rowCols; decode then reads its events.
func scanRawRow(sc scanner) (*storedRow, error) {
	var r storedRow
	dst := make([]any, 0, len(r.cols)+4)
	for i := range r.cols {
		dst = append(dst, &r.cols[i])
	}
	dst = append(dst, &r.args, &r.d.at, &r.d.body, &r.v.at, &r.v.body, &r.o.at, &r.o.body)
	if err := sc.Scan(dst...); err != nil {
		return nil, err
	}
	for i, c := range r.cols {
		switch v := c.(type) {
		case []byte:
			r.cols[i] = string(v)
		case bool: // a driver's boolean: stored 0/1
			r.cols[i] = int64(0)
			if v {
				r.cols[i] = int64(1)
			}
		case int32:
			r.cols[i] = int64(v)
		}
	}
	r.seq, _ = r.cols[0].(int64)
	r.id, _ = r.cols[1].(string)
	r.status, _ = r.cols[17].(string)
	r.vseq, _ = r.cols[18].(int64)
	r.oseq, _ = r.cols[19].(int64)
	return &r, nil
}

// decode reads the record the events the row points at hold.
func (r *storedRow) decode() {
	if !r.d.body.Valid {
		return
	}
	de, ve, oe, err := decodeJoined(r.id, &r.d, &r.v, &r.o)
	if r.recErr = err; err != nil {
		return
	}
	rec := Record{Status: r.status}
	rec.fill(de, ve, oe)
	r.rec = &rec
	r.dStatus = de.Status
	if ve != nil {
		r.vStatus = ve.Status
	}
	if oe != nil {
		r.oStatus = oe.Status
	}
}

// format1 reports whether the row's decision event is in format 1.
func (r *storedRow) format1() bool { return !isFormat2(r.d.body.String) }

// slimOf is the derived columns of the row of call r, whose decision,
// last verdict and last outcome events are seq, vseq and oseq (0: none).
func slimOf(r *Record, seq, vseq, oseq int64) slimRow {
	b := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	opt := func(n int64) any {
		if n == 0 {
			return nil
		}
		return n
	}
	s := slimRow{seq, r.ID, r.ReceivedAt.UnixNano(), r.Client.Name, r.Model.Name, r.Model.Version,
		r.Session, r.Server, r.Tool, kindColumn(r.Kind), r.Principal.User, r.RulesVersion, r.RulesLabel,
		r.Rule, string(r.Action), b(r.AutoApproved), b(r.EvalError != ""), r.Status, opt(vseq), opt(oseq)}
	if r.Review != nil {
		s[20], s[21], s[22] = b(r.Review.Approved), r.Review.Channel, r.Review.TimeToDecision.Milliseconds()
	}
	return s
}

// slimDiff names the columns where got differs from want ("" if none).
func slimDiff(want, got *slimRow) string {
	var out []string
	for i := range want {
		if want[i] != got[i] {
			out = append(out, fmt.Sprintf("%s: chained %s, row has %s", slimNames[i], short(want[i]), short(got[i])))
		}
	}
	return strings.Join(out, "; ")
}

// argsProblem says what is wrong with a row's legacy arguments given the
// arguments and hash its decision event chains ("" if nothing): a row
// holds them exactly when its format-1 event holds only their hash (a
// format-2 event without them is a call recorded with their hash only,
// whose arguments are stored nowhere).
func argsProblem(row sql.NullString, chained *Entry, format1 bool) string {
	inEvent := argsStored(chained.Args)
	switch {
	case !row.Valid && !inEvent && format1:
		return "row lacks the arguments its decision event chains only the hash of"
	case !row.Valid:
		return ""
	case !format1:
		return "args: row holds arguments its format-2 decision event does not"
	case inEvent && row.String != string(chained.Args):
		return "args: row's arguments differ from the chained ones"
	case !inEvent && argsHash([]byte(row.String)) != chained.ArgsHash:
		return "args: row's args do not match the chained args_hash"
	}
	return ""
}

// selfConsistent reports whether the row's derived columns and arguments
// are what the events it points at make them.
func (r *storedRow) selfConsistent() bool {
	if r.rec == nil {
		return false
	}
	want := slimOf(r.rec, r.seq, r.vseq, r.oseq)
	return want == r.cols && argsProblem(r.args, &r.rec.Entry, r.format1()) == ""
}
