package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/toolgate/toolgate"
)

// The event log holds two formats of chained events; a log may hold
// format-1 events followed by format-2 ones (never the reverse: this
// build writes format 2 only). Format-1 events are only read and re-hashed
// from their stored bytes, never re-encoded.
//
// Format 1: body is the JSON of event (full Entry, RFC 3339 times);
// prev_hash is the previous event's hash and hash is hex text:
//
//	hash = hex(sha256(hex(prev) || body))
//
// Format 2: body is compact JSON starting {"v":2 (json.Marshal of body2
// for a call's events, or of the event's own struct with the marker
// spliced in front). It holds nothing the columns hold (call id, kind,
// at) nor anything derivable (the args hash of stored args, a decision's
// initial status, times equal to at). prev_hash is empty: the previous
// row's hash is the link. hash is the 32 raw bytes of
//
//	sha256(prev32 || "2\x00" || call_id || "\x00" || kind || "\x00" || decimal(at) || "\x00" || body)
//
// where prev32 is the previous event's hash as 32 raw bytes (none for the
// first event of a log). The hash covers every column but seq, whose order
// the chain itself fixes.
//
// A context event (kind context, call_id "") has the body {"v":2,"c":{...}}
// (ctx2): what the decisions of a session and tool share. A decision
// names the context event it belongs to by seq, {"v":2,"cx":SEQ,...}, and
// then leaves those fields out of its own body; a decision without cx
// (written before context events) carries them. Verify requires cx to name
// an earlier context event of the chain (or one an archive cut kept,
// archive.go).

// format2Prefix starts every format-2 body.
const format2Prefix = `{"v":2`

// isFormat2 reports whether body is a format-2 body.
func isFormat2(body string) bool {
	rest, ok := strings.CutPrefix(body, format2Prefix)
	return ok && rest != "" && (rest[0] == ',' || rest[0] == '}')
}

// markFormat2 returns the JSON object b with the format-2 marker as its
// first member.
func markFormat2(b []byte) []byte {
	if len(b) < 2 || b[0] != '{' {
		return b // not an object: hashed as format 1, which verify reports
	}
	out := make([]byte, 0, len(b)+len(format2Prefix)+1)
	out = append(out, format2Prefix...)
	if b[1] != '}' {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}

// eventHash is the chain hash, as 32 raw bytes, of an event that follows
// the event hashed prev (raw bytes; empty for the first event of a log).
func eventHash(prev []byte, id, kind string, at int64, body string) []byte {
	var x eventHasher
	return x.sum(prev, id, kind, at, body)
}

// eventHasher computes eventHash for one goroutine's events, reusing its
// buffer and sha256 state (no allocation per event).
type eventHasher struct {
	h        hash.Hash
	buf, out []byte
}

// sum is eventHash(prev, id, kind, at, body), valid until x's next sum.
func (x *eventHasher) sum(prev []byte, id, kind string, at int64, body string) []byte {
	if x.h == nil {
		x.h = sha256.New()
	}
	x.h.Reset()
	b := x.buf[:0]
	if !isFormat2(body) {
		b = hex.AppendEncode(b, prev)
	} else {
		b = append(b, prev...)
		b = append(b, '2', 0)
		b = append(b, id...)
		b = append(b, 0)
		b = append(b, kind...)
		b = append(b, 0)
		b = strconv.AppendInt(b, at, 10)
		b = append(b, 0)
	}
	x.buf = append(b, body...)
	x.h.Write(x.buf)
	x.out = x.h.Sum(x.out[:0])
	return x.out
}

// hashHex is a stored hash (32 raw bytes, or the hex text format-1 events
// and older logs hold) as hex text, the form reports and archives use.
func hashHex(stored []byte) string {
	if len(stored) == sha256.Size {
		return hex.EncodeToString(stored)
	}
	return string(stored)
}

// storedHashRaw is a stored hash column (raw, or hex text in format 1)
// as 32 raw bytes, like hashRaw(hashHex(stored)) without the round trip.
func storedHashRaw(stored []byte) []byte {
	if len(stored) == sha256.Size {
		return stored
	}
	return hashRaw(string(stored))
}

// hashRaw is a hash given as hex text (or already raw) as 32 raw bytes;
// nil for "" (no previous event). Anything else is returned as it is, so
// that it matches no real hash.
func hashRaw(s string) []byte {
	if len(s) == 2*sha256.Size {
		if b, err := hex.DecodeString(s); err == nil {
			return b
		}
	}
	if s == "" {
		return nil
	}
	return []byte(s)
}

// body2 is the format-2 body of a call's event, or of a context event.
// Status is omitted from a decision whose status is initialStatus of its
// action. Cx is the seq of the context event whose fields a decision's
// entry omits; 0 (absent) in a decision that carries them itself (written
// before context events existed).
type body2 struct {
	V        int       `json:"v"`
	Cx       int64     `json:"cx,omitempty"`
	Status   string    `json:"st,omitempty"`
	Decision *entry2   `json:"d,omitempty"`
	Verdict  *review2  `json:"r,omitempty"`
	Outcome  *outcome2 `json:"o,omitempty"`
	Context  *ctx2     `json:"c,omitempty"`
}

// ctx2 is what the decisions of one session and tool have in common: a
// context event holds it once, and each decision points at that event
// (body2.Cx) instead of repeating it.
type ctx2 struct {
	Client          toolgate.Peer        `json:"cl,omitzero"`
	Model           toolgate.Peer        `json:"mdl,omitzero"`
	Principal       toolgate.Principal   `json:"pr,omitzero"`
	Session         string               `json:"sess,omitempty"`
	Server          string               `json:"srv,omitempty"`
	ServerVersion   string               `json:"srv_v,omitempty"`
	Tool            string               `json:"tool,omitempty"`
	Name            string               `json:"name,omitempty"`
	Kind            string               `json:"ck,omitempty"`
	SchemaHash      string               `json:"sch,omitempty"`
	Annotations     toolgate.Annotations `json:"ann,omitzero"`
	RulesVersion    string               `json:"rv,omitempty"`
	RulesLabel      string               `json:"rl,omitempty"`
	Sandbox         string               `json:"sbx,omitempty"`
	ToolgateVersion string               `json:"tgv,omitempty"`
}

// ctxOf is d's context fields.
func ctxOf(d *Entry) ctx2 {
	return ctx2{Client: d.Client, Model: d.Model, Principal: d.Principal, Session: d.Session,
		Server: d.Server, ServerVersion: d.ServerVersion, Tool: d.Tool, Name: d.Name, Kind: d.Kind,
		SchemaHash: d.SchemaHash, Annotations: d.Annotations, RulesVersion: d.RulesVersion,
		RulesLabel: d.RulesLabel, Sandbox: d.Sandbox, ToolgateVersion: d.ToolgateVersion}
}

// fill sets d's context fields from c.
func (c *ctx2) fill(d *Entry) {
	d.Client, d.Model, d.Principal, d.Session = c.Client, c.Model, c.Principal, c.Session
	d.Server, d.ServerVersion, d.Tool, d.Name, d.Kind = c.Server, c.ServerVersion, c.Tool, c.Name, c.Kind
	d.SchemaHash, d.Annotations, d.RulesVersion = c.SchemaHash, c.Annotations, c.RulesVersion
	d.RulesLabel, d.Sandbox, d.ToolgateVersion = c.RulesLabel, c.Sandbox, c.ToolgateVersion
}

// entry2 is an Entry in a format-2 decision. ID is the event's call id;
// DecidedAt is the event's at unless Decided says otherwise; ArgsHash is
// the hash of Args, stored only when the arguments are not; Meta is
// absent for a call without _meta. Its context fields are empty when the
// body has a cx.
type entry2 struct {
	Received         int64                   `json:"rcv,omitempty"`
	Decided          int64                   `json:"dec,omitempty"`
	ctx2                                     // inline: the members cl ... tgv
	Args             json.RawMessage         `json:"args,omitempty"`
	ArgsHash         string                  `json:"ah,omitempty"`
	Meta             json.RawMessage         `json:"meta,omitempty"`
	Confidence       *float64                `json:"conf,omitempty"`
	Rule             string                  `json:"rule,omitempty"`
	Action           toolgate.Action         `json:"act"`
	Reason           string                  `json:"why,omitempty"`
	AutoApproved     bool                    `json:"auto,omitempty"`
	ConfidenceEffect string                  `json:"ce,omitempty"`
	Shadow           []toolgate.ShadowResult `json:"sh,omitempty"`
	EvalError        string                  `json:"err,omitempty"`
}

// review2 is a Review in a format-2 event; DecidedAt is the event's at
// unless Decided says otherwise.
type review2 struct {
	Approved bool   `json:"ok"`
	Reviewer string `json:"by,omitempty"`
	Channel  string `json:"ch,omitempty"`
	Reason   string `json:"why,omitempty"`
	Decided  int64  `json:"dec,omitempty"`
	Wait     int64  `json:"ttd,omitempty"`
}

// outcome2 is an Outcome in a format-2 event: its status is the event's;
// FinishedAt is the event's at unless Finished says otherwise.
type outcome2 struct {
	Error      string `json:"err,omitempty"`
	Duration   int64  `json:"dur,omitempty"`
	ResultSize int    `json:"size,omitempty"`
	ResultHash string `json:"rh,omitempty"`
	Finished   int64  `json:"fin,omitempty"`
}

// relTime is t as a format-2 time relative to the event's at: 0 (omitted)
// when equal, else its unix nanoseconds (-1 for the zero time, which has
// none).
func relTime(t time.Time, at int64) int64 {
	switch {
	case t.IsZero():
		return -1
	case t.UnixNano() == at:
		return 0
	}
	return t.UnixNano()
}

// absTime undoes relTime.
func absTime(n, at int64) time.Time {
	switch n {
	case -1:
		return time.Time{}
	case 0:
		n = at
	}
	return time.Unix(0, n).UTC()
}

// encodeEvent returns e's format-2 body.
func encodeEvent(e *event) ([]byte, error) {
	b := body2{V: 2, Status: e.Status, Context: e.context}
	if d := e.Decision; d != nil {
		if e.Status == initialStatus(d.Action) {
			b.Status = ""
		}
		b.Decision = newEntry2(d, e.At)
		if e.cx != 0 {
			b.Decision.ctx2 = ctx2{}
			b.Cx = max(e.cx, 0)
		}
	}
	if r := e.Verdict; r != nil {
		b.Verdict = newReview2(r, e.At)
	}
	if o := e.Outcome; o != nil {
		if o.Status != e.Status {
			return nil, fmt.Errorf("audit: outcome status %q differs from the event's %q", o.Status, e.Status)
		}
		b.Outcome = newOutcome2(o, e.At)
	}
	return json.Marshal(&b)
}

// argsStored reports whether a holds arguments, not just their hash.
func argsStored(a json.RawMessage) bool { return len(a) > 0 && string(a) != "null" }

// newEntry2 is d as a decision of an event at at.
func newEntry2(d *Entry, at int64) *entry2 {
	e := &entry2{
		Received: relTime(d.ReceivedAt, 0), Decided: relTime(d.DecidedAt, at), ctx2: ctxOf(d),
		Confidence: d.Confidence, Rule: d.Rule, Action: d.Action, Reason: d.Reason,
		AutoApproved: d.AutoApproved, ConfidenceEffect: d.ConfidenceEffect, Shadow: d.Shadow, EvalError: d.EvalError,
		Meta: d.Meta,
	}
	if argsStored(d.Args) {
		e.Args = d.Args
	} else {
		e.ArgsHash = d.ArgsHash
	}
	return e
}

// newReview2 is r as the verdict of an event at at.
func newReview2(r *Review, at int64) *review2 {
	return &review2{Approved: r.Approved, Reviewer: r.Reviewer, Channel: r.Channel, Reason: r.Reason,
		Decided: relTime(r.DecidedAt, at), Wait: int64(r.TimeToDecision)}
}

// newOutcome2 is o as the outcome of an event at at; its status is the
// event's.
func newOutcome2(o *toolgate.Outcome, at int64) *outcome2 {
	return &outcome2{Error: o.Error, Duration: int64(o.Duration), ResultSize: o.ResultSize,
		ResultHash: o.ResultHash, Finished: relTime(o.FinishedAt, at)}
}

// decodeEvent reads a call's event from its columns and body, in either
// format: the one decoder of event bodies (the projection, its readers and
// verify all use it). Bodies come from disk, which an attacker may have
// written: any input gives an event or an error, never a panic. It decodes
// as encoding/json does (jsonv1: the same rules on the v2 engine, about
// twice as fast; list, export, replay and verify decode one per call).
func decodeEvent(id, kind string, at int64, body string) (*event, error) {
	var e event
	if !isFormat2(body) {
		if err := jsonv1.Unmarshal([]byte(body), &e); err != nil {
			return nil, err
		}
		return &e, nil
	}
	var b body2
	if err := jsonv1.Unmarshal([]byte(body), &b); err != nil {
		return nil, err
	}
	switch {
	case kind == kindContext && b.Context == nil:
		return nil, errors.New("a context event without its context")
	case kind != kindContext && b.Context != nil:
		return nil, fmt.Errorf("a %s event with a context", kind)
	case b.Cx < 0 || b.Cx > 0 && b.Decision == nil:
		return nil, fmt.Errorf("cx %d on a %s event", b.Cx, kind)
	}
	e = event{Kind: kind, ID: id, At: at, Status: b.Status, context: b.Context}
	if d := b.Decision; d != nil {
		e.cx = b.Cx
		e.Decision = &Entry{
			ID: id, ReceivedAt: absTime(d.Received, 0), DecidedAt: absTime(d.Decided, at),
			Args: d.Args, ArgsHash: d.ArgsHash, Meta: d.Meta, Confidence: d.Confidence, Rule: d.Rule, Action: d.Action, Reason: d.Reason,
			AutoApproved: d.AutoApproved, ConfidenceEffect: d.ConfidenceEffect, Shadow: d.Shadow, EvalError: d.EvalError,
		}
		d.fill(e.Decision)
		if len(d.Args) > 0 {
			e.Decision.ArgsHash = argsHash(d.Args)
		}
		if e.Status == "" {
			e.Status = initialStatus(d.Action)
		}
	}
	if r := b.Verdict; r != nil {
		e.Verdict = &Review{Approved: r.Approved, Reviewer: r.Reviewer, Channel: r.Channel, Reason: r.Reason,
			DecidedAt: absTime(r.Decided, at), TimeToDecision: time.Duration(r.Wait)}
	}
	if o := b.Outcome; o != nil {
		e.Outcome = &toolgate.Outcome{Status: e.Status, Error: o.Error, Duration: time.Duration(o.Duration),
			ResultSize: o.ResultSize, ResultHash: o.ResultHash, FinishedAt: absTime(o.Finished, at)}
	}
	return &e, nil
}

// hexScan scans a stored hash (raw, or hex text) into *p as hex text.
type hexScan struct{ p *string }

func (h hexScan) Scan(v any) error {
	switch x := v.(type) {
	case []byte:
		*h.p = hashHex(x)
	case string:
		*h.p = hashHex([]byte(x))
	case nil:
		*h.p = ""
	default:
		return fmt.Errorf("audit: a hash stored as %T", v)
	}
	return nil
}
