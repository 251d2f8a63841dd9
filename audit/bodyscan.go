package audit

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
)

// rowFields is what scanRowFields reads of a call's event: its status,
// and its decision and verdict when it has them.
type rowFields struct {
	status     string
	cx         int64 // the context event the decision names (0: none)
	d          Entry
	r          Review
	hasD, hasR bool
}

// parts are f's status, decision and verdict (nil: none), as decodeEvent
// gives them in an event.
func (f *rowFields) parts() (string, *Entry, *Review) {
	var (
		d *Entry
		r *Review
	)
	if f.hasD {
		d = &f.d
	}
	if f.hasR {
		r = &f.r
	}
	return f.status, d, r
}

// scanRowFields reads a format-2 body of a call's event into f the way
// decodeEvent does, but only for the fields a calls row reflects: the
// event's status, and of its decision (if any) ID, ReceivedAt,
// Client.Name, Model, Session, Server, Tool, Kind, Principal.User,
// RulesVersion, RulesLabel, Rule, Action, AutoApproved, EvalError and
// Args, and of its verdict (if any) Approved, Channel and TimeToDecision;
// and the cx its decision names, whose context fields the caller fills in
// (ctx2.fill over them, as event.resolve does). Every other field is
// checked to have a value decodeEvent accepts, not decoded.
//
// It accepts only bodies shaped as encodeEvent writes them: no whitespace
// but inside the arguments and _meta, each member at most once and by its
// exact name, strings without escapes (but those skipped), integers
// without fraction or exponent, no null (but in the arguments and _meta),
// valid UTF-8. For any other body it returns false and the caller decodes
// it with decodeEvent; for a body it accepts, decodeEvent succeeds with
// the same values of those fields (FuzzScanRowFields). The fast pass of
// Verify reads every event with it, at a fraction of decodeEvent's cost.
func (f *rowFields) scanRowFields(id, body string) bool {
	if !isFormat2(body) || !utf8.ValidString(body) {
		return false
	}
	s := bodyScanner{b: body}
	*f = rowFields{}
	ok := s.object(body2Keys, func(key string) bool {
		switch key {
		case "v":
			_, ok := s.int()
			return ok
		case "cx":
			n, ok := s.int()
			f.cx = n
			return ok && n >= 0
		case "st":
			return s.str(&f.status)
		case "d":
			f.d, f.hasD = Entry{ID: id, ReceivedAt: absTime(0, 0)}, true // as decodeEvent, without "rcv"
			return s.decision(&f.d)
		case "r":
			f.hasR = true
			return s.verdict(&f.r)
		case "o":
			return s.outcome()
		}
		return false
	})
	if !ok || s.i != len(s.b) || f.cx != 0 && !f.hasD {
		return false
	}
	if f.hasD && f.status == "" {
		f.status = initialStatus(f.d.Action)
	}
	return true
}

// The members of each object scanRowFields reads, in the order of their
// struct's fields (TestScanKeysInOrder).
const (
	body2Keys       = "v cx st d r o c"
	entry2Keys      = "rcv dec cl mdl pr sess srv srv_v tool name ck sch ann rv rl sbx tgv args ah meta conf rule act why auto ce sh err"
	review2Keys     = "ok by ch why dec ttd"
	outcome2Keys    = "err dur size rh fin"
	peerKeys        = "name version"
	principalKeys   = "user groups auth"
	annotationsKeys = "title readOnlyHint destructiveHint idempotentHint openWorldHint"
	shadowKeys      = "rule action reason error"
)

// bodyScanner reads b from i; each method reads one value of the type
// its name says and reports whether it was one.
type bodyScanner struct {
	b string
	i int
}

// maxScanDepth bounds the nesting of the arguments scanned; deeper ones
// are left to decodeEvent.
const maxScanDepth = 64

// decision reads an entry2 into the fields of d scanRowFields names.
func (s *bodyScanner) decision(d *Entry) bool {
	return s.object(entry2Keys, func(key string) bool {
		switch key {
		case "rcv":
			n, ok := s.int()
			d.ReceivedAt = absTime(n, 0)
			return ok
		case "dec":
			_, ok := s.int()
			return ok
		case "cl":
			return s.peer(&d.Client)
		case "mdl":
			return s.peer(&d.Model)
		case "pr":
			return s.object(principalKeys, func(key string) bool {
				switch key {
				case "user":
					return s.str(&d.Principal.User)
				case "groups":
					return s.strArray()
				case "auth":
					return s.skipStr()
				}
				return false
			})
		case "sess":
			return s.str(&d.Session)
		case "srv":
			return s.str(&d.Server)
		case "tool":
			return s.str(&d.Tool)
		case "ck":
			return s.str(&d.Kind)
		case "ann":
			return s.object(annotationsKeys, func(key string) bool {
				switch key {
				case "title":
					return s.skipStr()
				case "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint":
					_, ok := s.bool()
					return ok
				}
				return false
			})
		case "args":
			from := s.i
			if !s.value(0) {
				return false
			}
			d.Args = json.RawMessage(s.b[from:s.i])
			return true
		case "meta":
			return s.value(0)
		case "conf":
			return s.number()
		case "rv":
			return s.str(&d.RulesVersion)
		case "rl":
			return s.str(&d.RulesLabel)
		case "rule":
			return s.str(&d.Rule)
		case "act":
			var a string
			ok := s.str(&a)
			d.Action = toolgate.Action(a)
			return ok
		case "auto":
			var ok bool
			d.AutoApproved, ok = s.bool()
			return ok
		case "err":
			return s.str(&d.EvalError)
		case "sh":
			return s.array(func() bool {
				return s.object(shadowKeys, func(key string) bool {
					switch key {
					case "rule", "action", "reason", "error":
						return s.skipStr()
					}
					return false
				})
			})
		case "srv_v", "name", "sch", "ah", "why", "ce", "sbx", "tgv":
			return s.skipStr()
		}
		return false
	})
}

// verdict reads a review2 into the fields of r scanRowFields names.
func (s *bodyScanner) verdict(r *Review) bool {
	return s.object(review2Keys, func(key string) bool {
		switch key {
		case "ok":
			var ok bool
			r.Approved, ok = s.bool()
			return ok
		case "ch":
			return s.str(&r.Channel)
		case "ttd":
			n, ok := s.int()
			r.TimeToDecision = time.Duration(n)
			return ok
		case "by", "why":
			return s.skipStr()
		case "dec":
			_, ok := s.int()
			return ok
		}
		return false
	})
}

// outcome checks an outcome2; the row reflects only its event's status.
func (s *bodyScanner) outcome() bool {
	return s.object(outcome2Keys, func(key string) bool {
		switch key {
		case "err", "rh":
			return s.skipStr()
		case "dur", "fin":
			_, ok := s.int()
			return ok
		case "size": // an int
			n, ok := s.int()
			return ok && int64(int(n)) == n
		}
		return false
	})
}

func (s *bodyScanner) peer(p *toolgate.Peer) bool {
	return s.object(peerKeys, func(key string) bool {
		switch key {
		case "name":
			return s.str(&p.Name)
		case "version":
			return s.str(&p.Version)
		}
		return false
	})
}

// object reads an object whose members member reads by name. keys are
// the names it may have, space-separated, in the order encodeEvent writes
// them: a body's members must come in that order, each at most once.
func (s *bodyScanner) object(keys string, member func(key string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		var key string
		if !s.str(&key) || !s.byte(':') {
			return false
		}
		for !strings.HasPrefix(keys, key) || (len(keys) > len(key) && keys[len(key)] != ' ') {
			i := strings.IndexByte(keys, ' ')
			if i < 0 {
				return false // not a member, or out of order
			}
			keys = keys[i+1:]
		}
		keys = keys[min(len(key)+1, len(keys)):]
		if !member(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// array reads an array whose elements elem reads.
func (s *bodyScanner) array(elem func() bool) bool {
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.byte(']') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// strArray reads an array of strings.
func (s *bodyScanner) strArray() bool { return s.array(s.skipStr) }

func (s *bodyScanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes into *dst (a substring of the body).
func (s *bodyScanner) str(dst *string) bool {
	if !s.byte('"') {
		return false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			*dst, s.i = s.b[s.i:j], j+1
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// skipStr reads a string, escapes allowed but for a surrogate's.
func (s *bodyScanner) skipStr() bool {
	if !s.byte('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c != '\\':
			continue
		}
		if s.i >= len(s.b) {
			return false
		}
		c = s.b[s.i]
		s.i++
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if s.i+4 > len(s.b) {
				return false
			}
			r, err := strconv.ParseUint(s.b[s.i:s.i+4], 16, 16)
			if err != nil || (r >= 0xd800 && r < 0xe000) {
				return false
			}
			s.i += 4
		default:
			return false
		}
	}
	return false
}

// int reads an integer: 0 or an optional minus and digits not starting
// with 0, in int64's range.
func (s *bodyScanner) int() (int64, bool) {
	from := s.i
	s.byte('-')
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	lit := s.b[from:s.i]
	switch {
	case s.i == digits, s.b[digits] == '0' && (s.i > digits+1 || digits > from):
		return 0, false
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	return n, err == nil
}

// number reads a number in the decimal notation encoding/json writes a
// float64 in when it needs no exponent.
func (s *bodyScanner) number() bool {
	if _, ok := s.int(); !ok {
		return false
	}
	if !s.byte('.') {
		return true
	}
	from := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > from && s.i-from <= 17
}

func (s *bodyScanner) bool() (v, ok bool) {
	switch {
	case len(s.b)-s.i >= 4 && s.b[s.i:s.i+4] == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && s.b[s.i:s.i+5] == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// value reads any JSON value, whitespace around it allowed, nested at
// most maxScanDepth deep.
func (s *bodyScanner) value(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	ok := false
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
		s.space()
		if ok = s.byte('}'); ok {
			break
		}
		for {
			s.space()
			if !s.skipStr() {
				return false
			}
			s.space()
			if !s.byte(':') || !s.value(depth+1) {
				return false
			}
			if s.byte(',') {
				continue
			}
			ok = s.byte('}')
			break
		}
	case c == '[':
		s.i++
		s.space()
		if ok = s.byte(']'); ok {
			break
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if s.byte(',') {
				continue
			}
			ok = s.byte(']')
			break
		}
	case c == '"':
		ok = s.skipStr()
	case c == 't' || c == 'f':
		_, ok = s.bool()
	case c == 'n':
		if ok = len(s.b)-s.i >= 4 && s.b[s.i:s.i+4] == "null"; ok {
			s.i += 4
		}
	default:
		ok = s.jsonNumber()
	}
	s.space()
	return ok
}

// jsonNumber reads a number in JSON's grammar.
func (s *bodyScanner) jsonNumber() bool {
	if _, ok := s.int(); !ok { // also out of int64's range: left to decodeEvent
		return false
	}
	if s.byte('.') {
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if !s.byte('+') {
			s.byte('-')
		}
		return s.digits()
	}
	return true
}

func (s *bodyScanner) digits() bool {
	from := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > from
}

func (s *bodyScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}
