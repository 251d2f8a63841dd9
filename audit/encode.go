package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
)

// This file is the canonical encoder of chained event bodies (and of the
// annotations and shadow columns). Its output is exactly json.Marshal's
// (HTML escaping, invalid UTF-8 replaced by U+FFFD, U+2028/U+2029 escaped,
// ES6 float formatting, omitempty, RFC 3339 times, field order), written
// by hand because json.Marshal's reflection costs more than the rest of
// encoding a call. Bodies are hashed and re-derived by Verify, so a single
// byte of difference breaks the chain: encode_test.go compares every field
// with json.Marshal (filling the types by reflection, so a field added to
// Entry, Review, Outcome, tools.Peer, tools.Annotations or
// rules.ShadowResult without a line here fails it), and FuzzEncodeEvent
// does the same on fuzzed values. A value json.Marshal rejects (a NaN
// confidence, a time outside years 0-9999) gets json.Marshal's error.

// bodyBufSize is the stack buffer an event body is built in before it is
// copied out; a decision body is typically 600-900 bytes.
const bodyBufSize = 1024

// marshalCanonical returns the canonical JSON of e, the bytes the chain
// hashes: json.Marshal(e), byte for byte, or json.Marshal's error. It is
// the only encoder of event bodies.
func marshalCanonical(e *event) ([]byte, error) {
	var buf [bodyBufSize]byte
	b, err := appendEvent(buf[:0], e)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

// appendEvent appends json.Marshal(e) to dst, or returns the error
// json.Marshal(e) returns.
func appendEvent(dst []byte, e *event) (_ []byte, err error) {
	open := len(dst)
	dst = append(dst, `{"kind":`...)
	dst = appendString(dst, e.Kind)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"at":`...)
	dst = strconv.AppendInt(dst, e.At, 10)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, e.Status)
	if e.Decision != nil {
		dst = key(dst, open, `"decision":`)
		if dst, err = appendEntry(dst, e.Decision); err != nil {
			return dst, err
		}
	}
	if e.Verdict != nil {
		dst = key(dst, open, `"verdict":`)
		if dst, err = appendReview(dst, e.Verdict); err != nil {
			return dst, err
		}
	}
	if e.Outcome != nil {
		dst = key(dst, open, `"outcome":`)
		if dst, err = appendOutcome(dst, e.Outcome); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendEntry(dst []byte, e *Entry) (_ []byte, err error) {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"received_at":`...)
	if dst, err = appendTime(dst, e.ReceivedAt); err != nil {
		return dst, err
	}
	dst = append(dst, `,"decided_at":`...)
	if dst, err = appendTime(dst, e.DecidedAt); err != nil {
		return dst, err
	}
	dst = append(dst, `,"client":`...)
	dst = appendPeer(dst, e.Client)
	dst = append(dst, `,"model":`...)
	dst = appendPeer(dst, e.Model)
	if p := &e.Principal; p.User != "" || p.Groups != nil || p.Auth != "" {
		dst = append(dst, `,"principal":`...)
		dst = appendPrincipal(dst, p)
	}
	if e.Session != "" {
		dst = append(dst, `,"session":`...)
		dst = appendString(dst, e.Session)
	}
	dst = append(dst, `,"server":`...)
	dst = appendString(dst, e.Server)
	if e.ServerVersion != "" {
		dst = append(dst, `,"server_version":`...)
		dst = appendString(dst, e.ServerVersion)
	}
	dst = append(dst, `,"tool":`...)
	dst = appendString(dst, e.Tool)
	if e.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, e.Name)
	}
	if e.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = appendString(dst, e.Kind)
	}
	if e.SchemaHash != "" {
		dst = append(dst, `,"schema_hash":`...)
		dst = appendString(dst, e.SchemaHash)
	}
	dst = append(dst, `,"annotations":`...)
	dst = appendAnnotations(dst, &e.Annotations)
	dst = append(dst, `,"args":`...)
	if e.Args == nil {
		dst = append(dst, "null"...)
	} else {
		// Arbitrary JSON (chained only by the old layout and tests):
		// json.Marshal compacts and HTML-escapes a RawMessage.
		b, err := json.Marshal(e.Args)
		if err != nil {
			return dst, err
		}
		dst = append(dst, b...)
	}
	dst = append(dst, `,"args_hash":`...)
	dst = appendString(dst, e.ArgsHash)
	if e.Confidence != nil {
		dst = append(dst, `,"confidence":`...)
		if dst, err = appendFloat(dst, *e.Confidence); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `,"rules_version":`...)
	dst = appendString(dst, e.RulesVersion)
	if e.RulesLabel != "" {
		dst = append(dst, `,"rules_label":`...)
		dst = appendString(dst, e.RulesLabel)
	}
	if e.Rule != "" {
		dst = append(dst, `,"rule":`...)
		dst = appendString(dst, e.Rule)
	}
	dst = append(dst, `,"action":`...)
	dst = appendString(dst, string(e.Action))
	if e.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, e.Reason)
	}
	if e.AutoApproved {
		dst = append(dst, `,"auto_approved":true`...)
	}
	if e.ConfidenceEffect != "" {
		dst = append(dst, `,"confidence_effect":`...)
		dst = appendString(dst, e.ConfidenceEffect)
	}
	if len(e.Shadow) > 0 {
		dst = append(dst, `,"shadow":`...)
		dst = appendShadow(dst, e.Shadow)
	}
	if e.EvalError != "" {
		dst = append(dst, `,"eval_error":`...)
		dst = appendString(dst, e.EvalError)
	}
	if e.Sandbox != "" {
		dst = append(dst, `,"sandbox":`...)
		dst = appendString(dst, e.Sandbox)
	}
	if e.ToolgateVersion != "" {
		dst = append(dst, `,"toolgate_version":`...)
		dst = appendString(dst, e.ToolgateVersion)
	}
	return append(dst, '}'), nil
}

// appendPrincipal encodes p as json.Marshal does: every field omitempty.
func appendPrincipal(dst []byte, p *toolgate.Principal) []byte {
	open := len(dst)
	dst = append(dst, '{')
	if p.User != "" {
		dst = key(dst, open, `"user":`)
		dst = appendString(dst, p.User)
	}
	if len(p.Groups) > 0 {
		dst = key(dst, open, `"groups":[`)
		for i, g := range p.Groups {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, g)
		}
		dst = append(dst, ']')
	}
	if p.Auth != "" {
		dst = key(dst, open, `"auth":`)
		dst = appendString(dst, p.Auth)
	}
	return append(dst, '}')
}

func appendReview(dst []byte, r *Review) (_ []byte, err error) {
	dst = append(dst, `{"approved":`...)
	dst = strconv.AppendBool(dst, r.Approved)
	if r.Reviewer != "" {
		dst = append(dst, `,"reviewer":`...)
		dst = appendString(dst, r.Reviewer)
	}
	dst = append(dst, `,"channel":`...)
	dst = appendString(dst, r.Channel)
	if r.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, r.Reason)
	}
	dst = append(dst, `,"decided_at":`...)
	if dst, err = appendTime(dst, r.DecidedAt); err != nil {
		return dst, err
	}
	dst = append(dst, `,"time_to_decision":`...)
	dst = strconv.AppendInt(dst, int64(r.TimeToDecision), 10)
	return append(dst, '}'), nil
}

func appendOutcome(dst []byte, o *toolgate.Outcome) (_ []byte, err error) {
	dst = append(dst, `{"status":`...)
	dst = appendString(dst, o.Status)
	if o.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, o.Error)
	}
	dst = append(dst, `,"duration":`...)
	dst = strconv.AppendInt(dst, int64(o.Duration), 10)
	dst = append(dst, `,"result_size":`...)
	dst = strconv.AppendInt(dst, int64(o.ResultSize), 10)
	if o.ResultHash != "" {
		dst = append(dst, `,"result_hash":`...)
		dst = appendString(dst, o.ResultHash)
	}
	dst = append(dst, `,"finished_at":`...)
	if dst, err = appendTime(dst, o.FinishedAt); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// appendPeer appends json.Marshal(p).
func appendPeer(dst []byte, p toolgate.Peer) []byte {
	open := len(dst)
	dst = append(dst, '{')
	if p.Name != "" {
		dst = key(dst, open, `"name":`)
		dst = appendString(dst, p.Name)
	}
	if p.Version != "" {
		dst = key(dst, open, `"version":`)
		dst = appendString(dst, p.Version)
	}
	return append(dst, '}')
}

// appendAnnotations appends json.Marshal(a): the annotations column and
// the decision body's "annotations".
func appendAnnotations(dst []byte, a *toolgate.Annotations) []byte {
	open := len(dst)
	dst = append(dst, '{')
	if a.Title != "" {
		dst = key(dst, open, `"title":`)
		dst = appendString(dst, a.Title)
	}
	for _, h := range [...]struct {
		k string
		v *bool
	}{
		{`"readOnlyHint":`, a.ReadOnly},
		{`"destructiveHint":`, a.Destructive},
		{`"idempotentHint":`, a.Idempotent},
		{`"openWorldHint":`, a.OpenWorld},
	} {
		if h.v != nil {
			dst = key(dst, open, h.k)
			dst = strconv.AppendBool(dst, *h.v)
		}
	}
	return append(dst, '}')
}

// appendShadow appends json.Marshal(sh) for a non-nil sh: the shadow column
// and the decision body's "shadow".
func appendShadow(dst []byte, sh []toolgate.ShadowResult) []byte {
	dst = append(dst, '[')
	for i := range sh {
		r := &sh[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"rule":`...)
		dst = appendString(dst, r.Rule)
		dst = append(dst, `,"action":`...)
		dst = appendString(dst, string(r.Action))
		if r.Reason != "" {
			dst = append(dst, `,"reason":`...)
			dst = appendString(dst, r.Reason)
		}
		if r.Error != "" {
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, r.Error)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// key appends the field name k ("name": quoted, with its colon), after a
// comma unless it is the first field of the object opened at dst[open].
func key(dst []byte, open int, k string) []byte {
	if len(dst) > open+1 {
		dst = append(dst, ',')
	}
	return append(dst, k...)
}

// appendTime appends json.Marshal(t) (time.Time.MarshalJSON: RFC 3339 with
// nanoseconds). Where MarshalJSON fails (a year outside [0,9999], a zone
// offset of 24 hours or more) it returns json.Marshal's error.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	dst = append(dst, '"')
	n0 := len(dst)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	// The same checks as time.Time.appendStrictRFC3339.
	bad := dst[n0+len("9999")] != '-'
	if n := len(dst); !bad && dst[n-1] != 'Z' {
		c := dst[n-len("Z07:00")]
		bad = '0' <= c && c <= '9' || 10*(dst[n-5]-'0')+(dst[n-4]-'0') >= 24
	}
	if bad {
		return dst, jsonError(t)
	}
	return append(dst, '"'), nil
}

// appendFloat appends f as json.Marshal formats a float64 (like ES6: %f
// unless the exponent is small or large, then %e without exponent
// padding). NaN and infinities get json.Marshal's error.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, jsonError(f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// jsonError returns the error json.Marshal gives for v, which an appender
// found it rejects. Its messages do not depend on where v sits in the
// event, so this is the error json.Marshal of the whole event returns.
func jsonError(v any) error {
	if _, err := json.Marshal(v); err != nil {
		return err
	}
	return fmt.Errorf("audit: encoder rejected %v, which encoding/json accepts", v)
}

const hexDigits = "0123456789abcdef"

// htmlSafe[b] says ASCII byte b goes into a JSON string as it is (not a
// control character, ", \, <, > or &). Read-only.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendString appends s as a JSON string exactly as json.Marshal does:
// ", \ and control characters escaped (\b \f \n \r \t by name, others as
// \u00XX), <, > and & escaped as \u003c, \u003e, \u0026, each byte of
// invalid UTF-8 replaced by \ufffd, and U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
