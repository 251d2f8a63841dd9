package rules

import (
	"slices"
	"strings"
	"testing"
)

func TestANSIQuoteDecodes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`$'\x2eenv'`, ".env"},
		{`$'.\145nv'`, ".env"},
		{`$'.\u0065nv'`, ".env"},
		{`$'.\U00000065nv'`, ".env"},
		{`$'\x2e\x2e'`, ".."},
		{`$'a\tb\nc'`, "a\tb\nc"},
		{`$'\e\a\b\f\v'`, "\x1b\a\b\f\v"},
		{`$'\cA\c?'`, "\x01\x7f"},
		{`$'\\\'\"\?'`, `\'"?`},
		{`$'ab\x00cd'`, "ab"},
		{`$'ab\0cd'`, "ab"},
		{`$'\xZ'`, `\xZ`},
		{`$'\q'`, `\q`},
		{`$'\u00e9'`, "é"},
	} {
		got, err := shellWords("cat " + tc.in)
		if err != nil || len(got) != 2 || got[1] != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := shellWords(`cat $'abc`); err == nil {
		t.Error("an unterminated $'...' is not an error")
	}
}

func TestBraceExpansion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`.{e,}nv`, []string{".env", ".nv"}},
		{`{..,x}/.{s,}sh/*`, []string{"../.ssh/*", "../.sh/*", "x/.ssh/*", "x/.sh/*"}},
		{`a{b,{c,d}}e`, []string{"abe", "ace", "ade"}},
		{`{1..3}`, []string{"1", "2", "3"}},
		{`{01..03}`, []string{"01", "02", "03"}},
		{`{a..c}`, []string{"a", "b", "c"}},
		{`{5..1..2}`, []string{"5", "3", "1"}},
		{`{x}{a,b}`, []string{"{x}a", "{x}b"}},
		{`'{a,b}'`, []string{"{a,b}"}},
		{`"{a,b}"`, []string{"{a,b}"}},
		{`\{a,b}`, []string{"{a,b}"}},
		{`${a,b}`, []string{"${a,b}"}},
		{`{}`, []string{"{}"}},
		{`{a,b`, []string{"{a,b"}},
		{`x{'a',b}y`, []string{"xay", "xby"}},
		{`{'a,b',c}`, []string{"a,b", "c"}},
		{`$'\x2e'{g,}it`, []string{".git", ".it"}},
	} {
		got, err := shellWords(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// Past the bound, the word is read as a pattern and marked computed.
	toks, err := shellSplit("cat {1..9}{1..9}{1..9}/.{e,}nv")
	if err != nil || len(toks) != 2 || !toks[1].computed || toks[1].text != "***/.*nv" {
		t.Errorf("a brace expansion past the bound: %+v, %v", toks, err)
	}
}

func TestShellGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, name string
		want      bool
	}{
		{".en[!x]", ".env", true},
		{".en[^x]", ".env", true},
		{".en[!v]", ".env", false},
		{".en[[:alpha:]]", ".env", true},
		{".en[[:digit:]]", ".env", false},
		{".gi[t]", ".git", true},
		{".gi?", ".git", true},
		{"*", ".env", false},
		{"?env", ".env", false},
		{"[.]env", ".env", true},
		{"[!x]env", ".env", false},
		{"*.yml", "hosts.yml", true},
		{"*.go", "hosts.yml", false},
		{".en[", ".env", true},         // malformed: could match anything
		{"x[[:bogus:]]", ".env", true}, // unknown class: could match anything
		{`\.env`, ".env", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"[]x]", "]", true},
		{"[a-c]", "b", true},
		{"[a-c]", "d", false},
	} {
		if got := shellGlob(tc.pat, tc.name); got != tc.want {
			t.Errorf("shellGlob(%q, %q) = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
}

func TestPatternClasses(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{".gi[t]/config", true},
		{".gi?/hooks/pre-commit", true},
		{".git/*/pre-commit", true},
		{".github", true},
		{".circleci", true},
		{".husky", true},
		{".git/hooks", true},
		{"src/*.go", false},
		{"dist/*", false},
		{"node_modules", false},
		{".github/issue_template", false},
		{"*.md", false},
	} {
		if got := isPersistencePath("", tc.rel); got != tc.want {
			t.Errorf("isPersistencePath(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}

func FuzzShellExpansion(f *testing.F) {
	for _, s := range []string{".{e,}nv", "{1..9}{a..z}", "{{{a,b},c},d}", "$'\\x2e{'", "[[:alpha:]", "[!x]*?", "{..,x}/*", "{-5..5..0}"} {
		f.Add(s, ".env")
	}
	f.Fuzz(func(t *testing.T, word, name string) {
		if len(word) > 200 {
			return
		}
		toks, err := shellSplit("cat " + word)
		if err == nil && len(toks) > 1+maxBraceWords*strings.Count(word, " ")+maxBraceWords {
			t.Fatalf("%q gives %d words", word, len(toks))
		}
		_ = shellGlob(word, name)
		readings, all := patternReadings(word, compiledClasses().names)
		if !all && len(readings) > maxPatternReadings {
			t.Fatalf("%q gives %d readings", word, len(readings))
		}
	})
}
