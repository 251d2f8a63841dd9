package audit

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// rowView is what a calls row reflects of an event (see scanRowFields).
type rowView struct {
	status      string
	cx          int64
	dec, ver    bool
	cols        slimRow
	argsInEvent bool
}

func viewOf(e *event) rowView {
	v := rowView{status: e.Status, cx: e.cx}
	if d := e.Decision; d != nil {
		v.dec, v.argsInEvent = true, argsStored(d.Args)
		slimEntry(&v.cols, d)
	}
	if r := e.Verdict; r != nil {
		v.ver = true
		slimVerdict(&v.cols, r)
	}
	return v
}

// event is f as decodeEvent gives it, for the fields f holds.
func (f *rowFields) event() *event {
	st, d, r := f.parts()
	return &event{Status: st, Decision: d, Verdict: r, cx: f.cx}
}

// scanSeeds are the bodies encodeEvent writes for the synthetic log's
// calls and for a decision with every field set.
func scanSeeds(t testing.TB) []*event {
	t.Helper()
	yes, conf := true, 0.25
	full := &Entry{ID: "01FULL", ReceivedAt: time.Unix(0, 17).UTC(), DecidedAt: time.Unix(0, 23).UTC(),
		Client: toolgate.Peer{Name: "c", Version: "1"}, Model: toolgate.Peer{Name: "m", Version: "x"},
		Principal: toolgate.Principal{User: "u", Groups: []string{"g", "h"}, Auth: "token"},
		Session:   "s", Server: "srv", ServerVersion: "2", Tool: "t", Name: "n", Kind: "resource", SchemaHash: "sh",
		Annotations: toolgate.Annotations{Title: "T", ReadOnly: &yes, Destructive: &yes, Idempotent: &yes, OpenWorld: &yes},
		Args:        json.RawMessage(`{"a":"\u003cb\u003e é", "n": [1.5e3, -2, null, true, {}]}`),
		Meta:        json.RawMessage(`{"dry_run":false,"p":{"q":[null,"\u202e"]}}`),
		Confidence:  &conf, RulesVersion: "v1", RulesLabel: "l", Rule: "r", Action: toolgate.Review, Reason: "why",
		AutoApproved: true, ConfidenceEffect: "none", Shadow: []toolgate.ShadowResult{{Rule: "x", Action: toolgate.Deny, Reason: "y", Error: "z"}},
		EvalError: "e", Sandbox: "sb", ToolgateVersion: "tv",
	}
	hashOnly := *full
	hashOnly.Args, hashOnly.ArgsHash = nil, argsHash(full.Args)
	named := Entry{ID: full.ID, ReceivedAt: full.ReceivedAt, DecidedAt: full.DecidedAt, Args: full.Args, ArgsHash: argsHash(full.Args),
		Rule: "r", Action: toolgate.Review} // naming context event 7: no context fields of its own
	evs := []*event{
		{Kind: kindDecision, ID: full.ID, At: 23, Status: toolgate.StatusPending, Decision: full},
		{Kind: kindDecision, ID: full.ID, At: 23, Status: toolgate.StatusStarted, Decision: &hashOnly},
		{Kind: kindVerdict, ID: full.ID, At: 40, Status: toolgate.StatusStarted,
			Verdict: &Review{Approved: true, Reviewer: "r", Channel: "slack", Reason: "ok", DecidedAt: time.Unix(0, 39), TimeToDecision: time.Second}},
		{Kind: kindStatus, ID: full.ID, At: 41, Status: toolgate.StatusRefused},
		{Kind: kindDecision, ID: full.ID, At: 23, Status: toolgate.StatusPending, Decision: &named, cx: 7},
	}
	for r, err := range synthRecords(48) {
		if err != nil {
			t.Fatal(err)
		}
		at := r.DecidedAt.UnixNano()
		evs = append(evs, &event{Kind: kindDecision, ID: r.ID, At: at, Status: initialStatus(r.Action), Decision: &r.Entry})
		if r.Review != nil {
			evs = append(evs, &event{Kind: kindVerdict, ID: r.ID, At: r.Review.DecidedAt.UnixNano(), Status: r.Status, Verdict: r.Review})
		}
		if o := r.Outcome; o != nil {
			o.Status = r.Status
			evs = append(evs, &event{Kind: kindOutcome, ID: r.ID, At: o.FinishedAt.UnixNano(), Status: r.Status, Outcome: o})
		}
	}
	return evs
}

// TestScanRowFields: every body encodeEvent writes is read by
// scanRowFields (not left to decodeEvent), to what decodeEvent makes of
// it; an edit decodeEvent reads differently or refuses is left to it.
func TestScanRowFields(t *testing.T) {
	for _, e := range scanSeeds(t) {
		b, err := encodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		var f rowFields
		if !f.scanRowFields(e.ID, body) {
			t.Errorf("%s: scanRowFields does not read %s", e.Kind, body)
			continue
		}
		if g, w := viewOf(f.event()), viewOf(e); g != w {
			t.Errorf("%s: scanRowFields reads %s as %+v, want %+v", e.Kind, body, g, w)
		}
	}
	for _, body := range []string{
		`{"v":2,"st":"ok","st":"refused"}`,                // a member twice: the last counts
		`{"v":2,"cx":-1,"d":{"act":"allow"}}`,             // a negative cx
		`{"v":2,"cx":3,"st":"ok"}`,                        // a cx on no decision
		`{"v":2,"st":"ok","c":{"tool":"t"}}`,              // a context in a call's event
		`{"v":2,"d":{"act":"allow","rule":"r"}}`,          // out of order
		`{"v":2,"d":{"rule":"r","Act":"deny"}}`,           // matched in any case
		`{"v":2,"d":{"rule":"r\u0030"}}`,                  // an escape in a value the row holds
		`{"v":2,"d":{"rcv":1.0}}`,                         // not an integer
		`{"v":2,"d":{"rcv":-0}}`,                          // not as encodeEvent writes it
		`{"v":2,"d":{"rcv":99999999999999999999}}`,        // out of range
		`{"v":2,"d":{"sess":null}}`,                       // null
		`{"v":2,"d":{"args":{"a":1,}}}`,                   // not JSON
		`{"v":2,"d":{"args":"\ud800"}}`,                   // a lone surrogate
		`{"v":2,"d":{"pr":{"groups":["a",1]}}}`,           // wrong type
		`{"v":2,"d":{"cl":{"name":"a","x":1}}}`,           // an unknown member
		`{"v":2,"st":"ok"} `,                              // trailing space
		`{"v":2,"st":"ok"}x`,                              // trailing garbage
		`{"v":2, "st":"ok"}`,                              // whitespace
		"{\"v\":2,\"st\":\"\xff\"}",                       // invalid UTF-8
		`{"v":2,"o":{"size":1e2}}`,                        // exponent
		`{"v":2,"d":{"conf":1e-9}}`,                       // exponent
		`{"kind":"decision","id":"x","status":"started"}`, // format 1
		`{"v":2,"d":{"args":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, // deep
	} {
		var f rowFields
		if f.scanRowFields("01X", body) {
			t.Errorf("scanRowFields reads %s (as %+v): want it left to decodeEvent", body, viewOf(f.event()))
		}
	}
}

// FuzzScanRowFields holds scanRowFields to decodeEvent: a body it reads
// decodes, to the same fields a row reflects.
func FuzzScanRowFields(f *testing.F) {
	for _, e := range scanSeeds(f) {
		b, err := encodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Kind, e.At, string(b))
	}
	f.Add(kindDecision, int64(5), `{"v":2,"d":{"rcv":-1,"args":[{"a":"\u00e9\n"},1.5E+3,0,-7,true,false,null]}}`)
	f.Add(kindVerdict, int64(5), `{"v":2,"r":{"ok":false,"ttd":-5}}`)
	f.Fuzz(func(t *testing.T, kind string, at int64, body string) {
		var f rowFields
		if !f.scanRowFields("01F", body) {
			return
		}
		want, err := decodeEvent("01F", kind, at, body)
		if err != nil {
			t.Fatalf("scanRowFields reads %s, decodeEvent refuses it: %v", body, err)
		}
		if g, w := viewOf(f.event()), viewOf(want); g != w {
			t.Fatalf("%s: scanRowFields reads %+v, decodeEvent %+v", body, g, w)
		}
	})
}

// jsonMembers are the JSON member names of struct type t in the order
// json.Marshal writes them (an untagged embedded struct's inline).
func jsonMembers(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if f.Anonymous && f.Tag.Get("json") == "" {
			names = append(names, jsonMembers(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// TestScanKeysInOrder: the members scanRowFields reads are those of the
// structs encodeEvent writes, in their order, so that every body it writes
// is read without decodeEvent (a field added to body2 must be added here).
func TestScanKeysInOrder(t *testing.T) {
	for keys, v := range map[string]any{
		body2Keys: body2{}, entry2Keys: entry2{}, review2Keys: review2{}, outcome2Keys: outcome2{},
		peerKeys: toolgate.Peer{}, principalKeys: toolgate.Principal{}, annotationsKeys: toolgate.Annotations{},
		shadowKeys: toolgate.ShadowResult{},
	} {
		if got := strings.Join(jsonMembers(reflect.TypeOf(v)), " "); got != keys {
			t.Errorf("%T has members %q, scanRowFields reads %q", v, got, keys)
		}
	}
}
