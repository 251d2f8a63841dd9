package tools

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestPassThrough(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		pass    bool
		isError bool
		want    string // the bytes passed on, when not raw itself
	}{
		{"plain", `{"content":[{"type":"text","text":"hi"}]}`, true, false, ""},
		{"tool error", `{"content":[{"type":"text","text":"no"}],"isError":true}`, true, true, ""},
		{"empty content, extra fields kept", `{"content":[],"structuredContent":{"a":1},"_meta":{"x":"<&>"},"future":1}`, true, false, ""},
		{"unknown content type", `{"content":[{"type":"hologram","depth":3}]}`, true, false, ""},
		{"spaces kept", `{ "content" : [ ] , "isError" : false }`, true, false, ""},
		{"pretty-printed", "{\n  \"content\": [\r\n    {\"type\": \"text\", \"text\": \"a\\nb\"}\n  ]\n}", true, false,
			`{"content":[{"type":"text","text":"a\nb"}]}`},
		{"no content", `{"isError":true}`, false, false, ""},
		{"null content", `{"content":null}`, false, false, ""},
		{"content not an array", `{"content":{"type":"text"}}`, false, false, ""},
		{"isError not a bool", `{"content":[],"isError":"yes"}`, false, false, ""},
		{"input required", `{"content":[],"resultType":"input_required","requestState":"s"}`, false, false, ""},
		{"not an object", `[1]`, false, false, ""},
		{"invalid", `{"content":[}`, false, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := passThrough(json.RawMessage(tc.raw))
			if ok != tc.pass {
				t.Fatalf("passed %v, want %v", ok, tc.pass)
			}
			if !ok {
				return
			}
			want := tc.want
			if want == "" {
				want = tc.raw
			}
			if string(r.Raw) != want || r.IsError != tc.isError || r.Decoded != nil {
				t.Errorf("got %s isError %v decoded %v, want %s isError %v", r.Raw, r.IsError, r.Decoded, want, tc.isError)
			}
		})
	}
}

// FuzzPassThrough holds passThrough to the decoding path: what it passes on
// is one line of valid JSON meaning what the upstream sent, and decodes to
// what the upstream's bytes decode to.
func FuzzPassThrough(f *testing.F) {
	for _, tc := range resultCases {
		f.Add([]byte(tc.raw))
	}
	f.Add([]byte("{\"content\":[\n{\"type\":\"text\",\"text\":\"x\"}],\r\"isError\":true}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := append([]byte(nil), raw...)
		r, ok := passThrough(in)
		if string(in) != string(raw) {
			t.Fatalf("input modified: %q", in)
		}
		if !ok {
			return
		}
		if !json.Valid(r.Raw) || bytes.ContainsAny(r.Raw, "\r\n") {
			t.Fatalf("passed on %q for %q", r.Raw, raw)
		}
		var a, b bytes.Buffer
		if json.Compact(&a, raw) != nil || json.Compact(&b, r.Raw) != nil || a.String() != b.String() {
			t.Fatalf("passed on %q for %q", r.Raw, raw)
		}
		oldRes, oldErr := decodeCallToolResult(append([]byte(nil), raw...))
		newRes, newErr := r.Decode()
		if d := sameOutcome(oldRes, oldErr, newRes, newErr); d != "" {
			t.Fatalf("input %q: %s", raw, d)
		}
		if oldErr == nil && oldRes.IsError != r.IsError {
			t.Fatalf("input %q: IsError %v, decoded %v", raw, r.IsError, oldRes.IsError)
		}
	})
}
