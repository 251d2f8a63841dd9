package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// A context event (kind context, call_id "") holds the fields that the
// decisions of one session and tool share (ctx2); each later decision
// names it by seq (body2.Cx) instead of repeating them. The writer keeps
// which context events it wrote (ctxCache) and appends one, in the
// decision's transaction, when it has none for a decision's context.

// maxContexts bounds the contexts a cache or a reader keeps decoded.
const maxContexts = 4096

// ctxLookup returns the fields of the context event seq.
type ctxLookup func(seq int64) (*ctx2, error)

// resolve fills in the context fields of e's decision from the context
// event it names, if it names one.
func (e *event) resolve(look ctxLookup) error { return resolveCx(e.cx, e.Decision, look) }

// resolveCx fills in the context fields of decision d (nil: none) from
// context event cx (0: d names none) through look.
func resolveCx(cx int64, d *Entry, look ctxLookup) error {
	if cx == 0 || d == nil {
		return nil
	}
	if look == nil {
		return fmt.Errorf("decision names context event %d, which is not at hand", cx)
	}
	c, err := look(cx)
	if err != nil {
		return err
	}
	c.fill(d)
	return nil
}

// decodeContext decodes event seq as a context event.
func decodeContext(seq int64, id, kind string, at int64, body string) (*ctx2, error) {
	if kind != kindContext {
		return nil, fmt.Errorf("event %d is a %s event, not a context", seq, kind)
	}
	e, err := decodeEvent(id, kind, at, body)
	if err != nil {
		return nil, fmt.Errorf("context event %d: %w", seq, err)
	}
	if e.context == nil { // a format-1 body: context events are format 2 only
		return nil, fmt.Errorf("context event %d holds no context", seq)
	}
	return e.context, nil
}

// ctxReader reads context events by seq through q, each decoded once, for
// the readers of one query (safe for concurrent use). Context events never
// change, and a kept decision's context stays in the log (archive.go).
// Verify's has no q: it holds every context event the chain showed it so
// far (put), and nothing else.
type ctxReader struct {
	ctx context.Context
	q   rowQueryer
	mu  sync.Mutex
	m   map[int64]*ctx2
}

func newCtxReader(ctx context.Context, q rowQueryer) *ctxReader {
	return &ctxReader{ctx: ctx, q: q, m: map[int64]*ctx2{}}
}

// get is a ctxLookup.
func (r *ctxReader) get(seq int64) (*ctx2, error) {
	r.mu.Lock()
	c, ok := r.m[seq]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	if r.q == nil {
		return nil, fmt.Errorf("no context event %d precedes it", seq)
	}
	var (
		id, kind, body string
		at             int64
	)
	err := r.q.QueryRowContext(r.ctx, `SELECT call_id, kind, at, body FROM events WHERE seq = ?`, seq).Scan(&id, &kind, &at, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("context event %d is missing", seq)
	}
	if err != nil {
		return nil, fmt.Errorf("read context event %d: %w", seq, err)
	}
	if c, err = decodeContext(seq, id, kind, at, body); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.m) >= maxContexts {
		clear(r.m)
	}
	r.m[seq] = c
	r.mu.Unlock()
	return c, nil
}

// put decodes event seq if it is a context event and keeps it; it returns
// the event's problem as a context ("" if none, or not one).
func (r *ctxReader) put(seq int64, id, kind string, at int64, body string) string {
	if kind != kindContext {
		return ""
	}
	c, err := decodeContext(seq, id, kind, at, body)
	if err != nil {
		return err.Error()
	}
	r.mu.Lock()
	r.m[seq] = c
	r.mu.Unlock()
	return ""
}

// before is get for a decision that is event seq: its context is an
// earlier event.
func (r *ctxReader) before(seq int64) ctxLookup {
	return func(cx int64) (*ctx2, error) {
		if cx >= seq {
			return nil, fmt.Errorf("decision names event %d as its context, not an earlier one", cx)
		}
		return r.get(cx)
	}
}

// ctxCache is the writer's: the seq of the context event it wrote for
// each context body, the most recently used first to survive. Two
// generations bound it: when cur fills, it becomes old and old is
// dropped; a hit in old moves to cur. Only the writer goroutine uses it.
type ctxCache struct {
	cur, old map[string]int64
}

func (c *ctxCache) get(body string) (int64, bool) {
	if seq, ok := c.cur[body]; ok {
		return seq, true
	}
	seq, ok := c.old[body]
	if ok {
		c.put(body, seq)
	}
	return seq, ok
}

func (c *ctxCache) put(body string, seq int64) {
	if c.cur == nil || len(c.cur) >= maxContexts {
		c.old, c.cur = c.cur, make(map[string]int64, maxContexts)
	}
	c.cur[body] = seq
}

// contextSeq is the seq of a context event with body (a context event's
// format-2 body) that a decision of this transaction may name: one the
// writer wrote above the chain's base (a context at or below it is one an
// archive cut kept for the decisions it kept, and no new decision names
// it), or one it appends now.
func (w *wtx) contextSeq(body []byte, at int64) (int64, error) {
	if seq, ok := w.ctxs[string(body)]; ok {
		return seq, nil
	}
	if seq, ok := w.s.ctxs.get(string(body)); ok {
		base, err := w.chainBase()
		if err != nil {
			return 0, err
		}
		if seq > base {
			return seq, nil
		}
	}
	if err := w.appendBody("", kindContext, at, body); err != nil {
		return 0, err
	}
	if w.ctxs == nil {
		w.ctxs = map[string]int64{}
	}
	w.ctxs[string(body)] = w.head
	return w.head, nil
}

// chainBase is the seq of the live chain's base (0: never archived), read
// once per transaction: another process may have archived since the last.
func (w *wtx) chainBase() (int64, error) {
	if w.base < 0 {
		if err := w.s.stmts.base.QueryRowContext(w.ctx).Scan(&w.base); err != nil {
			return 0, fmt.Errorf("audit: read chain base: %w", err)
		}
	}
	return w.base, nil
}

// appendDecision chains r's decision after its context event; with
// onlyNew, not if calls has a row for the call (ErrState).
func (w *wtx) appendDecision(r *entryRow, onlyNew bool) error {
	cx, err := w.contextSeq(r.ctxBody, r.at)
	if err != nil {
		return err
	}
	body := withCx(r.body, cx)
	if !onlyNew {
		return w.appendBody(r.e.ID, kindDecision, r.at, body)
	}
	switch ok, err := w.appendUnless(r.e.ID, kindDecision, r.at, body, ""); {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: begin %s: the call is already recorded", ErrState, r.e.ID)
	}
	return nil
}

// leadingCx is the cx of the decision body that starts with b (withCx),
// 0 if it names none.
func leadingCx(b string) int64 {
	rest, ok := strings.CutPrefix(b, format2Prefix+`,"cx":`)
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.ParseInt(rest[:end], 10, 64)
	return n
}

// withCx is a decision body encoded with cx < 0 (no context fields, no
// cx) naming context event cx: the body json.Marshal gives with Cx set,
// as Cx is the member after v.
func withCx(body []byte, cx int64) []byte {
	rest := body[len(format2Prefix):]
	out := make([]byte, 0, len(body)+24)
	out = append(out, format2Prefix...)
	out = strconv.AppendInt(append(out, `,"cx":`...), cx, 10)
	return append(out, rest...)
}
