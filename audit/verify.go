package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"

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
//  1. the events chain: each event's prev_hash is the previous event's hash
//     and its hash is sha256(prev_hash || body);
//  2. every calls row equals the record rebuilt from its events (so an
//     UPDATE of any chained column is caught), every row has events and
//     every event has a row.
//
// Slack message locations and Seq are not covered. An error means Verify
// could not read the DB; a tampered log is reported in the VerifyReport.
//
// The events and the rows are read at once on two connections whose
// snapshots hold the same events, and hashed, decoded and encoded by
// GOMAXPROCS workers (verifyFast); the chain is still checked in order. That pass proves a clean log; when it finds anything amiss,
// verifyRows, the detailed pass, re-checks the rows and names each
// problem, so the report is the same either way.
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
	clean, err := verifyFast(ctx, evTx, rowTx, &rep, base.Hash, mark)
	if err != nil {
		return rep, err
	}
	if err := verifyBase(ctx, evTx, &rep, base); err != nil {
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

// verifyChain checks the chain of the events in tx, the first of which
// follows the event hashed prev (hex; "" for the genesis).
func verifyChain(ctx context.Context, tx *sql.Tx, rep *VerifyReport, prev string) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+chainCols+` FROM events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	p := hashRaw(prev)
	var e evItem
	for rows.Next() {
		if err := e.scan(rows); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		rep.Events++
		e.check(p)
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

// check hashes e as following the event hashed prev (raw): hashOK says
// its stored hash is right. A format-1 event names its predecessor in
// prev_hash and is hashed with it, so that a broken link and an altered
// event are told apart; a format-2 event is hashed with prev.
func (e *evItem) check(prev []byte) {
	if !isFormat2(e.body) {
		h := eventHash(hashRaw(e.prevHash), e.callID, e.kind, e.at, e.body)
		e.hashOK = hashHex(e.hash) == hex.EncodeToString(h)
		return
	}
	e.hashOK = e.prevHash == "" && bytes.Equal(eventHash(prev, e.callID, e.kind, e.at, e.body), e.hash)
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
	calls, err := tx.QueryContext(ctx, `SELECT `+recordCols+` FROM calls ORDER BY id`)
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
			ev, err := decodeEvent(e.callID, e.kind, e.at, e.body)
			if err != nil {
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
			want.fold(ev)
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
		if !argsStored(want.Args) && argsStored(got.Args) {
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

// verifyChunk is how many events or rows the fast pass reads per batch.
const verifyChunk = 512

// digest is the sha256 of one part of a record (its entry, review or
// outcome) as the chain encodes it.
type digest [sha256.Size]byte

// evItem is one event as read, and what a worker computed from it.
type evItem struct {
	seq                          int64
	callID, kind, body, prevHash string
	at                           int64
	hash                         []byte

	hashOK bool // the stored hash is the event's (see check)
	// headerOK says the body decodes, and a format-1 body's kind and id
	// are the columns'.
	headerOK bool
	status   string
	// The body's parts, by digest (partDigest), and which of them it has;
	// raw says the one part is by the digest of the whole body instead
	// (see rawStatus), and status "" then follows from the decision.
	entry, review, outcome    digest
	hasEntry, hasRev, hasOutc bool
	raw                       bool
}

// rawStatus reads the status of a format-2 decision or outcome body as
// the writer lays it out, {"v":2[,"st":S],"d"|"o":...}, S printable
// ASCII without escapes ("" when absent: a decision's initial status).
// Such a body is compared with a row by the digest of the whole body
// (rowItem.digest encodes the row's as the writer would): equal bytes
// decode to equal values, and anything else is not ok and is decoded.
func rawStatus(kind, body string) (string, bool) {
	part := `,"d":`
	if kind == kindOutcome {
		part = `,"o":`
	}
	rest, ok := strings.CutPrefix(body, format2Prefix)
	if !ok {
		return "", false
	}
	if strings.HasPrefix(rest, part) {
		return "", kind == kindDecision
	}
	rest, ok = strings.CutPrefix(rest, `,"st":"`)
	if !ok {
		return "", false
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c == '"':
			return rest[:i], i > 0 && strings.HasPrefix(rest[i+1:], part)
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

// partDigest is the digest of one part of a record (its entry, review or
// outcome) by which rows and events are compared: the sha256 of the part's
// format-2 encoding with every time explicit, so that equal digests mean
// equal parts whichever format the event was stored in.
func partDigest(v any) (digest, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return digest{}, false
	}
	return sha256.Sum256(b), true
}

// entryDigest is partDigest of an entry with its args hash, whether or
// not its args are stored.
func entryDigest(d *Entry) (digest, bool) {
	p := newEntry2(d, 0)
	p.ArgsHash = d.ArgsHash
	return partDigest(p)
}

// bodyDigest is the sha256 of e's format-2 body.
func bodyDigest(e *event) (digest, bool) {
	b, err := encodeEvent(e)
	if err != nil {
		return digest{}, false
	}
	return sha256.Sum256(b), true
}

// outcomeDigest is partDigest of an outcome with its status.
func outcomeDigest(o *toolgate.Outcome) (digest, bool) {
	return partDigest(struct {
		Status string `json:"st"`
		*outcome2
	}{o.Status, newOutcome2(o, 0)})
}

// digest decodes the event and digests its parts. The hash is checked by
// check, in order.
func (e *evItem) digest() {
	if e.kind == kindDecision || e.kind == kindOutcome {
		if st, ok := rawStatus(e.kind, e.body); ok {
			e.headerOK, e.status, e.raw = true, st, true
			d := sha256.Sum256([]byte(e.body))
			if e.kind == kindDecision {
				e.entry, e.hasEntry = d, true
			} else {
				e.outcome, e.hasOutc = d, true
			}
			return
		}
	}
	ev, err := decodeEvent(e.callID, e.kind, e.at, e.body)
	if err != nil {
		return
	}
	e.headerOK = ev.ID == e.callID && ev.Kind == e.kind
	e.status = ev.Status
	ok := true
	if ev.Decision != nil {
		e.entry, e.hasEntry = entryDigest(ev.Decision)
		ok = e.hasEntry
	}
	if ev.Verdict != nil {
		e.review, e.hasRev = partDigest(newReview2(ev.Verdict, 0))
		ok = ok && e.hasRev
	}
	if ev.Outcome != nil {
		e.outcome, e.hasOutc = outcomeDigest(ev.Outcome)
		ok = ok && e.hasOutc
	}
	// A part that cannot be encoded cannot match a row.
	e.headerOK = e.headerOK && ok
}

// foldState is what a call's events fold to (see Record.fold), by digest.
type foldState struct {
	entry, review, outcome    digest
	hasEntry, hasRev, hasOutc bool
	status                    string
	n                         int
	// rawEntry and rawOutc say the entry and outcome are by body digest
	// (evItem.raw), decidedAt and finishedAt are then their events' at,
	// and initial says the status is the decision's initial one.
	rawEntry, rawOutc, initial bool
	decidedAt, finishedAt      int64
	// bad marks a problem the detailed pass names if the call has a row;
	// orphanBad one it names if the call has none.
	bad, orphanBad bool
}

func (st *foldState) fold(e *evItem) {
	switch {
	case e.kind == kindToken:
	case standaloneKinds[e.kind] || e.kind == kindRulesLoad || e.kind == kindRulesRollback:
		st.orphanBad = st.orphanBad || !e.headerOK
	default:
		st.orphanBad = true
	}
	if !e.headerOK || (st.n == 0) != (e.kind == kindDecision) {
		st.bad = true
	}
	st.n++
	st.status = e.status
	st.initial = e.raw && e.kind == kindDecision && e.status == ""
	switch e.kind {
	case kindDecision:
		if e.hasEntry {
			st.entry, st.hasEntry = e.entry, true
		}
		st.rawEntry, st.decidedAt = e.raw, e.at
	case kindVerdict:
		// A part hashed as stored and replaced before it could be
		// compared with the row is not known to be well formed.
		st.review, st.hasRev = e.review, e.hasRev
	case kindOutcome:
		st.outcome, st.hasOutc = e.outcome, e.hasOutc
		st.rawOutc, st.finishedAt = e.raw, e.at
	}
}

// rowItem is a calls row by the digests of its parts (partDigest).
type rowItem struct {
	id     string
	status string
	// entry is the row's entry; entryHashed the same with its args left
	// out, as decision events that chain only the args' hash hold them,
	// and valid (hashedOK) only when the row's args hash to its args_hash.
	entry, entryHashed, review, outcome digest
	hashedOK, hasRev, hasOutc, bad      bool
	// raw says entry and outcome are the digests of the decision and
	// outcome bodies the writer makes of the row (events at decidedAt
	// and finishedAt), not partDigests.
	raw                   bool
	initial               string // the decision's initial status
	decidedAt, finishedAt int64
}

// digest digests the row's parts: the entry and outcome as the writer
// encodes them when raw (a log of format-2 events only), else by
// partDigest.
func (r *rowItem) digest(rec *Record, raw bool) {
	r.id, r.status, r.raw = rec.ID, rec.Status, raw
	ok := true
	e := rec.Entry
	if raw {
		r.initial, r.decidedAt = initialStatus(e.Action), e.DecidedAt.UnixNano()
		// The body holds the args as json.Marshal writes them and derives
		// args_hash from those bytes: the row's must be the same bytes.
		if argsStored(e.Args) {
			c, err := json.Marshal(e.Args)
			ok = err == nil && string(c) == string(e.Args) && argsHash(e.Args) == e.ArgsHash
		}
		var k bool
		r.entry, k = bodyDigest(&event{Kind: kindDecision, ID: e.ID, At: r.decidedAt, Status: r.initial, Decision: &e})
		ok = ok && k
	} else {
		r.entry, ok = entryDigest(&e)
		if argsHash(e.Args) == e.ArgsHash {
			e.Args = nil
			r.entryHashed, r.hashedOK = entryDigest(&e)
		}
	}
	if rec.Review != nil {
		var k bool
		r.review, k = partDigest(newReview2(rec.Review, 0))
		r.hasRev, ok = true, ok && k
	}
	if o := rec.Outcome; o != nil {
		var k bool
		if raw {
			r.finishedAt = o.FinishedAt.UnixNano()
			r.outcome, k = bodyDigest(&event{Kind: kindOutcome, ID: e.ID, At: r.finishedAt, Status: o.Status, Outcome: o})
		} else {
			r.outcome, k = outcomeDigest(o)
		}
		r.hasOutc, ok = true, ok && k
	}
	r.bad = !ok
}

// matches reports whether the row equals what its events fold to. Equal
// encodings decode to equal records, so a match here is a match in
// verifyRows; anything else is left to verifyRows to judge and name.
func (r *rowItem) matches(st *foldState) bool {
	status := st.status
	if st.initial {
		status = r.initial
	}
	switch {
	case r.bad || st.bad || !st.hasEntry || r.status != status || st.initial && !r.raw:
		return false
	case r.raw != st.rawEntry || r.hasOutc && r.raw != st.rawOutc:
		return false // digested differently
	case r.raw && (r.decidedAt != st.decidedAt || r.hasOutc && r.finishedAt != st.finishedAt):
		return false
	case st.entry != r.entry && (!r.hashedOK || st.entry != r.entryHashed):
		return false
	case r.hasRev != st.hasRev || r.hasRev && r.review != st.review:
		return false
	case r.hasOutc != st.hasOutc || r.hasOutc && r.outcome != st.outcome:
		return false
	}
	return true
}

// verifyFast checks the chain, reporting its problems, and reports
// whether every calls row equals what its events fold to, with nothing
// left over on either side. Events are read from evTx and rows from
// rowTx (evTx when nil) at the same time; workers hash and decode events
// and encode rows while the readers read.
// verifyFast's first event follows the event hashed prev ("" for the
// genesis). The rows reflect the events up to mark (the projection's
// watermark); later ones are checked by the chain only.
func verifyFast(ctx context.Context, evTx, rowTx *sql.Tx, rep *VerifyReport, base string, mark int64) (clean bool, err error) {
	prev := hashRaw(base)
	// Format 1 never follows format 2: a log whose first event is format
	// 2 has only format-2 events, and its rows are digested as the writer
	// encodes them (rowItem.digest).
	var first string
	if err := evTx.QueryRowContext(ctx, `SELECT body FROM events ORDER BY seq LIMIT 1`).Scan(&first); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("audit: verify: %w", err)
	}
	raw := first == "" || isFormat2(first)
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

	// Rows: read (on their own connection when there is one), encoded
	// by the workers, kept by digest until the events are folded.
	var (
		rowChunks [][]rowItem
		rowErr    error
		rowsDone  = make(chan struct{})
		rowJobs   sync.WaitGroup
	)
	readRows := func() {
		defer close(rowsDone)
		defer rowJobs.Wait()
		tx := rowTx
		if tx == nil {
			tx = evTx
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+recordCols+` FROM calls ORDER BY seq`)
		if err != nil {
			rowErr = err
			return
		}
		defer rows.Close()
		recs := make([]*Record, 0, verifyChunk)
		flush := func() bool {
			out := make([]rowItem, len(recs))
			rowChunks = append(rowChunks, out)
			in := recs
			rowJobs.Add(1)
			ok := submit(func() {
				defer rowJobs.Done()
				for i, rec := range in {
					if rec == nil {
						out[i].bad = true
						continue
					}
					out[i].digest(rec, raw)
				}
			})
			if !ok {
				rowJobs.Done()
			}
			recs = make([]*Record, 0, verifyChunk)
			return ok
		}
		for rows.Next() {
			rec, err := scanRecord(rows)
			if err != nil {
				rec = nil // unreadable: verifyRows names it
			}
			if recs = append(recs, rec); len(recs) == verifyChunk && !flush() {
				return
			}
		}
		if rowErr = rows.Err(); rowErr == nil && len(recs) > 0 {
			flush()
		}
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
	var evErr error
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
				for i := range ch.evs {
					ch.evs[i].check(prev)
					prev = storedRaw(ch.evs[i].hash)
					ch.evs[i].digest()
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
		evs := make([]evItem, 0, verifyChunk)
		first := last
		for rows.Next() {
			evs = append(evs, evItem{})
			if evErr = evs[len(evs)-1].scan(rows); evErr != nil {
				return
			}
			last = storedRaw(evs[len(evs)-1].hash)
			if len(evs) == verifyChunk {
				if !send(evs, first) {
					return
				}
				evs, first = make([]evItem, 0, verifyChunk), last
			}
		}
		if evErr = rows.Err(); evErr == nil && len(evs) > 0 {
			send(evs, first)
		}
	})
	states := map[string]*foldState{}
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
				st = &foldState{}
				states[e.callID] = st
			}
			st.fold(e)
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
