package audit

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// rowCols are what verify's detailed pass reads of a calls row: the
// columns the projection derives from the call's events (slimNames, in
// order; a ref as the string it names), the legacy arguments, and the at
// and body of the events the row points at.
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

// fastRowCols are what verify's fast pass reads of a calls row: its
// derived columns (refs as ids, named from the names table in memory) and
// the legacy arguments.
var fastRowCols = "calls." + strings.Join(slimNames, ", calls.") + ", calls.args"

// slimNames name the derived columns, in rowCols' order.
var slimNames = []string{"seq", "id", "received_at", "client_ref", "model_ref", "model_version_ref",
	"session_ref", "server_ref", "tool_ref", "kind_ref", "user_ref", "rules_version_ref", "rules_label_ref",
	"rule_ref", "action", "auto_approved", "eval_failed", "status", "verdict_seq", "outcome_seq",
	"review_approved", "review_channel", "review_ms"}

// Indexes into slimRow: the decision's columns are slimID..slimEntryEnd,
// the verdict's slimReview..slimReviewEnd.
const (
	slimID         = 1
	slimEntryEnd   = 16
	slimStatus     = 17
	slimVerdictSeq = 18
	slimOutcomeSeq = 19
	slimReview     = 20
	slimReviewEnd  = 22
)

// slimRow is a row's derived columns, each an int64, a string or nil
// (NULL).
type slimRow [23]any

// storedRow is a calls row as the detailed pass reads it.
type storedRow struct {
	cols            slimRow
	args            sql.NullString
	d, v, o         joined
	seq, vseq, oseq int64 // 0: NULL
	id, status      string
	recErr          error // the events the row points at do not decode
}

// scanSlim scans a row's derived columns into cols, then rest, and
// normalizes what drivers return to int64, string or nil. dst holds the
// destinations, kept from row to row.
func scanSlim(sc scanner, dst *[]any, cols *slimRow, rest ...any) error {
	d := (*dst)[:0]
	for i := range cols {
		d = append(d, &cols[i])
	}
	*dst = append(d, rest...)
	if err := sc.Scan(*dst...); err != nil {
		return err
	}
	for i, c := range cols {
		switch v := c.(type) {
		case []byte:
			cols[i] = string(v)
		case bool: // a driver's boolean: stored 0/1
			cols[i] = int64(0)
			if v {
				cols[i] = int64(1)
			}
		case int32:
			cols[i] = int64(v)
		}
	}
	return nil
}

// scanRawRow reads a row from rowCols; decode then reads its events.
func scanRawRow(sc scanner) (*storedRow, error) {
	var (
		r   storedRow
		dst []any
	)
	if err := scanSlim(sc, &dst, &r.cols, &r.args, &r.d.at, &r.d.body, &r.v.at, &r.v.body, &r.o.at, &r.o.body); err != nil {
		return nil, err
	}
	r.seq, _ = r.cols[0].(int64)
	r.id, _ = r.cols[slimID].(string)
	r.status, _ = r.cols[slimStatus].(string)
	r.vseq, _ = r.cols[slimVerdictSeq].(int64)
	r.oseq, _ = r.cols[slimOutcomeSeq].(int64)
	return &r, nil
}

// decode checks that the events the row points at decode, its
// decision's context from the context events before it in cxs.
func (r *storedRow) decode(cxs *ctxReader) {
	if r.d.body.Valid {
		_, _, _, r.recErr = decodeJoined(r.id, &r.d, &r.v, &r.o, cxs.before(r.seq))
	}
}

// slimBool is a boolean column's value.
func slimBool(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// slimEntry sets the decision's columns of s from e.
func slimEntry(s *slimRow, e *Entry) {
	copy(s[slimID:slimEntryEnd+1], []any{e.ID, e.ReceivedAt.UnixNano(), e.Client.Name, e.Model.Name, e.Model.Version,
		e.Session, e.Server, e.Tool, kindColumn(e.Kind), e.Principal.User, e.RulesVersion, e.RulesLabel,
		e.Rule, string(e.Action), slimBool(e.AutoApproved), slimBool(e.EvalError != "")})
}

// slimVerdict sets the verdict's columns of s from r (nil: none).
func slimVerdict(s *slimRow, r *Review) {
	if r != nil {
		s[slimReview], s[slimReview+1], s[slimReviewEnd] = slimBool(r.Approved), r.Channel, r.TimeToDecision.Milliseconds()
	}
}

// slimOf is the derived columns of the row of call r, whose decision,
// last verdict and last outcome events are seq, vseq and oseq (0: none).
func slimOf(r *Record, seq, vseq, oseq int64) slimRow {
	opt := func(n int64) any {
		if n == 0 {
			return nil
		}
		return n
	}
	s := slimRow{seq}
	slimEntry(&s, &r.Entry)
	s[slimStatus], s[slimVerdictSeq], s[slimOutcomeSeq] = r.Status, opt(vseq), opt(oseq)
	slimVerdict(&s, r.Review)
	return s
}

// slimKey is the digest of the columns of s from..to (inclusive): equal
// digests mean equal values (each is encoded with its type and length).
func slimKey(s *slimRow, from, to int) digest {
	var buf [256]byte
	b := buf[:0]
	for _, v := range s[from : to+1] {
		switch x := v.(type) {
		case int64:
			b = strconv.AppendInt(append(b, 'i'), x, 10)
		case string:
			b = strconv.AppendInt(append(b, 's'), int64(len(x)), 10)
			b = append(append(b, ':'), x...)
		case nil:
			b = append(b, 'n')
		default: // no event gives any other type
			b = append(b, 'x')
		}
		b = append(b, ';')
	}
	return sha256.Sum256(b)
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
