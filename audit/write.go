package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/toolgate/toolgate"
)

// writeStmts are prepared once on the writer's connection.
type writeStmts struct {
	head, insertCall, insertEvent, state, setVerdict, setStatus, setOutcome, setSlack *sql.Stmt
	watermark, setWatermark, tail, eventBody, nameID, addName, base                   *sql.Stmt
	rowStatus, insertUnlessCall, insertCalls8, insertCalls64                          *sql.Stmt
}

// callCols is how many values a calls row has (callRow).
const callCols = 20

// insertCallsSQL inserts n calls rows (callRow's values); a row whose id
// calls holds already is left out. A row's seq is its decision event's,
// outcome_seq its outcome's when the row is written after it (else NULL).
func insertCallsSQL(n int) string {
	row := "(" + strings.Repeat("?,", callCols-1) + "?)"
	return `INSERT INTO calls (seq, id, received_at, action, auto_approved, eval_failed, status, review_owner,
outcome_seq, server_ref, tool_ref, kind_ref, session_ref, user_ref, client_ref, model_ref, model_version_ref,
rules_version_ref, rules_label_ref, rule_ref)
VALUES ` + strings.Repeat(row+`,`, n-1) + row + `
ON CONFLICT (id) DO NOTHING`
}

// prepare prepares the statements on c, PostgreSQL's if pg. An event's
// insert returns its seq there only: its driver has no LastInsertId, and
// on SQLite RETURNING costs a result row per event.
func (st *writeStmts) prepare(ctx context.Context, c *sql.Conn, pg bool) error {
	returning := ""
	if pg {
		returning = " RETURNING seq"
	}
	for _, p := range []struct {
		dst *(*sql.Stmt)
		sql string
	}{
		// The chain base rides with the head: a decision naming a cached
		// context needs it, and it saves that decision's transaction a
		// statement (a round trip on PostgreSQL).
		{&st.head, `SELECT seq, hash, (SELECT coalesce(max(seq), 0) FROM chain_base) FROM events ORDER BY seq DESC LIMIT 1`},
		{&st.base, `SELECT coalesce(max(seq), 0) FROM chain_base`},
		{&st.rowStatus, `SELECT status FROM calls WHERE id = ?`},
		{&st.watermark, `SELECT seq FROM projection WHERE name = 'calls'`},
		{&st.setWatermark, `UPDATE projection SET seq = ? WHERE name = 'calls'`},
		{&st.tail, `SELECT seq, kind FROM events WHERE seq > ? ORDER BY seq`},
		{&st.eventBody, `SELECT call_id, kind, at, body FROM events WHERE seq = ?`},
		{&st.insertCall, insertCallsSQL(1)},
		{&st.insertCalls8, insertCallsSQL(8)},
		{&st.insertCalls64, insertCallsSQL(64)},
		{&st.nameID, `SELECT id FROM names WHERE name = ?`},
		{&st.addName, `INSERT INTO names (name) VALUES (?) RETURNING id`},
		{&st.insertEvent, `INSERT INTO events (call_id, kind, at, body, prev_hash, hash) VALUES (?,?,?,?,?,?)` + returning},
		// insertEvent unless calls holds the call's row in another status
		// than the given one (appendUnless): the check rides with the
		// insert, without a statement (a round trip) of its own.
		{&st.insertUnlessCall, `INSERT INTO events (call_id, kind, at, body, prev_hash, hash) SELECT ?,?,?,?,?,?
			WHERE NOT EXISTS (SELECT 1 FROM calls WHERE id = ? AND status <> ?)` + returning},
		{&st.state, `SELECT calls.status, calls.review_owner, d.at, d.body, v.at, v.body FROM calls JOIN events d ON d.seq = calls.seq
			LEFT JOIN events v ON v.seq = calls.verdict_seq WHERE calls.id = ?`},
		{&st.setVerdict, `UPDATE calls SET status = ?, review_approved = ?, review_channel = ?, review_ms = ?, verdict_seq = ? WHERE id = ?`},
		{&st.setStatus, `UPDATE calls SET status = ? WHERE id = ?`},
		{&st.setOutcome, `UPDATE calls SET status = ?, outcome_seq = ? WHERE id = ? AND status = 'started'`},
		{&st.setSlack, `UPDATE calls SET slack_channel = ?, slack_ts = ? WHERE id = ?`},
	} {
		s, err := c.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return fmt.Errorf("audit: prepare: %w", err)
		}
		*p.dst = s
	}
	return nil
}

func (st *writeStmts) close() {
	for _, s := range []*sql.Stmt{st.head, st.insertCall, st.insertEvent, st.state, st.setVerdict, st.setStatus, st.setOutcome, st.setSlack,
		st.watermark, st.setWatermark, st.tail, st.eventBody, st.nameID, st.addName, st.base, st.rowStatus, st.insertUnlessCall,
		st.insertCalls8, st.insertCalls64} {
		if s != nil {
			s.Close()
		}
	}
}

// wtx is the writer's view of the open transaction.
type wtx struct {
	s    *Store
	ctx  context.Context
	head int64  // seq of the last event written (chain head)
	prev []byte // hash of the last event written, 32 raw bytes (none before the first)
	// result is an error the current op reports although its writes commit.
	result error
	// staged are the hot ops' events of this transaction, kept for the
	// projection once it commits; projected counts the events project
	// applied to calls.
	staged    []projItem
	projected int
	// names are the name ids this transaction added or looked up.
	names map[string]int64
	// ctxs are the context events this transaction appended, by body;
	// base is the chain base's seq (-1: not read yet).
	ctxs map[string]int64
	base int64
	// spoolEnd is how far this transaction imported this process's spool
	// (0: none); removeSpools are spools to delete once it commits.
	spoolEnd     int64
	removeSpools []string
	// skipped are the errors of the own spooled records this transaction
	// skipped (see unfit), by the record's end offset.
	skipped map[int64]error
	// scanned is the spool.scanWant this transaction's import of the
	// other processes' spools answers (0: none).
	scanned int64
}

// appendEvent chains one event of a call after the current head.
func (w *wtx) appendEvent(e *event) error {
	body, err := encodeEvent(e)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	return w.appendBody(e.ID, e.Kind, e.At, body)
}

// appendBody chains an event after the current head, in format 2 (see
// chain.go): a body not yet marked as format 2 (an event's own JSON
// object) gets the marker.
func (w *wtx) appendBody(id, kind string, at int64, body []byte) error {
	_, err := w.insert(w.s.stmts.insertEvent, id, kind, at, body)
	return err
}

// appendUnless is appendBody for call id's event, unless calls holds the
// call's row in a status other than status ("": in any status). It reports
// whether it appended.
func (w *wtx) appendUnless(id, kind string, at int64, body []byte, status string) (bool, error) {
	return w.insert(w.s.stmts.insertUnlessCall, id, kind, at, body, id, status)
}

// insert chains an event with stmt, an insert of the event's columns (then
// extra) that may insert nothing, and reports whether it inserted.
func (w *wtx) insert(stmt *sql.Stmt, id, kind string, at int64, body []byte, extra ...any) (bool, error) {
	b := string(body)
	if !isFormat2(b) {
		b = string(markFormat2(body))
	}
	h := w.s.hasher.sum(w.prev, id, kind, at, b)
	seq, err := insertedSeq(w.ctx, w.s.pg != nil, stmt, append([]any{id, kind, at, b, "", h}, extra...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("audit: append %s event for %s: %w", kind, id, err)
	}
	w.head, w.prev = seq, append(w.prev[:0], h...)
	return true, nil
}

// insertedSeq runs stmt, an insert of one row or none (prepared with
// RETURNING seq on PostgreSQL), and returns the row's seq, or
// sql.ErrNoRows when it inserted none.
func insertedSeq(ctx context.Context, pg bool, stmt *sql.Stmt, args []any) (seq int64, err error) {
	if pg {
		err = stmt.QueryRowContext(ctx, args...).Scan(&seq)
		return seq, err
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err == nil {
		seq, err = res.RowsAffected()
	}
	switch {
	case err == nil && seq == 0:
		return 0, sql.ErrNoRows
	case err != nil:
		return 0, err
	}
	return res.LastInsertId()
}

// readHead reads the chain head (its seq and hash) and the chain base.
func (w *wtx) readHead() error {
	var h []byte
	w.base = -1 // an empty log has no row: chainBase reads it if asked
	err := w.s.stmts.head.QueryRowContext(w.ctx).Scan(&w.head, &h, &w.base)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: read chain head: %w", err)
	}
	w.prev = storedHashRaw(h)
	return nil
}

// callState is what the writer needs to know about a call before changing it.
type callState struct {
	status string
	// owner is the process whose review the call is (review_owner):
	// its holder, until another process takes the review over.
	owner     string
	decidedAt int64
	verdict   *Review // nil when none is stored
	principal toolgate.Principal
	// argsStored is false when only the arguments' hash is stored.
	argsStored bool
}

func (w *wtx) state(id string) (callState, error) {
	var (
		cs   callState
		d, v joined
	)
	err := w.s.stmts.state.QueryRowContext(w.ctx, id).Scan(&cs.status, &cs.owner, &d.at, &d.body, &v.at, &v.body)
	if errors.Is(err, sql.ErrNoRows) {
		return cs, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return cs, fmt.Errorf("audit: read call %s: %w", id, err)
	}
	var r Record
	if err := r.load(id, &d, &v, nil, sql.NullString{}, newCtxReader(w.ctx, w.s.conn).get); err != nil {
		return cs, fmt.Errorf("audit: read call %s: %w", id, err)
	}
	cs.decidedAt, cs.verdict, cs.principal, cs.argsStored = r.DecidedAt.UnixNano(), r.Review, r.Principal, argsStored(r.Args)
	return cs, nil
}

// insertEntry inserts call e's row, decided by event seq, with no outcome
// yet, and returns how many rows it inserted (0: a row with its id exists).
func (w *wtx) insertEntry(seq int64, e *Entry, status string) (int64, error) {
	row, err := w.callRow(make([]any, 0, callCols), seq, e, status, 0)
	if err != nil {
		return 0, err
	}
	res, err := w.s.stmts.insertCall.ExecContext(w.ctx, row...)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return 0, fmt.Errorf("audit: insert call %s: %w", e.ID, err)
	}
	return n, nil
}

// callRow appends to dst the values of call e's row for insertCallsSQL:
// decided by event seq, in status, finished by event outcomeSeq (0: none
// yet).
func (w *wtx) callRow(dst []any, seq int64, e *Entry, status string, outcomeSeq int64) ([]any, error) {
	var outcome any // NULL
	if outcomeSeq > 0 {
		outcome = outcomeSeq
	}
	dst = append(dst, seq, e.ID, e.ReceivedAt.UnixNano(), string(e.Action), e.AutoApproved, e.EvalError != "",
		status, w.owner(status), outcome)
	return w.refs(dst, e.Server, e.Tool, kindColumn(e.Kind), e.Session, e.Principal.User, e.Client.Name,
		e.Model.Name, e.Model.Version, e.RulesVersion, e.RulesLabel, e.Rule)
}

// setVerdict records verdict r, chained as event seq, on call id.
func (w *wtx) setVerdict(id, status string, r *Review, seq int64) error {
	_, err := w.s.stmts.setVerdict.ExecContext(w.ctx, status, r.Approved, r.Channel, r.TimeToDecision.Milliseconds(), seq, id)
	if err != nil {
		return fmt.Errorf("audit: record verdict for %s: %w", id, err)
	}
	return w.notify(id)
}

func (w *wtx) setStatus(id, status string) error {
	if _, err := w.s.stmts.setStatus.ExecContext(w.ctx, status, id); err != nil {
		return fmt.Errorf("audit: set status of %s: %w", id, err)
	}
	return nil
}

// setOutcome records outcome o, chained as event seq, on call id if it is
// started, and returns how many rows it changed (0: no such call, or not
// started).
func (w *wtx) setOutcome(id string, o *toolgate.Outcome, seq int64) (int64, error) {
	res, err := w.s.stmts.setOutcome.ExecContext(w.ctx, o.Status, seq, id)
	if err != nil {
		return 0, fmt.Errorf("audit: record outcome of %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("audit: record outcome of %s: %w", id, err)
	}
	return n, nil
}
