package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
)

// checkEncoding fails t unless the hand-written encoders agree with
// json.Marshal on e: the same bytes, or the same error.
func checkEncoding(t *testing.T, e *event) {
	t.Helper()
	want, wantErr := json.Marshal(e)
	got, err := marshalCanonical(e)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) || !bytes.Equal(got, want) {
		t.Fatalf("marshalCanonical = %s, %v\njson.Marshal     = %s, %v\nevent: %#v", got, err, want, wantErr, e)
	}
	if wantErr == nil {
		// Appending after other bytes.
		if got, _ := appendEvent([]byte("prefix"), e); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("appendEvent = %s\njson.Marshal = %s", got, want)
		}
	}
	if d := e.Decision; d != nil {
		want, _ := json.Marshal(d.Annotations)
		if got := appendAnnotations(nil, &d.Annotations); !bytes.Equal(got, want) {
			t.Fatalf("appendAnnotations = %s, json.Marshal = %s", got, want)
		}
		if len(d.Shadow) > 0 {
			want, _ := json.Marshal(d.Shadow)
			if got := appendShadow(nil, d.Shadow); !bytes.Equal(got, want) {
				t.Fatalf("appendShadow = %s, json.Marshal = %s", got, want)
			}
		}
	}
}

// specialStrings are the strings json.Marshal escapes or rewrites.
var specialStrings = []string{
	"",
	"plain",
	`<script>alert("x&y")</script>`,
	"line\u2028para\u2029end",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
	`back\slash "quoted" /slash`,
	"héllo wörld 世界 🎉",
	"\xff\xfe invalid",
	"trunc\xe2\x80",
	"\xed\xa0\x80 surrogate",
	"\xe2\x80\xa8\xe2\x80\xa9",
	"ok\u2027\u202a",
}

// specialFloats cover both of json.Marshal's float formats, their cutoffs
// and the values it rejects.
var specialFloats = []float64{
	0, math.Copysign(0, -1), 0.5, 1, -1, 0.1, 1.0 / 3, 123456789.125,
	1e-6, 9.99999e-7, -1e-7, 1e-9, 1e-10, 5e-324, 1e20, 1e21, -1e21, 1.5e300, math.MaxFloat64,
	math.NaN(), math.Inf(1), math.Inf(-1),
}

// filler fills values of the encoded types by reflection from a stream of
// choices. Because it walks the types rather than naming fields, a field
// added to event or any type it holds gets values too, and the comparison
// with json.Marshal fails until encode.go writes it.
type filler struct {
	choices []byte // cycled through
	i       int
	strs    []string
	n       int64
	x       float64
	rng     *rand.Rand // when set, choices come from it instead
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func (f *filler) next() int {
	if f.rng != nil {
		return f.rng.IntN(256)
	}
	if len(f.choices) == 0 {
		return 0
	}
	c := f.choices[f.i%len(f.choices)]
	f.i++
	return int(c)
}

func (f *filler) str() string {
	c := f.next()
	switch {
	case c%4 == 0 && len(f.strs) > 0:
		return f.strs[c/4%len(f.strs)]
	case c%4 == 1 && len(f.strs) > 0:
		return f.strs[c/4%len(f.strs)] + specialStrings[c%len(specialStrings)]
	default:
		return specialStrings[c%len(specialStrings)]
	}
}

func (f *filler) int() int64 {
	switch c := f.next(); c % 5 {
	case 0:
		return 0
	case 1:
		return f.n
	case 2:
		return -f.n
	case 3:
		return int64(c) * 1_000_003
	default:
		return []int64{math.MaxInt64, math.MinInt64, 1, -1}[c/5%4]
	}
}

func (f *filler) float() float64 {
	if c := f.next(); c%3 != 0 {
		return specialFloats[c%len(specialFloats)]
	}
	return f.x
}

func (f *filler) time() time.Time {
	switch c := f.next(); c % 8 {
	case 0:
		return time.Time{}
	case 1, 2:
		return time.Unix(0, f.n).UTC()
	case 3:
		return time.Unix(0, f.n).In(time.FixedZone("", int(f.n%(30*3600))))
	case 4:
		return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	case 5:
		return time.Date(-1, 12, 31, 23, 59, 59, 999, time.UTC)
	case 6:
		return time.Unix(f.n, int64(c)).UTC()
	default:
		return time.Date(2026, 3, 1, 11, 0, 0, c*1000, time.FixedZone("X", -(c%24)*3600-1800))
	}
}

func (f *filler) fill(v reflect.Value) {
	switch v.Type() {
	case timeType:
		v.Set(reflect.ValueOf(f.time()))
		return
	case rawType:
		raws := []json.RawMessage{nil, nil, nil, json.RawMessage(`{"a": "<&>", "b" : [1, 2.50]}`),
			json.RawMessage("\"\u2028\""), json.RawMessage(`{"x":`), json.RawMessage{}}
		v.Set(reflect.ValueOf(raws[f.next()%len(raws)]))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(f.str())
	case reflect.Bool:
		v.SetBool(f.next()%2 == 1)
	case reflect.Int, reflect.Int64:
		v.SetInt(f.int())
	case reflect.Float64:
		v.SetFloat(f.float())
	case reflect.Pointer:
		if f.next()%4 != 0 {
			p := reflect.New(v.Type().Elem())
			f.fill(p.Elem())
			v.Set(p)
		}
	case reflect.Slice:
		c := f.next()
		if c%5 == 0 {
			return // nil
		}
		n := c % 4 // 0: empty, not nil
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i))
			}
		}
	default:
		panic(fmt.Sprintf("filler: no rule for %s (teach the filler and encode.go)", v.Type()))
	}
}

func (f *filler) event() *event {
	var e event
	f.fill(reflect.ValueOf(&e).Elem())
	return &e
}

func TestEncodeEventMatchesJSON(t *testing.T) {
	tru, fls := true, false
	conf := 0.875
	at := time.Date(2026, 3, 1, 11, 0, 0, 123456789, time.UTC)
	full := &Entry{
		ID: "01FULL", ReceivedAt: at, DecidedAt: at.Add(time.Millisecond),
		Client: toolgate.Peer{Name: "cursor", Version: "1.0"}, Model: toolgate.Peer{Name: "claude"},
		Session: "sess", Server: "fs", ServerVersion: "1.2.3", Tool: "write_file", Name: "fs__write_file",
		SchemaHash: "abc", Annotations: toolgate.Annotations{Title: "Write <file>", ReadOnly: &fls, Destructive: &tru, Idempotent: &fls, OpenWorld: &tru},
		ArgsHash: "0123", Confidence: &conf, RulesVersion: "v1", RulesLabel: "prod", Rule: "r1", Action: toolgate.Review,
		Reason: "needs a human & a <reason>", AutoApproved: true,
		Shadow:    []toolgate.ShadowResult{{Rule: "s1", Action: toolgate.Deny, Reason: "r", Error: "e"}, {Rule: "s2", Action: toolgate.Allow}},
		EvalError: "no such key", ToolgateVersion: "0.9.0",
	}
	withArgs := *full
	withArgs.Args = json.RawMessage(`{"path": "/tmp/<x>&y", "n": [1, 2]}`)
	minimal := &Entry{ID: "01MIN"}
	emptyShadow := *minimal
	emptyShadow.Shadow = []toolgate.ShadowResult{}
	zeroConf := *minimal
	zero := 0.0
	zeroConf.Confidence = &zero
	review := &Review{Approved: true, Reviewer: "alice", Channel: "slack", Reason: "ok <3", DecidedAt: at, TimeToDecision: 1500 * time.Millisecond}
	outcome := &toolgate.Outcome{Status: toolgate.StatusToolError, Error: "boom\n\"quoted\"", Duration: -time.Nanosecond, ResultSize: 1 << 40, ResultHash: "ff", FinishedAt: at}
	cases := []struct {
		name string
		e    *event
	}{
		{"empty", &event{}},
		{"decision full", &event{Kind: kindDecision, ID: "01FULL", At: at.UnixNano(), Status: toolgate.StatusPending, Decision: full}},
		{"decision with args", &event{Kind: kindDecision, ID: "01FULL", Status: toolgate.StatusPending, Decision: &withArgs}},
		{"decision minimal", &event{Kind: kindDecision, ID: "01MIN", Decision: minimal}},
		{"decision empty shadow", &event{Kind: kindDecision, Decision: &emptyShadow}},
		{"decision zero confidence", &event{Kind: kindDecision, Decision: &zeroConf}},
		{"verdict", &event{Kind: kindVerdict, ID: "01FULL", At: -1, Status: toolgate.StatusStarted, Verdict: review}},
		{"verdict zero", &event{Kind: kindVerdict, Verdict: &Review{}}},
		{"status", &event{Kind: kindStatus, ID: "01FULL", At: math.MaxInt64, Status: toolgate.StatusRefused}},
		{"outcome", &event{Kind: kindOutcome, ID: "01FULL", At: math.MinInt64, Status: toolgate.StatusToolError, Outcome: outcome}},
		{"outcome zero", &event{Kind: kindOutcome, Outcome: &toolgate.Outcome{}}},
		{"all three", &event{Decision: minimal, Verdict: review, Outcome: outcome}},
	}
	for _, s := range specialStrings {
		e := *full
		e.ID, e.Session, e.Reason, e.Client.Version, e.Annotations.Title = s, s, s, s, s
		e.Shadow = []toolgate.ShadowResult{{Rule: s, Action: toolgate.Action(s), Error: s}}
		cases = append(cases, struct {
			name string
			e    *event
		}{fmt.Sprintf("string %q", s), &event{Kind: s, Status: s, Decision: &e, Verdict: &Review{Reviewer: s, Channel: s}}})
	}
	for _, x := range specialFloats {
		e := *minimal
		e.Confidence = &x
		cases = append(cases, struct {
			name string
			e    *event
		}{fmt.Sprintf("confidence %v", x), &event{Decision: &e}})
	}
	for i, tm := range []time.Time{
		{}, time.Now(), at.In(time.FixedZone("", 5*3600+1800)), at.In(time.FixedZone("", -12*3600)),
		at.In(time.FixedZone("", 24*3600)), at.In(time.FixedZone("", -100*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600)),
	} {
		cases = append(cases, struct {
			name string
			e    *event
		}{fmt.Sprintf("time %d %v", i, tm), &event{Decision: &Entry{ReceivedAt: tm}, Verdict: &Review{DecidedAt: tm}, Outcome: &toolgate.Outcome{FinishedAt: tm}}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkEncoding(t, tc.e) })
	}
}

// TestEncodeEventRandom compares with json.Marshal on events with every
// field (of every type, by reflection) filled at random.
func TestEncodeEventRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		f := &filler{rng: rng, strs: []string{"x", "<é>"}, n: rng.Int64(), x: rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))}
		e := f.event()
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkEncoding(t, e) })
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add("", "", int64(0), 0.0, []byte{})                                                         // all zero
	f.Add("01ABC", "fs", int64(1772362800123456789), 0.5, []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}) // typical values
	f.Add("<&>", "\u2028", int64(-1), 1e-7, []byte{255, 254, 253, 252, 251, 250, 249, 248})        // HTML, separators, 'e' floats
	f.Add("\xff\xfe", "é世🎉", int64(math.MaxInt64), 1e21, []byte{3, 7, 11, 13, 17, 19, 23, 29, 31}) // invalid UTF-8, big float
	f.Add("\x00\b\f", "\"\\", int64(-90000), math.Inf(1), []byte{2, 4, 6, 8, 10, 12, 14, 16, 18})  // controls, infinity
	f.Fuzz(func(t *testing.T, a, b string, n int64, x float64, choices []byte) {
		fl := &filler{choices: choices, strs: []string{a, b}, n: n, x: x}
		checkEncoding(t, fl.event())
	})
}

// benchEvents are the three event bodies a proxied call chains, as Begin,
// Resolve and Finish build them.
func benchEvents(b *testing.B) map[string]*event {
	s := &Store{o: Options{Now: time.Now, ToolgateVersion: "0.9.0"}}
	r, err := s.newEntry(testCall("01BENCH", 7), testDecision(toolgate.Review))
	if err != nil {
		b.Fatal(err)
	}
	chained := r.e
	chained.Args = nil
	at := time.Date(2026, 3, 1, 11, 0, 1, 0, time.UTC)
	return map[string]*event{
		"decision": {Kind: kindDecision, ID: r.e.ID, At: r.at, Status: r.status, Decision: &chained},
		"verdict": {Kind: kindVerdict, ID: r.e.ID, At: at.UnixNano(), Status: toolgate.StatusStarted,
			Verdict: &Review{Approved: true, Reviewer: "alice", Channel: "slack", Reason: "fine", DecidedAt: at, TimeToDecision: 1500 * time.Millisecond}},
		"outcome": {Kind: kindOutcome, ID: r.e.ID, At: at.UnixNano(), Status: toolgate.StatusOK,
			Outcome: &toolgate.Outcome{Status: toolgate.StatusOK, Duration: 3 * time.Millisecond, ResultSize: 1234, ResultHash: "deadbeef", FinishedAt: at}},
	}
}

// BenchmarkEncodeEvent measures marshalCanonical of one chained event body.
func BenchmarkEncodeEvent(b *testing.B) {
	evs := benchEvents(b)
	for _, kind := range []string{"decision", "verdict", "outcome"} {
		e := evs[kind]
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshalCanonical(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewEntry measures Begin's encoding work done on the caller's
// goroutine: arguments, annotations, shadow results and the decision body.
func BenchmarkNewEntry(b *testing.B) {
	s := &Store{o: Options{Now: time.Now, ToolgateVersion: "0.9.0"}}
	c, d := testCall("01BENCH", 7), testDecision(toolgate.Allow)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.newEntry(c, d); err != nil {
			b.Fatal(err)
		}
	}
}
