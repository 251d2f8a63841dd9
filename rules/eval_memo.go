package rules

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
)

// Memo decides calls with a Set and remembers each decision by the call's
// inputs: a call equal to an earlier one in everything the set's
// evaluation can read gets the earlier decision without evaluating. It
// serves replaying a log, where most calls repeat; a gate has no use for
// it. Safe for concurrent use.
type Memo struct {
	set *Set
	// now and session say whether any rule reads now or session.id: only
	// then are the call's time and session part of the key, since every
	// call has its own time.
	now, session bool
	max          int

	mu sync.Mutex
	m  map[string]toolgate.Decision
}

// Memo returns a Memo of s that remembers at most max decisions (calls
// beyond that are evaluated every time).
func (s *Set) Memo(max int) *Memo {
	m := &Memo{set: s, max: max, m: map[string]toolgate.Decision{}}
	if s != nil {
		for _, r := range s.rules {
			m.now = m.now || r.reads.now
			m.session = m.session || r.reads.session
		}
	}
	return m
}

// Evaluate is the set's Evaluate, remembered.
func (m *Memo) Evaluate(ctx context.Context, c toolgate.Call) toolgate.Decision {
	key, ok := m.key(nil, &c)
	if !ok || m.set == nil {
		return m.set.Evaluate(ctx, c)
	}
	m.mu.Lock()
	d, hit := m.m[string(key)]
	m.mu.Unlock()
	if hit {
		d.Shadow = slices.Clone(d.Shadow)
		return d
	}
	d = m.set.Evaluate(ctx, c)
	if ctx.Err() != nil {
		return d // decided by the cancellation, not by the call
	}
	m.mu.Lock()
	if len(m.m) < m.max {
		m.m[string(key)] = d
	}
	m.mu.Unlock()
	d.Shadow = slices.Clone(d.Shadow)
	return d
}

// key appends to dst an encoding of every field of c that evaluation can
// read (the CEL variables, the normalized call's inputs, the confidence
// thresholds), distinct calls getting distinct keys. It leaves out only
// what no rule can read: the call's ID, and its Time and
// SessionID when no rule reads now or session.id. ok is false for
// arguments that are not JSON values, which evaluation converts first.
// TestMemoKeyCoversCall fails when tools.Call gains a field not named here.
func (m *Memo) key(dst []byte, c *toolgate.Call) (_ []byte, ok bool) {
	for _, s := range []string{c.Server, c.Tool, c.Name, c.Kind, c.SchemaHash, c.ServerVersion, c.Description,
		string(c.InputSchema), string(c.Pin.State), c.Pin.Err, c.Client.Name, c.Client.Version,
		c.Model.Name, c.Model.Version, c.Sandbox, c.Principal.User, c.Principal.Auth} {
		dst = appendKeyString(dst, s)
	}
	dst = appendKeyTime(dst, c.Pin.ApprovedAt)
	dst = binary.AppendUvarint(dst, uint64(len(c.Principal.Groups)))
	for _, g := range c.Principal.Groups {
		dst = appendKeyString(dst, g)
	}
	a := &c.Annotations
	dst = appendKeyString(dst, a.Title)
	for _, p := range []*bool{a.ReadOnly, a.Destructive, a.Idempotent, a.OpenWorld} {
		switch {
		case p == nil:
			dst = append(dst, 'n')
		case *p:
			dst = append(dst, 't')
		default:
			dst = append(dst, 'f')
		}
	}
	if c.Confidence == nil {
		dst = append(dst, 'n')
	} else {
		dst = binary.BigEndian.AppendUint64(append(dst, 'd'), math.Float64bits(*c.Confidence))
	}
	if m.now {
		dst = appendKeyTime(dst, c.Time)
	}
	if m.session {
		dst = appendKeyString(dst, c.SessionID)
	}
	for _, v := range []map[string]any{c.Args, c.Meta} {
		if v == nil {
			dst = append(dst, 'n')
		} else if dst, ok = appendKeyValue(dst, v, 0); !ok {
			return dst, false
		}
	}
	return dst, true
}

func appendKeyString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// appendKeyTime encodes t's instant and its zone, which formatting shows.
func appendKeyTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 'z')
	}
	name, off := t.Zone()
	dst = binary.BigEndian.AppendUint64(append(dst, 't'), uint64(t.UnixNano()))
	return appendKeyString(binary.AppendVarint(dst, int64(off)), name)
}

// appendKeyValue encodes a JSON value as decoded by encoding/json, map
// keys sorted; ok is false for anything else (see jsonNative).
func appendKeyValue(dst []byte, v any, depth int) (_ []byte, ok bool) {
	if depth > maxArgsDepth {
		return dst, false
	}
	switch x := v.(type) {
	case nil:
		return append(dst, 'n'), true
	case bool:
		if x {
			return append(dst, 't'), true
		}
		return append(dst, 'f'), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, false
		}
		return binary.BigEndian.AppendUint64(append(dst, 'd'), math.Float64bits(x)), true
	case string:
		return appendKeyString(append(dst, 's'), x), true
	case []any:
		dst = binary.AppendUvarint(append(dst, 'l'), uint64(len(x)))
		for _, e := range x {
			if dst, ok = appendKeyValue(dst, e, depth+1); !ok {
				return dst, false
			}
		}
		return dst, true
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = binary.AppendUvarint(append(dst, 'm'), uint64(len(x)))
		for _, k := range keys {
			dst = appendKeyString(dst, k)
			if dst, ok = appendKeyValue(dst, x[k], depth+1); !ok {
				return dst, false
			}
		}
		return dst, true
	}
	return dst, false
}

// Len is how many decisions m remembers.
func (m *Memo) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
