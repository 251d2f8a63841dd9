package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
// follows the event hashed prev ("" for the genesis).
func verifyChain(ctx context.Context, tx *sql.Tx, rep *VerifyReport, prev string) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, call_id, body, prev_hash, hash FROM events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var (
		seq                        int64
		id, body, prevHash, stored string
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &id, &body, &prevHash, &stored); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		rep.Events++
		ok := chainHash(prevHash, []byte(body)) == stored
		if prevHash != prev || !ok {
			chainProblems(rep, seq, id, prev, prevHash, stored, body, ok)
		}
		prev = stored
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	rep.Head = prev
	return nil
}

// chainProblems reports a broken link of event seq: prev is the previous
// event's hash; hashOK says whether its body hashes to stored.
func chainProblems(rep *VerifyReport, seq int64, id, prev, prevHash, stored, body string, hashOK bool) {
	if prevHash != prev {
		rep.add(Problem{Seq: seq, CallID: id, What: fmt.Sprintf("prev_hash %.12s… does not match the previous event's hash %.12s… (event missing, reordered or inserted)", prevHash, prev)})
	}
	if !hashOK {
		h := chainHash(prevHash, []byte(body))
		rep.add(Problem{Seq: seq, CallID: id, What: fmt.Sprintf("hash mismatch: body hashes to %.12s…, stored %.12s… (event body altered)", h, stored)})
	}
}

type evRow struct {
	seq        int64
	callID     string
	kind, body string
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
	evs, err := etx.QueryContext(ctx, `SELECT seq, call_id, kind, body FROM events
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
		row, err := scanRawRow(calls)
		if err != nil {
			rep.add(Problem{What: "unreadable calls row: " + err.Error()})
			continue
		}
		rep.Calls++
		var (
			want                   Record
			decSeq, verSeq, outSeq int64
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
			ev, err := decodeEvent(e.kind, []byte(e.body))
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
			switch ev.Kind {
			case kindDecision:
				decSeq = cmp.Or(decSeq, e.seq)
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
		row.decode()
		switch {
		case !row.hasDecision:
			rep.add(Problem{CallID: row.id, What: fmt.Sprintf("calls row points at no event (seq %d)", row.seq)})
		case row.recErr != nil:
			rep.add(Problem{CallID: row.id, What: "calls row points at an unreadable event: " + row.recErr.Error()})
		}
		wantCols := slimOf(&want, decSeq, verSeq, outSeq)
		if diff := slimDiff(&wantCols, &row.cols); diff != "" {
			rep.add(Problem{CallID: row.id, What: "row differs from its chained events: " + diff})
		}
		if p := argsProblem(row.args, &want.Entry); p != "" {
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
	seq                                int64
	callID, kind, body, prevHash, hash string

	hashOK bool // body hashes to hash
	// headerOK says the body is JSON whose kind and id are the columns'.
	headerOK bool
	// raw says the parts were hashed as stored, not yet known to be well
	// formed JSON: matching a row's part proves they are.
	raw    bool
	status string
	// The body's parts, by digest, and which of them it has.
	entry, review, outcome    digest
	hasEntry, hasRev, hasOutc bool
}

// hasher hashes what a worker checks, reusing its scratch buffer.
type hasher struct {
	h   hash.Hash
	buf []byte
}

func newHasher() *hasher { return &hasher{h: sha256.New()} }

// sum returns sha256(a || b).
func (x *hasher) sum(a, b string) digest {
	x.buf = append(append(x.buf[:0], a...), b...)
	return sha256.Sum256(x.buf)
}

// digest hashes the event and reads its header and parts: from the
// canonical layout directly when it is in it (see parseEnvelope), else
// with encoding/json, as verifyRows reads every event.
func (e *evItem) digest(x *hasher) {
	sum := x.sum(e.prevHash, e.body)
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	e.hashOK = string(hx[:]) == e.hash
	if env, ok := parseEnvelope(e.body); ok && env.partKey == partOf(e.kind) {
		e.headerOK = env.kind == e.kind && env.id == e.callID
		e.status, e.raw = env.status, true
		if env.part != "" {
			d := x.sum(env.part, "")
			switch env.partKey {
			case "decision":
				e.entry, e.hasEntry = d, true
			case "verdict":
				e.review, e.hasRev = d, true
			case "outcome":
				e.outcome, e.hasOutc = d, true
			}
		}
		return
	}
	var ev event
	if json.Unmarshal([]byte(e.body), &ev) != nil {
		return
	}
	e.headerOK = ev.ID == e.callID && ev.Kind == e.kind
	e.status = ev.Status
	enc := func(d *digest, f func([]byte) ([]byte, error)) bool {
		b, err := f(x.buf[:0])
		x.buf = b
		if err != nil {
			e.headerOK = false // cannot be encoded, so cannot match a row
			return false
		}
		*d = sha256.Sum256(b)
		return true
	}
	if ev.Decision != nil {
		e.hasEntry = enc(&e.entry, func(b []byte) ([]byte, error) { return appendEntry(b, ev.Decision) })
	}
	if ev.Verdict != nil {
		e.hasRev = enc(&e.review, func(b []byte) ([]byte, error) { return appendReview(b, ev.Verdict) })
	}
	if ev.Outcome != nil {
		e.hasOutc = enc(&e.outcome, func(b []byte) ([]byte, error) { return appendOutcome(b, ev.Outcome) })
	}
}

// partOf is the part an event of kind carries in the canonical layout
// ("" for none, "?" for kinds parseEnvelope leaves to encoding/json).
func partOf(kind string) string {
	switch kind {
	case kindDecision:
		return "decision"
	case kindVerdict:
		return "verdict"
	case kindOutcome:
		return "outcome"
	case kindStatus:
		return ""
	}
	return "?"
}

// envelope is an event body in the canonical layout.
type envelope struct {
	kind, id, status string
	// partKey names the part (decision, verdict or outcome) and part is
	// its encoding, left unparsed; both "" when there is none.
	partKey, part string
}

// parseEnvelope reads a body laid out as the chain's encoder writes it,
//
//	{"kind":K,"id":I,"at":N,"status":S[,"decision"|"verdict"|"outcome":P]}
//
// with K, I and S printable ASCII without escapes and N an integer. It
// does not look into P: a part counts only once it equals a row's part
// as the same encoder writes it, which proves it well formed. Any other
// layout is not ok, and is read with encoding/json instead.
func parseEnvelope(b string) (env envelope, ok bool) {
	str := func(key string) (string, bool) {
		if !strings.HasPrefix(b, key) {
			return "", false
		}
		b = b[len(key):]
		for i := 0; i < len(b); i++ {
			switch c := b[i]; {
			case c == '"':
				s := b[:i]
				b = b[i+1:]
				return s, true
			case c < 0x20 || c >= 0x7f || c == '\\':
				return "", false
			}
		}
		return "", false
	}
	if env.kind, ok = str(`{"kind":"`); !ok {
		return env, false
	}
	if env.id, ok = str(`,"id":"`); !ok {
		return env, false
	}
	if !strings.HasPrefix(b, `,"at":`) {
		return env, false
	}
	b = b[len(`,"at":`):]
	n := 0
	if n < len(b) && b[n] == '-' {
		n++
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == start || b[start] == '0' && n > start+1 {
		return env, false
	}
	if _, err := strconv.ParseInt(b[:n], 10, 64); err != nil {
		return env, false
	}
	b = b[n:]
	if env.status, ok = str(`,"status":"`); !ok {
		return env, false
	}
	if b == "}" {
		return env, true
	}
	for _, k := range []string{"decision", "verdict", "outcome"} {
		if p, found := strings.CutPrefix(b, `,"`+k+`":`); found && strings.HasSuffix(p, "}") {
			env.partKey, env.part = k, p[:len(p)-1]
			return env, env.part != ""
		}
	}
	return env, false
}

// foldState is what a call's events fold to (see Record.fold), by digest.
type foldState struct {
	entry, review, outcome    digest
	hasEntry, hasRev, hasOutc bool
	// rawRev and rawOutc say the review and outcome were hashed as stored
	// (evItem.raw): they must still be compared with the row's.
	rawRev, rawOutc bool
	status          string
	n               int
	// decSeq, verSeq and outSeq are the call's decision event and its last
	// verdict and outcome events (0: none), which its row points at.
	decSeq, verSeq, outSeq int64
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
	switch e.kind {
	case kindDecision:
		if e.hasEntry {
			st.entry, st.hasEntry = e.entry, true
		}
		if st.decSeq == 0 {
			st.decSeq = e.seq
		}
	case kindVerdict:
		st.verSeq = e.seq
		// A part hashed as stored and replaced before it could be
		// compared with the row is not known to be well formed.
		st.bad = st.bad || st.rawRev
		st.review, st.hasRev, st.rawRev = e.review, e.hasRev, e.raw && e.hasRev
	case kindOutcome:
		st.outSeq = e.seq
		st.bad = st.bad || st.rawOutc
		st.outcome, st.hasOutc, st.rawOutc = e.outcome, e.hasOutc, e.raw && e.hasOutc
	}
}

// rowItem is a calls row as the fast pass compares it with its events:
// which events it points at, its status, and whether its derived columns
// are what those events make them.
type rowItem struct {
	id, status      string
	seq, vseq, oseq int64
	ok              bool
}

func newRowItem(r *storedRow) rowItem {
	r.decode()
	return rowItem{id: r.id, status: r.status, seq: r.seq, vseq: r.vseq, oseq: r.oseq, ok: r.selfConsistent()}
}

// matches reports whether the row points at the events its call's fold
// ends with and equals what they make it; anything else is left to
// verifyRows to judge and name.
func (r *rowItem) matches(st *foldState) bool {
	return r.ok && !st.bad && st.hasEntry && r.status == st.status &&
		r.seq == st.decSeq && r.vseq == st.verSeq && r.oseq == st.outSeq
}

// verifyFast checks the chain, reporting its problems, and reports
// whether every calls row equals what its events fold to, with nothing
// left over on either side. Events are read from evTx and rows from
// rowTx (evTx when nil) at the same time; workers hash and decode events
// and encode rows while the readers read.
// verifyFast's first event follows the event hashed prev ("" for the
// genesis). The rows reflect the events up to mark (the projection's
// watermark); later ones are checked by the chain only.
func verifyFast(ctx context.Context, evTx, rowTx *sql.Tx, rep *VerifyReport, prev string, mark int64) (clean bool, err error) {
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
		rows, err := tx.QueryContext(ctx, `SELECT `+rowCols+` FROM `+rowFrom+` ORDER BY calls.seq`)
		if err != nil {
			rowErr = err
			return
		}
		defer rows.Close()
		recs := make([]*storedRow, 0, verifyChunk)
		flush := func() bool {
			out := make([]rowItem, len(recs))
			rowChunks = append(rowChunks, out)
			in := recs
			rowJobs.Add(1)
			ok := submit(func() {
				defer rowJobs.Done()
				for i, r := range in {
					if r == nil {
						continue // unreadable: verifyRows names it
					}
					out[i] = newRowItem(r)
				}
			})
			if !ok {
				rowJobs.Done()
			}
			recs = make([]*storedRow, 0, verifyChunk)
			return ok
		}
		for rows.Next() {
			r, err := scanRawRow(rows)
			if err != nil {
				r = nil // unreadable: verifyRows names it
			}
			if recs = append(recs, r); len(recs) == verifyChunk && !flush() {
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
		rows, err := evTx.QueryContext(ctx, `SELECT seq, call_id, kind, body, prev_hash, hash FROM events ORDER BY seq`)
		if err != nil {
			evErr = err
			return
		}
		defer rows.Close()
		send := func(evs []evItem) bool {
			ch := &evChunk{evs: evs, done: make(chan struct{})}
			if !submit(func() {
				x := newHasher()
				for i := range ch.evs {
					ch.evs[i].digest(x)
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
		for rows.Next() {
			evs = append(evs, evItem{})
			e := &evs[len(evs)-1]
			if evErr = rows.Scan(&e.seq, &e.callID, &e.kind, &e.body, &e.prevHash, &e.hash); evErr != nil {
				return
			}
			if len(evs) == verifyChunk {
				if !send(evs) {
					return
				}
				evs = make([]evItem, 0, verifyChunk)
			}
		}
		if evErr = rows.Err(); evErr == nil && len(evs) > 0 {
			send(evs)
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
			if e.prevHash != prev || !e.hashOK {
				chainProblems(rep, e.seq, e.callID, prev, e.prevHash, e.hash, e.body, e.hashOK)
			}
			prev = e.hash
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
	rep.Head = prev

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
