package redact

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pemLineBreaks is what cutPEMLine cuts at, as a pattern.
var pemLineBreaks = regexp.MustCompile(`\r?\n|\r|\\r\\n|\\n`)

// FuzzCutPEMLine holds cutPEMLine to the pattern's split: the same lines.
func FuzzCutPEMLine(f *testing.F) {
	for _, s := range []string{"", "a", "a\n", "a\r\nb", "a\rb\n", `a\nb`, `a\r\nb`, `a\rb`, `\\n`, "\\\r\n", `MIIE\nAAA\r\n-----END`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := pemLineBreaks.Split(s, -1)
		var got []string
		for rest, more := s, true; more; {
			var line string
			line, rest, more = cutPEMLine(rest)
			got = append(got, line)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: lines %q, want %q", s, got, want)
		}
	})
}

// BenchmarkPEMBeginsWithoutKey: BEGIN lines with no key material after
// them cost their first line each, not a pass over the rest.
func BenchmarkPEMBeginsWithoutKey(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20, 4 << 20} {
		s := strings.Repeat("-----BEGIN RSA PRIVATE KEY-----\n", size/32)
		r := New(nil)
		b.Run(strconv.Itoa(size>>10)+"KB", func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				r.String(s)
			}
		})
	}
}
