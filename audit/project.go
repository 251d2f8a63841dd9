package audit

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/toolgate/toolgate"
)

// The calls table is a projection of the event log. A hot op (see op)
// makes a call's decision or outcome durable by appending its event alone;
// the writer brings calls up to date behind it, in a transaction of its
// own, once projectBatch events have piled up or projectDelay has passed,
// and before any op that reads or writes calls. The projection table's
// watermark is the last event calls reflects: events after it (a crash
// between an event's commit and its projection, or another process's tail)
// are applied from the log by whoever projects next, Open included.

// projection is what the writer keeps of the events its hot ops appended
// and calls does not reflect yet, decoded, so that neither projecting them
// nor the state checks of later hot ops read them back. Guarded by wmu.
type projection struct {
	// items are by event seq; status is each call's status after its
	// last event among them.
	items  map[int64]projItem
	status map[string]string
}

// eventRef is an event of the log's tail, as the projection lists it.
type eventRef struct {
	seq  int64
	kind string
}

// projItem is one event as the projection applies it to calls.
type projItem struct {
	seq     int64
	id      string
	status  string
	entry   *entryRow // a decision
	outcome *toolgate.Outcome
	verdict *Review
}

// newProjectionOp is a write that only brings calls up to date.
func newProjectionOp() *op {
	o := &op{apply: func(*wtx) error { return nil }, what: "calls projection", queued: time.Now()}
	o.state.Store(opClaimed) // nobody waits on it
	return o
}

// project applies to calls the events after the watermark. The caller
// sets the watermark (to the head, once its own ops are applied).
func (w *wtx) project() error {
	st := &w.s.stmts
	var mark int64
	if err := st.watermark.QueryRowContext(w.ctx).Scan(&mark); err != nil {
		return fmt.Errorf("audit: read projection watermark: %w", err)
	}
	if mark >= w.head {
		return nil
	}
	var (
		refs []eventRef
		r    eventRef // scanned into: one allocation, not one per event
	)
	rows, err := st.tail.QueryContext(w.ctx, mark)
	if err != nil {
		return fmt.Errorf("audit: read unprojected events: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&r.seq, &r.kind); err != nil {
			rows.Close()
			return fmt.Errorf("audit: read unprojected events: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read unprojected events: %w", err)
	}
	look := newCtxReader(w.ctx, w.s.conn).get
	outcomes := w.foldableOutcomes(refs)
	var batch callRows
	for _, r := range refs {
		it, ok := w.item(r.seq)
		o, fold := outcomes[it.id]
		if ok && fold && it.seq == o.seq {
			continue // written with its decision
		}
		if !ok {
			if !reflected(r.kind) {
				continue // not reflected in calls, or written with its row
			}
			if it, err = w.loadItem(r.seq, look); err != nil {
				return err
			}
		}
		if it.entry != nil {
			status, outcomeSeq := it.status, int64(0)
			if ok && fold {
				// One row, in the status the outcome left: what the
				// decision's insert and the outcome's update would write.
				status, outcomeSeq = o.status, o.seq
			}
			if err := batch.add(w, it.seq, &it.entry.e, status, outcomeSeq); err != nil {
				return err
			}
			continue
		}
		// Rows first: the event may change one of them.
		if err := batch.flush(w); err != nil {
			return err
		}
		if err := w.applyItem(&it); err != nil {
			return err
		}
	}
	if err := batch.flush(w); err != nil {
		return err
	}
	w.projected = len(refs)
	return nil
}

// callRows are calls rows the projection inserts together. On PostgreSQL,
// where each statement is a round trip made while the chain lock is held,
// with prepared inserts of 64, 8 and 1 rows: a projection of n calls makes
// at most n/64 + 14 statements instead of n. On SQLite one row a statement
// costs less CPU (tgbench, c=1: binding a multi-row insert's values costs
// more than the statements it saves).
type callRows struct {
	values      []any
	first, last int64 // their decision events' seqs, for the log
}

func (b *callRows) add(w *wtx, seq int64, e *Entry, status string, outcomeSeq int64) error {
	if len(b.values) == 0 {
		b.first = seq
	}
	var err error
	b.values, err = w.callRow(b.values, seq, e, status, outcomeSeq)
	b.last = seq
	return err
}

// flush inserts the rows added since the last flush. A decision whose call
// has a row already (a second decision for an id) changes nothing: the log
// keeps it and Verify reports it.
func (b *callRows) flush(w *wtx) error {
	rows := len(b.values) / callCols
	var inserted int64
	for v := b.values; len(v) > 0; {
		stmt, n := w.s.stmts.insertCall, 1
		switch k := len(v) / callCols; {
		case w.s.pg == nil:
		case k >= 64:
			stmt, n = w.s.stmts.insertCalls64, 64
		case k >= 8:
			stmt, n = w.s.stmts.insertCalls8, 8
		}
		res, err := stmt.ExecContext(w.ctx, v[:n*callCols]...)
		var got int64
		if err == nil {
			got, err = res.RowsAffected()
		}
		if err != nil {
			return fmt.Errorf("audit: insert calls of events %d-%d: %w", b.first, b.last, err)
		}
		inserted += got
		v = v[n*callCols:]
	}
	if inserted != int64(rows) {
		w.s.o.Logger.Error("audit: decisions do not fit their calls' rows; left to verify", "decisions", int64(rows)-inserted, "from_seq", b.first, "to_seq", b.last)
	}
	b.values = b.values[:0]
	return nil
}

// reflected reports whether calls reflects events of kind, when the
// projection applies them.
func reflected(kind string) bool {
	switch kind {
	case kindDecision, kindVerdict, kindStatus, kindOutcome:
		return true
	}
	return false
}

// foldableOutcomes are the outcomes among refs that the projection writes
// with their call's decision, by call id: each of a call whose started
// decision is the one event of the call before it in refs. Only when every
// event in refs that calls reflects is this process's own (held in
// proj.items): another process's event of the call could fall between.
func (w *wtx) foldableOutcomes(refs []eventRef) map[string]projItem {
	started := map[string]bool{}
	var out map[string]projItem
	for _, r := range refs {
		it, ok := w.item(r.seq)
		switch {
		case !ok && reflected(r.kind):
			return nil
		case !ok:
		case it.entry != nil && it.status == toolgate.StatusStarted && !started[it.id]:
			started[it.id] = true
		case it.outcome != nil && started[it.id]:
			if out == nil {
				out = map[string]projItem{}
			}
			out[it.id] = it
			delete(started, it.id) // a later event of the call is not folded
		default:
			delete(started, it.id)
			delete(out, it.id)
		}
	}
	return out
}

// loadItem reads event seq back from the log, a decision's context
// through look.
func (w *wtx) loadItem(seq int64, look ctxLookup) (projItem, error) {
	var (
		id, kind, body string
		at             int64
	)
	if err := w.s.stmts.eventBody.QueryRowContext(w.ctx, seq).Scan(&id, &kind, &at, &body); err != nil {
		return projItem{}, fmt.Errorf("audit: read event %d: %w", seq, err)
	}
	e, err := decodeEvent(id, kind, at, body)
	if err == nil {
		err = e.resolve(look)
	}
	if err != nil {
		return projItem{}, fmt.Errorf("audit: decode event %d: %w", seq, err)
	}
	it := projItem{seq: seq, id: e.ID, status: e.Status, outcome: e.Outcome, verdict: e.Verdict}
	if e.Decision != nil {
		it.entry = newEntryRow(*e.Decision, e.Status)
	}
	return it, nil
}

// applyItem writes the effect of one event other than a decision (see
// callRows) on its call's row. An event that does not fit the row (an
// outcome of a call not started) changes nothing: the log keeps it and
// Verify reports it.
func (w *wtx) applyItem(it *projItem) error {
	var (
		n   int64
		err error
	)
	switch {
	case it.outcome != nil:
		n, err = w.setOutcome(it.id, it.outcome, it.seq)
	case it.verdict != nil:
		return w.setVerdict(it.id, it.status, it.verdict, it.seq)
	default:
		return w.setStatus(it.id, it.status)
	}
	if err == nil && n == 0 {
		w.s.o.Logger.Error("audit: event does not fit its call's row; left to verify", "call_id", it.id, "seq", it.seq)
	}
	return err
}

// setWatermark records that calls reflects every event up to seq.
func (w *wtx) setWatermark(seq int64) error {
	if _, err := w.s.stmts.setWatermark.ExecContext(w.ctx, seq); err != nil {
		return fmt.Errorf("audit: set projection watermark: %w", err)
	}
	return nil
}

// unprojected is call id's status as of this transaction if calls does
// not reflect it yet: its staged events, then the unprojected tail.
func (w *wtx) unprojected(id string) (string, bool) {
	if st, ok := w.stagedStatus(id); ok {
		return st, true
	}
	st, ok := w.s.proj.status[id]
	return st, ok
}

// stagedStatus is call id's status after the events this transaction
// staged, if it staged any.
func (w *wtx) stagedStatus(id string) (string, bool) {
	for i := len(w.staged) - 1; i >= 0; i-- {
		if w.staged[i].id == id {
			return w.staged[i].status, true
		}
	}
	return "", false
}

// item is the event at seq as this writer holds it, decoded: one its hot
// ops appended earlier, or one this transaction staged.
func (w *wtx) item(seq int64) (projItem, bool) {
	if it, ok := w.s.proj.items[seq]; ok {
		return it, true
	}
	i, ok := slices.BinarySearchFunc(w.staged, seq, func(it projItem, seq int64) int { return cmp.Compare(it.seq, seq) })
	if !ok {
		return projItem{}, false
	}
	return w.staged[i], true
}

// stage keeps a hot op's event for the projection.
func (w *wtx) stage(it projItem) {
	it.seq = w.head
	w.staged = append(w.staged, it)
}

// committedTx updates the writer's projection state after a commit.
// Called with wmu held.
func (s *Store) committedTx(w *wtx, hot bool) {
	s.committedNames(w)
	if s.spool != nil {
		s.spoolCommitted(w)
	}
	for body, seq := range w.ctxs {
		s.ctxs.put(body, seq)
	}
	if !hot {
		// calls reflects every event up to the head now.
		clear(s.proj.items)
		clear(s.proj.status)
		s.unprojected.Store(0)
		s.projTimer.Stop()
		return
	}
	if len(w.staged) == 0 {
		return
	}
	if s.proj.items == nil {
		s.proj.items, s.proj.status = map[int64]projItem{}, map[string]string{}
	}
	for _, it := range w.staged {
		s.proj.items[it.seq] = it
		s.proj.status[it.id] = it.status
	}
	n := s.unprojected.Add(int64(len(w.staged)))
	switch {
	case n >= s.o.projectBatch:
		s.queueProjection()
	case n == int64(len(w.staged)):
		s.projTimer.Reset(s.o.projectDelay)
	}
}

// queueProjection queues a projection write unless one is queued. Called
// with wmu held; whoever holds it commits the queue before releasing it.
func (s *Store) queueProjection() {
	if s.projQueued || s.unprojected.Load() == 0 {
		return
	}
	_, arm, err := s.enqueue(newProjectionOp())
	if err != nil {
		return // closed: Close projects what is left
	}
	s.projQueued = true // reset by the next projecting commit
	if arm {
		s.flush.Reset(behindDelay)
	}
}

// catchUp brings calls up to date with every event committed, so that a
// read after a write sees it.
func (s *Store) catchUp(ctx context.Context) error {
	if s.kick == nil {
		// Read-only: another process may have committed events since.
		return catchUpFile(ctx, s.rdb, s.path, s.o)
	}
	if s.unprojected.Load() == 0 && !s.spool.hasPending() {
		return nil
	}
	return s.write(ctx, func(*wtx) error { return nil })
}

// behind reports whether the log at path has events calls does not
// reflect, or (SQLite) a spool holds records the log lacks.
func behind(ctx context.Context, db *sql.DB, path string) (bool, error) {
	var b bool
	err := db.QueryRowContext(ctx, `SELECT (SELECT seq FROM projection WHERE name = 'calls') <
		(SELECT coalesce(max(seq), 0) FROM events)`).Scan(&b)
	if err != nil {
		return false, fmt.Errorf("audit: read projection watermark: %w", err)
	}
	if b || IsPostgres(path) {
		return b, nil
	}
	return spoolsBehind(ctx, db, path)
}

// catchUpFile brings the calls projection of the log at path up to date
// for a read-only store, whose readers must see every durable call: it
// opens the log for writing just long enough to project.
func catchUpFile(ctx context.Context, db *sql.DB, path string, o Options) error {
	lag, err := behind(ctx, db, path)
	if err != nil || !lag {
		return err
	}
	o.ReadOnly, o.Owner = false, ""
	w, err := Open(ctx, path, o)
	if err != nil {
		return fmt.Errorf("audit: %s has calls not yet in its calls table, and bringing it up to date failed: %w", path, err)
	}
	return w.Close()
}
