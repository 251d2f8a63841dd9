package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"

	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/toolgate/toolgate"
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

// Verify checks the log's tamper evidence:
//  1. the events chain, in either format (chain.go): each event's hash
//     binds it to the event before it;
//  2. every calls row points at its call's decision event and its last
//     verdict and outcome events, and its columns (slimNames) are what
//     those events make them (so an UPDATE of any derived column is
//     caught); every row has events and every event has a row.
//
// Slack message locations and a review's state are not covered. An error
// means Verify could not read the DB; a tampered log is reported in the
// VerifyReport.
//
// The events and the rows are read at once on two connections whose
// snapshots hold the same events; GOMAXPROCS workers hash the events and
// decode the ones the rows do not point at, and decode the events each row
// points at (verifyFast); the chain is still checked in order. That pass
// proves a clean log; when it finds anything amiss, verifyRows, the
// detailed pass, re-checks the rows and names each problem, so the report
// is the same either way.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	if err := s.catchUp(ctx); err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	evTx, rowTx, err := s.snapshotPair(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	defer evTx.Rollback()
	if rowTx != nil {
		defer rowTx.Rollback()
	}
	// An archived log's chain starts at the archived head (archive.go).
	base, err := chainBase(ctx, evTx)
	if err != nil {
		return rep, err
	}
	mark, err := watermark(ctx, evTx)
	if err != nil {
		return rep, err
	}
	clean, err := verifyFast(ctx, evTx, rowTx, &rep, base, mark)
	if err != nil {
		return rep, err
	}
	if err := verifyKept(ctx, evTx, &rep, base); err != nil {
		return rep, err
	}
	// Archives are SQLite files: a log on PostgreSQL is none (and probing
	// it for an archive's table would end evTx's transaction).
	if err := verifyBase(ctx, evTx, &rep, base, s.pg == nil); err != nil {
		return rep, err
	}
	if !clean {
		rep.Calls = 0
		if err := s.verifyRowsIn(ctx, evTx, rowTx, &rep); err != nil {
			return rep, err
		}
	}
	if err := s.verifyRulesets(ctx, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// snapshotPair opens two read transactions that see the same events. The
// events table is append-only and every change to a chained column of a
// calls row commits with an event, so two snapshots with the same last
// event hold the same chained rows: the chain and the rows are checked
// against one state of the log even though they are read on two
// connections. When writers keep the snapshots apart, rowTx is nil and
// both are read from evTx.
func (s *Store) snapshotPair(ctx context.Context) (evTx, rowTx *sql.Tx, err error) {
	// Rows are projected behind the events, in transactions of their
	// own: the two snapshots must agree on the projection too.
	type state struct{ last, mark int64 }
	last := func(tx *sql.Tx) (state, error) {
		var n state
		err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0), (SELECT seq FROM projection WHERE name = 'calls') FROM events`).Scan(&n.last, &n.mark)
		return n, err
	}
	if s.pg != nil {
		if evTx, err = s.rdb.BeginTx(ctx, nil); err != nil {
			return nil, nil, err
		}
		if rowTx, err = s.pg.sameSnapshot(ctx, s.rdb, evTx); err != nil {
			evTx.Rollback()
			return nil, nil, err
		}
		return evTx, rowTx, nil
	}
	for range 3 {
		if evTx, err = s.rdb.BeginTx(ctx, nil); err != nil {
			return nil, nil, err
		}
		a, err := last(evTx)
		if err != nil {
			evTx.Rollback()
			return nil, nil, err
		}
		if rowTx, err = s.rdb.BeginTx(ctx, nil); err != nil {
			evTx.Rollback()
			return nil, nil, err
		}
		b, err := last(rowTx)
		if err == nil && a == b {
			return evTx, rowTx, nil
		}
		rowTx.Rollback()
		evTx.Rollback()
		if err != nil {
			return nil, nil, err
		}
	}
	evTx, err = s.rdb.BeginTx(ctx, nil)
	return evTx, nil, err
}

// watermark is the last event the calls rows in q's snapshot reflect.
func watermark(ctx context.Context, q querier) (int64, error) {
	var mark int64
	if err := q.QueryRowContext(ctx, `SELECT seq FROM projection WHERE name = 'calls'`).Scan(&mark); err != nil {
		return 0, fmt.Errorf("audit: verify: read projection watermark: %w", err)
	}
	return mark, nil
}

// verifyChain checks the chain of the events in tx after base, the first
// of which follows base (the zero ChainPoint for the genesis).
func verifyChain(ctx context.Context, tx *sql.Tx, rep *VerifyReport, base ChainPoint) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+chainCols+` FROM events WHERE seq > ? ORDER BY seq`, base.Seq)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	p := hashRaw(base.Hash)
	var (
		e evItem
		x eventHasher
	)
	for rows.Next() {
		if err := e.scan(rows); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		rep.Events++
		e.check(&x, p)
		p = e.link(rep, p)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	rep.Head = hashHex(p)
	return nil
}

// chainCols are the events columns evItem.scan reads.
const chainCols = `seq, call_id, kind, at, body, prev_hash, hash`

func (e *evItem) scan(sc scanner) error {
	*e = evItem{}
	return sc.Scan(&e.seq, &e.callID, &e.kind, &e.at, &e.body, &e.prevHash, &e.hash)
}

// check hashes e with x as following the event hashed prev (raw): hashOK
// says its stored hash is right. A format-1 event names its predecessor in
// prev_hash and is hashed with it, so that a broken link and an altered
// event are told apart; a format-2 event is hashed with prev.
func (e *evItem) check(x *eventHasher, prev []byte) {
	if !isFormat2(e.body) {
		h := x.sum(hashRaw(e.prevHash), e.callID, e.kind, e.at, e.body)
		e.hashOK = hashHex(e.hash) == hex.EncodeToString(h)
		return
	}
	e.hashOK = e.prevHash == "" && bytes.Equal(x.sum(prev, e.callID, e.kind, e.at, e.body), e.hash)
}

// link reports e's problems as the event after the one hashed prev (raw),
// and returns e's hash, raw.
func (e *evItem) link(rep *VerifyReport, prev []byte) []byte {
	format1 := !isFormat2(e.body)
	if format1 && e.prevHash != hashHex(prev) {
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("prev_hash %.12s… does not match the previous event's hash %.12s… (event missing, reordered or inserted)", e.prevHash, hashHex(prev))})
	}
	switch {
	case e.hashOK:
	case format1:
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("hash mismatch: body hashes to %.12s…, stored %.12s… (event body altered)",
			hex.EncodeToString(eventHash(hashRaw(e.prevHash), e.callID, e.kind, e.at, e.body)), hashHex(e.hash))})
	case e.prevHash != "":
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "prev_hash is set on a format-2 event (event altered)"})
	default:
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("hash mismatch: event hashes to %.12s…, stored %.12s… (event altered, or the event before it missing, reordered or inserted)",
			hex.EncodeToString(eventHash(prev, e.callID, e.kind, e.at, e.body)), hashHex(e.hash))})
	}
	return storedRaw(e.hash)
}

// storedRaw is a stored hash (raw, or format 1's hex text) as raw bytes.
func storedRaw(h []byte) []byte {
	if len(h) == sha256.Size {
		return h
	}
	return hashRaw(string(h))
}

type evRow struct {
	seq        int64
	callID     string
	kind, body string
	at         int64
}

// verifyRowsIn runs verifyRows on a snapshotPair. verifyRows reads two
// result sets at once, which one PostgreSQL connection cannot: there the
// events are read on rowTx, which shares evTx's snapshot.
func (s *Store) verifyRowsIn(ctx context.Context, evTx, rowTx *sql.Tx, rep *VerifyReport) error {
	etx := evTx
	if s.pg != nil {
		etx = rowTx
	}
	return verifyRows(ctx, evTx, etx, rep)
}

// verifyRows checks the calls rows (read in tx) against their events (read
// in etx, which sees the same snapshot).
func verifyRows(ctx context.Context, tx, etx *sql.Tx, rep *VerifyReport) error {
	calls, err := tx.QueryContext(ctx, `SELECT `+rowCols+` FROM `+rowFrom+` ORDER BY calls.id`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer calls.Close()
	// Rows reflect the events up to the projection's watermark; later ones
	// (committed since the last projection) are checked by the chain only.
	evs, err := etx.QueryContext(ctx, `SELECT seq, call_id, kind, body, at FROM events
		WHERE seq <= (SELECT seq FROM projection WHERE name = 'calls') ORDER BY call_id, seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer evs.Close()

	var (
		pending *evRow // next event not yet consumed
		evErr   error
		// cxs are the context events (call_id "": read before any call's).
		cxs = newCtxReader(ctx, nil)
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
		if evErr = evs.Scan(&e.seq, &e.callID, &e.kind, &e.body, &e.at); evErr != nil {
			return nil
		}
		return &e
	}
	orphan := func(e *evRow) {
		if e.kind == kindToken {
			return // a token's events belong to no call
		}
		if e.kind == kindContext {
			if what := cxs.put(e.seq, e.callID, e.kind, e.at, e.body); what != "" {
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: what})
			}
			return
		}
		if standaloneKinds[e.kind] || e.kind == kindRulesLoad || e.kind == kindRulesRollback {
			if what := standaloneProblem(e.callID, e.kind, e.body); what != "" {
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: what})
			}
			return
		}
		rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "event has no calls row (row deleted?)"})
	}
	for calls.Next() {
		row, err := scanRawRow(calls)
		if err != nil {
			rep.add(Problem{What: "unreadable calls row: " + err.Error()})
			continue
		}
		rep.Calls++
		var (
			want                   Record
			decSeq, verSeq, outSeq int64
			format1                bool // of the decision event
		)
		n := 0
		for {
			e := next()
			if e == nil {
				break
			}
			if e.callID < row.id {
				orphan(e)
				continue
			}
			if e.callID > row.id {
				pending = e
				break
			}
			ev, err := decodeEvent(e.callID, e.kind, e.at, e.body)
			if err != nil {
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "event body is not valid JSON: " + err.Error()})
				continue
			}
			if err := ev.resolve(cxs.before(e.seq)); err != nil {
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: err.Error()})
				continue
			}
			switch {
			case ev.ID != e.callID || ev.Kind != e.kind:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("event columns (%s, %s) disagree with its body (%s, %s)", e.callID, e.kind, ev.ID, ev.Kind)})
			case n == 0 && ev.Kind != kindDecision:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "first event of the call is " + ev.Kind + ", not a decision"})
			case n > 0 && ev.Kind == kindDecision:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "second decision event for the call"})
			case ev.Kind == kindOutcome && want.Status != toolgate.StatusStarted:
				rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("outcome event for a call that is %s, not started (one outcome per call)", want.Status)})
			}
			want.fold(ev)
			switch ev.Kind {
			case kindDecision:
				if decSeq == 0 {
					decSeq, format1 = e.seq, !isFormat2(e.body)
				}
			case kindVerdict:
				verSeq = e.seq
			case kindOutcome:
				outSeq = e.seq
			}
			n++
		}
		if evErr != nil {
			return fmt.Errorf("audit: verify: %w", evErr)
		}
		if n == 0 {
			rep.add(Problem{CallID: row.id, What: "calls row has no events (inserted outside toolgate?)"})
			continue
		}
		row.decode(cxs)
		switch {
		case !row.d.body.Valid:
			rep.add(Problem{CallID: row.id, What: fmt.Sprintf("calls row points at no event (seq %d)", row.seq)})
		case row.recErr != nil:
			rep.add(Problem{CallID: row.id, What: "calls row points at an unreadable event: " + row.recErr.Error()})
		}
		wantCols := slimOf(&want, decSeq, verSeq, outSeq)
		if diff := slimDiff(&wantCols, &row.cols); diff != "" {
			rep.add(Problem{CallID: row.id, What: "row differs from its chained events: " + diff})
		}
		if p := argsProblem(row.args, &want.Entry, format1); p != "" {
			rep.add(Problem{CallID: row.id, What: p})
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

// standaloneProblem checks an event that belongs to no call
// (standaloneKinds, rules events): its columns must agree with its body, so
// that a call's event cannot hide from the row check by a changed kind
// column. It says what is wrong ("" if nothing).
func standaloneProblem(id, kind, body string) string {
	var b struct{ Kind, ID string }
	if err := jsonv1.Unmarshal([]byte(body), &b); err != nil {
		return "event body is not valid JSON: " + err.Error()
	}
	if b.Kind != kind || b.ID != id {
		return fmt.Sprintf("event columns (%s, %s) disagree with its body (%s, %s)", id, kind, b.ID, b.Kind)
	}
	return ""
}

// verifyChunk is how many events or rows the fast pass reads per batch.
const verifyChunk = 512

// digest is a sha256 by which the fast pass compares a row's columns with
// what its events make them (slimKey).
type digest [sha256.Size]byte

// evItem is one event as read, and what a worker computed from it.
type evItem struct {
	seq                          int64
	callID, kind, body, prevHash string
	at                           int64
	hash                         []byte

	hashOK bool // the stored hash is the event's (see check)
	// headerOK says the body decodes, a format-1 body's kind and id are
	// the columns', and a standalone event's body names its columns.
	headerOK bool
	status   string
	// entry and review are the slimKeys of a decision's and a verdict's
	// columns, when the event has one (hasPart).
	entry, review digest
	hasPart       bool
	// args is what the row check needs of a decision's arguments.
	args argsState
}

// argsState is what a calls row's legacy args column is checked against
// (argsProblem): whether the decision event is format 1 and holds the
// arguments, and the hash it holds when it does not.
type argsState struct {
	format1, inEvent bool
	hash             string
}

// ok reports whether a row's args column fits; false may also mean that
// only the detailed pass can tell.
func (a *argsState) ok(row sql.NullString) bool {
	if !row.Valid {
		return a.inEvent || !a.format1
	}
	return a.format1 && !a.inEvent && argsHash([]byte(row.String)) == a.hash
}

// read decodes the event (scanRowFields, decodeEvent for a body it
// leaves), a decision's context from the context events before it in cxs,
// and digests what the row check needs of it. The hash is checked by
// check, in order.
func (e *evItem) read(cxs *ctxReader) {
	switch e.kind {
	case kindToken:
		return
	case kindContext:
		_, err := cxs.get(e.seq) // put by the reader, unless it does not decode
		e.headerOK = err == nil && e.callID == ""
		return
	}
	if standaloneKinds[e.kind] || e.kind == kindRulesLoad || e.kind == kindRulesRollback {
		e.headerOK = standaloneProblem(e.callID, e.kind, e.body) == ""
		return
	}
	var (
		f       rowFields
		dec     *Entry
		verdict *Review
	)
	if f.scanRowFields(e.callID, e.body) {
		status, d, r := f.parts()
		if resolveCx(f.cx, d, cxs.before(e.seq)) != nil {
			return
		}
		e.headerOK = true
		e.status, dec, verdict = status, d, r
	} else {
		ev, err := decodeEvent(e.callID, e.kind, e.at, e.body)
		if err != nil || ev.resolve(cxs.before(e.seq)) != nil {
			return
		}
		e.headerOK = ev.ID == e.callID && ev.Kind == e.kind
		e.status, dec, verdict = ev.Status, ev.Decision, ev.Verdict
	}
	var s slimRow
	switch {
	case e.kind == kindDecision && dec != nil:
		slimEntry(&s, dec)
		e.entry, e.hasPart = slimKey(&s, slimID, slimEntryEnd), true
		e.args = argsState{format1: !isFormat2(e.body), inEvent: argsStored(dec.Args)}
		if e.args.format1 && !e.args.inEvent {
			e.args.hash = dec.ArgsHash
		}
	case e.kind == kindVerdict && verdict != nil:
		slimVerdict(&s, verdict)
		e.review, e.hasPart = slimKey(&s, slimReview, slimReviewEnd), true
	}
}

// statusConst is status as the constant of that name, so that a call's
// fold state does not keep the event body it was scanned from alive.
func statusConst(status string) string {
	for _, c := range [...]string{toolgate.StatusOK, toolgate.StatusStarted, toolgate.StatusRefused, toolgate.StatusPending,
		toolgate.StatusToolError, toolgate.StatusFailed, toolgate.StatusGranted, toolgate.StatusInterrupted, toolgate.StatusCancelled} {
		if status == c {
			return c
		}
	}
	return status
}

// foldState is what the fast pass needs of a call's events folded in
// order (see Record.fold): which events its row must point at, and its
// columns by digest.
type foldState struct {
	status string
	n      int
	// decSeq, verSeq and outSeq are the call's decision event and its last
	// verdict and outcome events (0: none), which its row points at.
	decSeq, verSeq, outSeq int64
	entry, review          digest
	hasEntry, hasReview    bool
	args                   argsState
	// bad marks a problem the detailed pass names if the call has a row;
	// orphanBad one it names if the call has none.
	bad, orphanBad bool
}

func (st *foldState) fold(e *evItem) {
	switch {
	case e.kind == kindToken:
	case standaloneKinds[e.kind] || e.kind == kindRulesLoad || e.kind == kindRulesRollback || e.kind == kindContext:
		st.orphanBad = st.orphanBad || !e.headerOK
	default:
		st.orphanBad = true
	}
	if !e.headerOK || (st.n == 0) != (e.kind == kindDecision) || (e.kind == kindOutcome && st.status != toolgate.StatusStarted) {
		st.bad = true
	}
	st.n++
	st.status = statusConst(e.status)
	switch e.kind {
	case kindDecision:
		if st.decSeq == 0 {
			st.decSeq, st.entry, st.hasEntry, st.args = e.seq, e.entry, e.hasPart, e.args
		}
	case kindVerdict:
		st.verSeq, st.review, st.hasReview = e.seq, e.review, e.hasPart
	case kindOutcome:
		st.outSeq = e.seq
	}
}

// rowItem is a calls row as the fast pass compares it with its events:
// which events it points at, its status, and its columns by digest.
type rowItem struct {
	id, status      string
	seq, vseq, oseq int64
	entry, review   digest
	hasReview       bool
	args            sql.NullString
	// ok says the row was read and each of its refs names a string.
	ok bool
}

// newRowItem digests the row's columns cols, its refs named by names.
func newRowItem(cols *slimRow, args sql.NullString, names map[int64]string) rowItem {
	r := rowItem{args: args, ok: true}
	for i, c := range slimNames {
		if !strings.HasSuffix(c, "_ref") {
			continue
		}
		id, ok := cols[i].(int64)
		name, found := names[id]
		r.ok = r.ok && ok && found
		cols[i] = name
	}
	// The columns compared outside the digests must have the types the
	// detailed pass wants (slimOf), so that equal values mean equal rows.
	var seqOK, statusOK, vOK, oOK bool
	r.seq, seqOK = cols[0].(int64)
	r.status, statusOK = cols[slimStatus].(string)
	r.vseq, vOK = optSeq(cols[slimVerdictSeq])
	r.oseq, oOK = optSeq(cols[slimOutcomeSeq])
	r.ok = r.ok && seqOK && statusOK && vOK && oOK
	r.id, _ = cols[slimID].(string) // in the digest
	r.entry = slimKey(cols, slimID, slimEntryEnd)
	r.hasReview = cols[slimReview] != nil || cols[slimReview+1] != nil || cols[slimReviewEnd] != nil
	if r.hasReview {
		r.review = slimKey(cols, slimReview, slimReviewEnd)
	}
	return r
}

// optSeq reads a column slimOf sets to an event's seq or nil (0, for none).
func optSeq(v any) (int64, bool) {
	switch n := v.(type) {
	case nil:
		return 0, true
	case int64:
		return n, n != 0
	}
	return 0, false
}

// matches reports whether the row points at the events its call's fold
// ends with and its columns are what they make them; anything else is
// left to verifyRows to judge and name.
func (r *rowItem) matches(st *foldState) bool {
	return r.ok && !st.bad && st.hasEntry && r.status == st.status &&
		r.seq == st.decSeq && r.vseq == st.verSeq && r.oseq == st.outSeq &&
		r.entry == st.entry && r.hasReview == st.hasReview && (!r.hasReview || r.review == st.review) &&
		st.args.ok(r.args)
}

// readNames reads the names table: each name by its id.
func readNames(ctx context.Context, tx *sql.Tx) (map[int64]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, name FROM names`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names := map[int64]string{}
	for rows.Next() {
		var (
			id   int64
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		names[id] = name
	}
	return names, rows.Err()
}

// verifyFast checks the chain, reporting its problems, and reports
// whether every calls row equals what its events fold to, with nothing
// left over on either side. Events are read from evTx and rows from
// rowTx (evTx when nil) at the same time; workers hash and decode events
// and encode rows while the readers read.
// verifyFast's first event follows the event hashed prev ("" for the
// genesis). The rows reflect the events up to mark (the projection's
// watermark); later ones are checked by the chain only.
func verifyFast(ctx context.Context, evTx, rowTx *sql.Tx, rep *VerifyReport, base ChainPoint, mark int64) (clean bool, err error) {
	prev := hashRaw(base.Hash)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan func(), 8)
	var workers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		workers.Go(func() {
			for job := range jobs {
				job()
			}
		})
	}
	var readers sync.WaitGroup
	defer func() {
		cancel()
		readers.Wait()
		close(jobs)
		workers.Wait()
	}()
	submit := func(job func()) bool {
		select {
		case jobs <- job:
			return true
		case <-ctx.Done():
			return false
		}
	}

	// Rows: read (on their own connection when there is one) and
	// digested, kept until the events are folded.
	var (
		rowChunks [][]rowItem
		rowErr    error
		rowsDone  = make(chan struct{})
	)
	readRows := func() {
		defer close(rowsDone)
		tx := rowTx
		if tx == nil {
			tx = evTx
		}
		names, err := readNames(ctx, tx)
		if err != nil {
			rowErr = err
			return
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+fastRowCols+` FROM calls ORDER BY calls.seq`)
		if err != nil {
			rowErr = err
			return
		}
		defer rows.Close()
		var (
			cols slimRow
			args sql.NullString
			dst  []any
			out  []rowItem
		)
		for rows.Next() {
			if len(out) == verifyChunk {
				rowChunks, out = append(rowChunks, out), nil
			}
			if out == nil {
				out = make([]rowItem, 0, verifyChunk)
			}
			var r rowItem // unreadable (not ok): verifyRows names it
			if scanSlim(rows, &dst, &cols, &args) == nil {
				r = newRowItem(&cols, args, names)
			}
			out = append(out, r)
		}
		rowChunks = append(rowChunks, out)
		rowErr = rows.Err()
	}
	if rowTx != nil {
		readers.Go(readRows)
	}

	// Events: read in seq order, hashed and decoded by the workers, then
	// linked and folded here in order.
	type evChunk struct {
		evs  []evItem
		done chan struct{}
	}
	order := make(chan *evChunk, 4)
	// spare holds folded chunks' arrays for the reader to fill again.
	spare := make(chan []evItem, cap(order)+4)
	newChunk := func() []evItem {
		select {
		case evs := <-spare:
			return evs[:0]
		default:
			return make([]evItem, 0, verifyChunk)
		}
	}
	var evErr error
	cxs := newCtxReader(ctx, nil)
	readers.Go(func() {
		defer close(order)
		rows, err := evTx.QueryContext(ctx, `SELECT `+chainCols+` FROM events ORDER BY seq`)
		if err != nil {
			evErr = err
			return
		}
		defer rows.Close()
		// Each event is hashed after the stored hash of the row before
		// it; the ordered pass checks that those hashes link up.
		last := prev
		send := func(evs []evItem, prev []byte) bool {
			ch := &evChunk{evs: evs, done: make(chan struct{})}
			if !submit(func() {
				var x eventHasher
				for i := range ch.evs {
					ch.evs[i].check(&x, prev)
					prev = storedRaw(ch.evs[i].hash)
					ch.evs[i].read(cxs)
				}
				close(ch.done)
			}) {
				return false
			}
			select {
			case order <- ch:
				return true
			case <-ctx.Done():
				return false
			}
		}
		evs := newChunk()
		first := last
		for rows.Next() {
			evs = append(evs, evItem{})
			e := &evs[len(evs)-1]
			if evErr = e.scan(rows); evErr != nil {
				return
			}
			// Before the chunk goes out: the decisions after a context
			// event, in this chunk or later ones, look it up.
			cxs.put(e.seq, e.callID, e.kind, e.at, e.body)
			if e.seq <= base.Seq {
				evs = evs[:len(evs)-1] // kept by a cut: verifyKept checks it
				continue
			}
			last = storedRaw(e.hash)
			if len(evs) == verifyChunk {
				if !send(evs, first) {
					return
				}
				evs, first = newChunk(), last
			}
		}
		if evErr = rows.Err(); evErr == nil && len(evs) > 0 {
			send(evs, first)
		}
	})
	var (
		states = map[string]*foldState{}
		free   []foldState // allocated a chunk at a time
	)
	for ch := range order {
		select {
		case <-ch.done:
		case <-ctx.Done():
			return false, fmt.Errorf("audit: verify: %w", ctx.Err())
		}
		for i := range ch.evs {
			e := &ch.evs[i]
			rep.Events++
			prev = e.link(rep, prev)
			if e.seq > mark {
				continue
			}
			st := states[e.callID]
			if st == nil {
				if len(free) == 0 {
					free = make([]foldState, verifyChunk)
				}
				st, free = &free[0], free[1:]
				states[e.callID] = st
			}
			st.fold(e)
		}
		clear(ch.evs) // drop the bodies
		select {
		case spare <- ch.evs:
		default:
		}
	}
	if evErr != nil {
		return false, fmt.Errorf("audit: verify: %w", evErr)
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Head = hashHex(prev)

	if rowTx == nil {
		readRows()
	}
	<-rowsDone
	if rowErr == nil {
		rowErr = ctx.Err() // a reader stopped by cancellation read only part
	}
	if rowErr != nil {
		return false, fmt.Errorf("audit: verify: %w", rowErr)
	}
	clean = true
	for _, chunk := range rowChunks {
		for i := range chunk {
			r := &chunk[i]
			rep.Calls++
			st := states[r.id]
			if st == nil || !r.matches(st) {
				clean = false
				continue
			}
			delete(states, r.id)
		}
	}
	for _, st := range states {
		clean = clean && !st.orphanBad
	}
	return clean, nil
}
