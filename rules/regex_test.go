package rules

import (
	"context"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// packPatterns are the literal patterns of the default pack's matches calls.
func packPatterns(t testing.TB) []string {
	var out []string
	for _, m := range regexp.MustCompile(`matches\(r"([^"]*)"\)`).FindAllStringSubmatch(string(defaultPack), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	if len(out) < 10 {
		t.Fatalf("found %d patterns in the default pack", len(out))
	}
	return out
}

// TestFoldedASCII holds foldASCII to Unicode: the only runes outside
// ASCII that match an ASCII rune without case are the two it looks for.
func TestFoldedASCII(t *testing.T) {
	var found []rune
	for c := rune(0); c < utf8.RuneSelf; c++ {
		for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
			if r >= utf8.RuneSelf {
				found = append(found, r)
			}
		}
	}
	slices.Sort(found)
	found = slices.Compact(found)
	if want := []rune{0x017f, 0x212a}; !slices.Equal(found, want) {
		t.Fatalf("non-ASCII runes folding to ASCII: %U, want %U", found, want)
	}
	for _, r := range found {
		want := r
		for !('a' <= want && want <= 'z') {
			want = unicode.SimpleFold(want)
		}
		if f := foldASCII("X" + string(r)); string(f) != "x"+string(want) {
			t.Errorf("foldASCII makes %U %q, want %q", r, f, "x"+string(want))
		}
	}
}

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []literal // nil: no filter
	}{
		{`abc`, []literal{{"abc", false}}},
		{`(?i)DrOp`, []literal{{"drop", true}}},
		{`^a+bcd\s*z?$`, []literal{{"bcd", false}}},
		{`(?i)\b(drop\s+table|truncate|flush(all|db))`, []literal{{"table", true}, {"truncate", true}, {"flush", true}}},
		{`a|b*`, nil},
		{`(a|)`, nil},
		{`x?`, nil},
		{`[ab]c`, []literal{{"c", false}}},
		{`(?i)é`, nil},
		{`é`, []literal{{"é", false}}},
		{"\ufffd", nil},
		{`.*`, nil},
	} {
		p, err := syntax.Parse(tc.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := required(p.Simplify()); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.pattern, got, tc.want)
		}
	}
}

// TestPackPatternsFiltered: the pack's checks of free text are the ones
// the filter is for.
func TestPackPatternsFiltered(t *testing.T) {
	sql := `(?i)\b(drop\s+(table|database|schema|index|view|user|role|collection)|truncate\s+(table\s+)?[\w\x22.]|delete\s+from\s+[\w\x22.]+\s*(;|$|\x22|')|flushall|flushdb|dropdatabase\s*\(|\.drop\s*\(\s*\)|deletemany\s*\(\s*\{\s*\}\s*\))`
	pats := packPatterns(t)
	if !slices.Contains(pats, sql) {
		t.Fatal("the pack's SQL check changed: update this test")
	}
	for _, p := range []string{sql, `(?i)(^|[^a-z])(prod|production|prd)([^a-z]|$)`} {
		m, err := compileFiltered(p)
		if err != nil {
			t.Fatal(err)
		}
		if m.lits == nil {
			t.Errorf("%s: no filter", p)
		}
	}
}

// TestFilteredDecisions: through the pack, a long argument is decided by
// what it holds, wherever the words are and however they are cased.
func TestFilteredDecisions(t *testing.T) {
	s := Default().WithWorkspace(packWorkspace)
	text := longText
	for _, tc := range []struct {
		name, body string
		denied     bool
	}{
		{"plain text", text, false},
		{"a statement at the end", text + " DrOp TaBlE users;", true},
		{"a statement at the start", "TRUNCATE accounts " + text, true},
		{"folded with a long s", text + " fluſhall", true},
		{"folded with a Kelvin sign", text + " deleteman\u212ay({})", false},
		{"a word of the statement alone", text + " drop it", false},
	} {
		d := s.Evaluate(context.Background(), issueCall(tc.body))
		if got := d.Rule == "deny-database-destruction"; got != tc.denied {
			t.Errorf("%s: %s by %q, want denied %v", tc.name, d.Action, d.Rule, tc.denied)
		}
	}
}

// FuzzFiltered holds the filter to regexp: on any pattern and text it
// matches what the expression matches, the text also padded past
// minFiltered on either side.
func FuzzFiltered(f *testing.F) {
	long := strings.Repeat("lorem ipsum ", 30)
	for _, p := range packPatterns(f) {
		f.Add(p, "DROP TABLE x")
		f.Add(p, long)
	}
	f.Add(`(?i)flushall`, "FLUſHALL")
	f.Add(`(?i)k+`, "\u212a")
	f.Add("a\ufffdb", "a\xffb")
	f.Add(`(?i)x(ab|cd)`, "XAB")
	f.Fuzz(func(t *testing.T, pattern, text string) {
		m, err := compileFiltered(pattern)
		if err != nil {
			return
		}
		pad := strings.Repeat(" ", minFiltered)
		for _, in := range []string{text, pad + text, text + pad, long + text} {
			if got, want := m.MatchString(in), m.re.MatchString(in); got != want {
				t.Fatalf("%q on %q: %v, regexp %v (literals %v)", pattern, in, got, want, m.lits)
			}
		}
	})
}
