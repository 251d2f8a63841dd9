package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/toolgate/toolgate"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// importBatch is how many records Import commits per transaction.
const importBatch = 2000

// Import appends the records in r, one JSON Record per line (the format of
// `audit export --format jsonl`), as if they had been recorded live:
// each gets its decision event, then its verdict and outcome events, all
// hash chained. Args are normalised (keys sorted, compact) and ArgsHash is
// recomputed; Seq is ignored. Meant for fixtures, tests and moving logs
// between machines; it does not redact. It returns how many records were
// imported; on an error, records of earlier batches stay imported.
//
// Decoding runs in a goroutine of its own, one batch ahead of the writer:
// a batch's JSON decoding overlaps the previous batch's commit.
func (s *Store) Import(ctx context.Context, r io.Reader) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []*importRow, 1)
	var decodeErr error
	go func() {
		defer close(batches)
		decodeErr = s.decodeImport(ctx, r, batches)
	}()
	n := 0
	for rows := range batches {
		err := s.write(ctx, func(w *wtx) error {
			for _, ir := range rows {
				if err := w.importRecord(ir); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			cancel()
			for range batches { // let the decoder exit
			}
			return n, err
		}
		n += len(rows)
	}
	// batches is closed: decodeErr is set.
	return n, decodeErr
}

// decodeImport decodes and prepares the records in r, importBatch at a
// time, and sends the batches to out until r ends, a record is bad or ctx
// is done.
func (s *Store) decodeImport(ctx context.Context, r io.Reader, out chan<- []*importRow) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	batch := make([]*importRow, 0, importBatch)
	send := func() error {
		select {
		case out <- batch:
			batch = make([]*importRow, 0, importBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for line := 1; ; line++ {
		var rec Record
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("audit: import record %d: %w", line, err)
		}
		ir, err := s.prepareImport(&rec)
		if err != nil {
			return fmt.Errorf("audit: import record %d: %w", line, err)
		}
		batch = append(batch, ir)
		if len(batch) == importBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return send()
}

type importRow struct {
	entry   *entryRow
	rec     *Record
	at      int64
	outcome *toolgate.Outcome
}

func (s *Store) prepareImport(rec *Record) (*importRow, error) {
	if rec.ID == "" {
		return nil, errors.New("no id")
	}
	switch rec.Status {
	case toolgate.StatusStarted, toolgate.StatusPending, toolgate.StatusRefused, toolgate.StatusOK, toolgate.StatusToolError, toolgate.StatusFailed,
		toolgate.StatusInterrupted, toolgate.StatusCancelled:
	default:
		return nil, fmt.Errorf("call %s: unknown status %q", rec.ID, rec.Status)
	}
	e := rec.Entry
	var args any = map[string]any{}
	if len(e.Args) > 0 {
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, fmt.Errorf("call %s: args: %w", rec.ID, err)
		}
	}
	ab, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("call %s: args: %w", rec.ID, err)
	}
	e.Args, e.ArgsHash = ab, argsHash(ab)
	if e.Meta, err = normalMeta(e.Meta); err != nil {
		return nil, fmt.Errorf("call %s: _meta: %w", rec.ID, err)
	}
	e.ReceivedAt, e.DecidedAt = utc(e.ReceivedAt), utc(e.DecidedAt)
	if e.DecidedAt.IsZero() {
		e.DecidedAt = e.ReceivedAt
	}
	at := e.DecidedAt.UnixNano()
	er, err := s.encodeEntry(e, initialStatus(e.Action), at)
	if err != nil {
		return nil, err
	}
	ir := &importRow{entry: er, rec: rec, at: at}
	if rec.Review != nil {
		rv := *rec.Review
		rv.DecidedAt = utc(rv.DecidedAt)
		rv.TimeToDecision = rv.TimeToDecision.Truncate(time.Millisecond)
		rec.Review = &rv
	}
	if rec.Outcome != nil {
		o := *rec.Outcome
		o.Status = rec.Status
		o.FinishedAt = utc(o.FinishedAt)
		if o.FinishedAt.IsZero() {
			o.FinishedAt = e.DecidedAt
		}
		ir.outcome = &o
	}
	return ir, nil
}

func (w *wtx) importRecord(ir *importRow) error {
	if err := w.begin(ir.entry); err != nil {
		return err
	}
	id, status := ir.rec.ID, ir.entry.status
	if r := ir.rec.Review; r != nil {
		status = toolgate.StatusRefused
		if r.Approved {
			status = toolgate.StatusStarted
		}
		if ir.rec.Status == toolgate.StatusPending {
			status = toolgate.StatusPending
		}
		if err := w.verdict(id, max(ir.at, r.DecidedAt.UnixNano()), status, r); err != nil {
			return err
		}
	}
	if o := ir.outcome; o != nil {
		if err := w.appendEvent(&event{Kind: kindOutcome, ID: id, At: o.FinishedAt.UnixNano(), Status: o.Status, Outcome: o}); err != nil {
			return err
		}
		n, err := w.setOutcome(id, o, w.head)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: record %s has an outcome but its call was never started (status %s)", ErrState, id, status)
		}
		return nil
	}
	if status != ir.rec.Status {
		if err := w.setStatus(id, ir.rec.Status); err != nil {
			return err
		}
		return w.appendEvent(&event{Kind: kindStatus, ID: id, At: ir.at, Status: ir.rec.Status})
	}
	return nil
}

// WriteJSONL writes records as JSON Lines, the format Import reads, with
// NewJSONEncoder's escapes.
func WriteJSONL(w io.Writer, recs func(yield func(*Record, error) bool)) error {
	enc := NewJSONEncoder(w)
	for r, err := range recs {
		if err != nil {
			return err
		}
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	return nil
}

// NewJSONEncoder is json.NewEncoder(w) for JSON that a person may look at
// (a terminal, an editor, a spreadsheet's import): besides the controls
// encoding/json escapes, it writes every other rune toolgate.Visible would
// escape (DEL, C1 controls, bidi controls such as U+202E, zero-width and
// other invisible characters) as its \u escape, so none of them can
// reorder or hide the text around it. The document decodes to the same
// value. Invalid UTF-8 (which JSON cannot escape) is left as it is.
func NewJSONEncoder(w io.Writer) *json.Encoder { return json.NewEncoder(&jsonEscaper{w: w}) }

// jsonEscaper rewrites what a json.Encoder writes to it with
// appendJSONEscaped. It relies on the encoder writing each value whole in
// one Write, so that no rune is split between two writes.
type jsonEscaper struct {
	w   io.Writer
	buf []byte
}

func (e *jsonEscaper) Write(p []byte) (int, error) {
	e.buf = appendJSONEscaped(e.buf[:0], p)
	if _, err := e.w.Write(e.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// appendJSONEscaped appends the JSON text p to dst with each rune above
// ASCII's printable range that toolgate.Shown refuses written as \uXXXX
// (a surrogate pair above U+FFFF). Such a rune can only be inside a JSON
// string (outside them JSON is ASCII), where the escape stands for the
// same rune; ASCII is copied as it is, since encoding/json already
// escapes the C0 controls in strings and the ones left are the
// document's own whitespace.
func appendJSONEscaped(dst, p []byte) []byte {
	for len(p) > 0 {
		if c := p[0]; c < utf8.RuneSelf && c != 0x7f {
			dst = append(dst, c)
			p = p[1:]
			continue
		}
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n == 1, toolgate.Shown(r):
			dst = append(dst, p[:n]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			dst = fmt.Appendf(dst, `\u%04x\u%04x`, r1, r2)
		default:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		}
		p = p[n:]
	}
	return dst
}

// normalMeta is an imported record's _meta as Begin records it: keys
// sorted and compact, nil for none (absent, null or {}). Anything but an
// object is refused.
func normalMeta(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

// csvHeader is the header row WriteCSV writes. Keep in sync with csvRow
// and docs/audit.md.
var csvHeader = []string{
	"id", "received_at", "decided_at", "status", "action", "rule", "reason", "auto_approved", "eval_error",
	"server", "server_version", "tool", "name", "schema_hash", "client_name", "client_version",
	"model_name", "model_version", "session", "confidence", "args", "args_hash",
	"rules_version", "rules_label", "shadow", "review_approved", "reviewer", "review_channel", "review_reason",
	"review_decided_at", "time_to_decision_ms", "finished_at", "duration_ms", "result_size", "result_hash",
	"outcome_error", "toolgate_version", "sandbox", "principal_user", "principal_groups", "auth", "kind", "confidence_effect",
	"meta",
}

// WriteCSV writes records as CSV with a header row (see docs/audit.md); times are RFC 3339 UTC,
// empty when unset; args, shadow and meta (the call's _meta, empty for
// none) are JSON, with NewJSONEncoder's escapes.
//
// Most cells hold text the agent, its client or an upstream chose (tool,
// client and model names, reasons), and a spreadsheet runs a cell that
// starts with = + - or @ as a formula. So every other cell is made
// visible (toolgate.Visible: no raw control, bidi or invisible rune
// reaches the file), and one that then starts with a formula character
// gets a leading ' (csvCell), which spreadsheets show as text.
func WriteCSV(w io.Writer, recs func(yield func(*Record, error) bool)) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	for r, err := range recs {
		if err != nil {
			return err
		}
		row := csvRow(r)
		for i, c := range row {
			if i != csvArgs && i != csvShadow && i != csvMeta {
				row[i] = csvCell(c)
			}
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	cw.Flush()
	return cw.Error()
}

// The columns of csvHeader that hold JSON: escaped as JSON, not made
// visible, so that they stay valid JSON (and start with { or [, never a
// formula character).
var (
	csvArgs   = slices.Index(csvHeader, "args")
	csvShadow = slices.Index(csvHeader, "shadow")
	csvMeta   = slices.Index(csvHeader, "meta")
)

// csvCell is s made visible and, if it then starts with a character a
// spreadsheet reads as the start of a formula (= + - @, or a TAB or CR
// that Visible has already escaped), prefixed with ' (the OWASP rule for
// CSV injection).
func csvCell(s string) string {
	s = toolgate.Visible(s)
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvJSON is the JSON text b as WriteCSV writes it.
func csvJSON(b []byte) string { return string(appendJSONEscaped(nil, b)) }

func csvRow(r *Record) []string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	conf := ""
	if r.Confidence != nil {
		conf = strconv.FormatFloat(*r.Confidence, 'g', -1, 64)
	}
	shadow := ""
	if len(r.Shadow) > 0 {
		b, _ := json.Marshal(r.Shadow)
		shadow = csvJSON(b)
	}
	var rv Review
	approved := ""
	if r.Review != nil {
		rv = *r.Review
		approved = strconv.FormatBool(rv.Approved)
	}
	var o toolgate.Outcome
	ttd, dur, size := "", "", ""
	if r.Review != nil {
		ttd = strconv.FormatInt(rv.TimeToDecision.Milliseconds(), 10)
	}
	if r.Outcome != nil {
		o = *r.Outcome
		dur = strconv.FormatFloat(float64(o.Duration)/float64(time.Millisecond), 'f', 3, 64)
		size = strconv.Itoa(o.ResultSize)
	}
	return []string{
		r.ID, ts(r.ReceivedAt), ts(r.DecidedAt), r.Status, string(r.Action), r.Rule, r.Reason,
		strconv.FormatBool(r.AutoApproved), r.EvalError, r.Server, r.ServerVersion, r.Tool, r.Name, r.SchemaHash,
		r.Client.Name, r.Client.Version, r.Model.Name, r.Model.Version, r.Session, conf, csvJSON(r.Args), r.ArgsHash,
		r.RulesVersion, r.RulesLabel, shadow, approved, rv.Reviewer, rv.Channel, rv.Reason, ts(rv.DecidedAt), ttd,
		ts(o.FinishedAt), dur, size, o.ResultHash, o.Error, r.ToolgateVersion, r.Sandbox,
		r.Principal.User, encodeGroups(r.Principal.Groups), r.Principal.Auth, kindColumn(r.Kind), r.ConfidenceEffect,
		csvJSON(r.Meta),
	}
}
