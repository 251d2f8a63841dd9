// Package lookalike finds the words in a reviewer's view that pass for
// other words: a host, path or command whose letters look like Latin
// ones but are not (`gіthub.com` with a Cyrillic і, a fullwidth
// `ｇithub.com`). Every review channel (Slack, the terminal, MCP
// elicitation, the web UI) shows [Warning] above what it asks a reviewer
// to approve.
//
// toolgate.Visible escapes what a reader would not see; this package
// flags what a reader would misread. It is a package of its own, not the
// domain package's, because it needs Unicode names and NFKC
// (golang.org/x/text) while the domain package is standard library only;
// review, web and the CLI all reach it, and it reaches nothing of
// toolgate but the domain package and redact (what it warns of is what a
// reviewer sees: redacted).
package lookalike

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/rangetable"
	"golang.org/x/text/unicode/runenames"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/redact"
)

// Bounds of what Warning says, whatever the size of what it is given.
const (
	maxWords     = 5  // words listed; the rest are counted
	maxRunes     = 4  // suspicious runes listed per word; the rest are counted
	maxWordRunes = 60 // runes of a word shown
)

// latinLike holds the letters outside ASCII that look like an ASCII
// letter or digit (from Unicode's confusables, UTS #39): of Cyrillic,
// Greek, Armenian, Cherokee and Lisu; of Latin itself without a visible
// mark (the script g, alpha, iota, small capitals, the click letters ǀ
// and ǁ; not Turkish ı, which Turkish paths and addresses are full of);
// and of the scripts that may share a word with Latin (the ideographic
// zero 〇, Hangul ㅇ and ㅣ, Bopomofo ㄏ and ㄧ).
var latinLike = rangetable.New([]rune("" +
	"АВЕЗІЈКМНОРЅСТУХҮӀԚԜаеорсухѕіјԁһӏԛԝүѵ" + // Cyrillic
	"ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹͿαγικνορυχϲϳ" + // Greek
	"ՏՕՍօսցհոզ" + // Armenian
	"ᎪᏴᏟᎠᎬᏀᎻᎫᏦᏞᎷᏢᏚᎢᏙᎳᏃᎥ" + // Cherokee
	"ꓮꓐꓚꓓꓰꓝꓖꓧꓲꓙꓗꓡꓟꓠꓳꓑꓣꓢꓔꓴꓦꓪꓫꓬꓜ" + // Lisu
	"ɡɑɩƅƖʋĸꞷǀǁᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ" + // Latin
	"〇ㅇㅣㄏㄧ丨")...) // Han, Hangul, Bopomofo

// mixesWithLatin are the scripts that UTS #39's "highly restrictive"
// level lets share a word with Latin (Japanese, Chinese and Korean text
// writes `Tシャツ` and `Go言語`), and the ones of no script of their own.
var mixesWithLatin = rangetable.Merge(
	unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo,
	unicode.Common, unicode.Inherited,
)

// labelRunes are the letters, digits and marks.
var labelRunes = rangetable.Merge(unicode.L, unicode.N, unicode.M)

// Finding is one word that can pass for another, and the runes that make
// it so, each once, in the order they occur.
type Finding struct {
	Word  string
	Runes []rune
}

// Find returns the words of s that can pass for others. A word is a
// maximal run of letters, digits, marks and the characters of hosts,
// paths and identifiers (. - _ / @ :); its labels are the runs between
// those characters. A word is flagged when
//
//   - a label holds ASCII letters and letters of a script that does not
//     mix with Latin (`gіthub`, `раypal`), or that look like ASCII ones
//     (latinLike: `ɡoogle`, `g〇〇gle`): those letters;
//   - it has two labels or more, and one is made only of letters that look
//     like Latin ones (latinLike), while the rest of the word has ASCII
//     letters or only such letters too (`асе.com`, `орех.ру`,
//     `/usr/bin/ѕһ`): those letters;
//   - it holds a compatibility form of an ASCII letter, digit or
//     separator, which NFKC turns into that character (`ｇithub`,
//     `ﬁle`, the Kelvin sign K): those runes;
//   - a slash or dot look-alike (separatorLike) sits between two ASCII
//     letters or digits (`github.com∕org`): that rune.
//
// A word wholly in another script (`Москва`, `東京`) and accented Latin
// (`café`, `naïve`) are not flagged. Find does no I/O.
func Find(s string) []Finding {
	var out []Finding
	for s != "" {
		// A word of ASCII alone is never flagged: skip to the word
		// around the next byte that is not.
		k := strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
		if k < 0 {
			break
		}
		i := strings.LastIndexFunc(s[:k], func(r rune) bool { return !isWordRune(r) }) + 1
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return !isWordRune(r) })
		if j < 0 {
			j = len(s)
		}
		if j == 0 {
			// The rune is no word's: step past it.
			_, j = utf8.DecodeRuneInString(s)
		} else if f := findWord(s[:j]); len(f.Runes) > 0 {
			out = append(out, f)
		}
		s = s[j:]
	}
	return out
}

// findWord is Find for one word.
func findWord(w string) Finding {
	f := Finding{Word: w}
	var seen map[rune]bool
	add := func(r rune) {
		if !seen[r] {
			if seen == nil {
				seen = map[rune]bool{}
			}
			seen[r] = true
			f.Runes = append(f.Runes, r)
		}
	}
	// A word of one label and no ASCII letter (prose in another script)
	// can hold only compatibility forms.
	if !strings.ContainsFunc(w, func(r rune) bool { return r < utf8.RuneSelf && unicode.IsLetter(r) || !isLabelRune(r) }) {
		for _, r := range w {
			if compatASCII(r) != "" {
				add(r)
			}
		}
		return f
	}
	labels := strings.FieldsFunc(w, func(r rune) bool { return !isLabelRune(r) })
	counts := make([]letters, len(labels))
	var word letters
	for i, l := range labels {
		counts[i] = countLetters(l)
		word.add(counts[i])
	}
	for i, l := range labels {
		n := counts[i]
		latinLikeLabel := len(labels) > 1 && n.all > 0 && n.latinLike == n.all && (word.ascii > 0 || word.latinLike == word.all)
		for _, r := range l {
			switch {
			case compatASCII(r) != "":
				add(r)
			case n.ascii > 0 && n.other > 0 && isOtherScript(r):
				add(r)
			case latinLikeLabel && unicode.IsLetter(r):
				add(r)
			case n.ascii > 0 && r >= utf8.RuneSelf && unicode.Is(latinLike, r):
				add(r)
			}
		}
	}
	prev := utf8.RuneError
	for i, r := range w {
		if !isLabelRune(r) && compatASCII(r) != "" {
			add(r)
		}
		if strings.ContainsRune(separatorLike, r) && isASCIIAlnum(prev) {
			if next, _ := utf8.DecodeRuneInString(w[i+utf8.RuneLen(r):]); isASCIIAlnum(next) {
				add(r)
			}
		}
		prev = r
	}
	return f
}

func isASCIIAlnum(r rune) bool {
	return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// letters counts the letters of a label or a word: all of them, the
// ASCII ones, those of a script that does not mix with Latin, and those
// in latinLike.
type letters struct{ all, ascii, other, latinLike int }

func (n *letters) add(m letters) {
	n.all, n.ascii, n.other, n.latinLike = n.all+m.all, n.ascii+m.ascii, n.other+m.other, n.latinLike+m.latinLike
}

func countLetters(l string) letters {
	var n letters
	for _, r := range l {
		if !unicode.IsLetter(r) {
			continue
		}
		n.all++
		switch {
		case r < utf8.RuneSelf:
			n.ascii++
		case isOtherScript(r):
			n.other++
		}
		if unicode.Is(latinLike, r) {
			n.latinLike++
		}
	}
	return n
}

func isOtherScript(r rune) bool {
	return unicode.IsLetter(r) && !unicode.Is(mixesWithLatin, r)
}

// isLabelRune reports whether r is a letter, digit or mark.
func isLabelRune(r rune) bool {
	return unicode.Is(labelRunes, r)
}

// isWordRune reports whether r belongs in a word: a letter, digit or
// mark, a separator of hosts, paths and identifiers, or a compatibility
// form of one.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isLabelRune(r) || strings.ContainsRune(".-_/@:", r)
	}
	return isLabelRune(r) || strings.ContainsRune(separatorLike, r) || compatASCII(r) != ""
}

// separatorLike are runes that pass for a slash or a dot and that NFKC
// leaves alone: the division, fraction and big slashes, a box-drawing
// diagonal, the Han and katakana strokes 丿 and ノ and the Kangxi
// radical ⼃, the ideographic and Armenian full stops, the katakana
// middle dot, the Hangul araea and the Latin sinological dot. Between two
// ASCII letters or digits (`github∕org`, `github。com`, `com丿toolgate`)
// they are flagged; in prose (`東京。`, `ノート`) not.
const separatorLike = "\u2215\u2044\u29f8\u2571\u4e3f\u30ce\u2f03\u3002\u0589\u30fb\u318d\ua78f"

// compatASCII is what NFKC turns r into when r is not ASCII and that is
// ASCII letters, digits or separators (ｇ→g, ﬁ→fi, ．→.); otherwise "".
// A superscript or other number that NFKC makes no letter of (m², ½) is
// left alone; the roman numerals (ⅼ→l, ⅿ→m) are letters' forms.
func compatASCII(r rune) string {
	var b [utf8.UTFMax]byte
	rb := b[:utf8.EncodeRune(b[:], r)]
	if r < utf8.RuneSelf || r == utf8.RuneError || norm.NFKC.IsNormal(rb) {
		return ""
	}
	s := norm.NFKC.String(string(rb))
	if s == "" {
		return ""
	}
	letter := false
	for _, c := range s {
		if c >= utf8.RuneSelf || !isWordRune(c) {
			return ""
		}
		letter = letter || unicode.IsLetter(c)
	}
	if !letter && unicode.In(r, unicode.No, unicode.Nl) {
		return ""
	}
	return s
}

// Warning lists the findings in the text of vals, for a reviewer: strings
// and, in maps and slices (JSON arguments), every key and string value,
// keys in order. It names at most maxWords words, each through
// toolgate.Visible and cut to maxWordRunes runes, with at most maxRunes of
// its runes as their code point, name and script, then says how many more
// there are:
//
//	gіthub.com: U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I (Cyrillic)
//
// Words are listed by rank (Finding.rank), and the words of earlier vals
// before those of later ones, so decoys of mere compatibility forms, or
// outside hosts and paths, cannot push a host that mixes scripts out of
// the list. Only the
// first maxChecked bytes of text are read; the warning says how much more
// there is. Findings are separated by "; ". "" when there is none.
func Warning(vals ...any) string {
	var lists [4][]string // by rank
	seen := map[string]bool{}
	more, budget, unchecked := 0, maxChecked, 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) > budget {
				unchecked += len(v) - budget
				v = v[:budget]
			}
			budget -= len(v)
			for _, f := range Find(v) {
				list := &lists[f.rank()]
				switch {
				case seen[f.Word]:
				case len(*list) < maxWords:
					*list = append(*list, f.String())
				default:
					more++
				}
				seen[f.Word] = true
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(k)
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for _, v := range vals {
		walk(v)
	}
	parts := slices.Concat(lists[:]...)
	if len(parts) > maxWords {
		more += len(parts) - maxWords
		parts = parts[:maxWords]
	}
	if more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	if unchecked > 0 {
		parts = append(parts, fmt.Sprintf("and %d bytes of text past the first %d were not checked: read them before approving", unchecked, maxChecked))
	}
	return strings.Join(parts, "; ")
}

// maxChecked bounds the bytes of text Warning reads for one review, at
// 5-35 MB/s by script (go test -bench Warning).
const maxChecked = 1 << 20

// InCall is Warning over what a review of call c decided d shows, as r
// (a reviewers' Redactor) shows it: the redacted arguments and _meta (what
// runs, first), the call's name, tool and server, the rule's reason and
// name, who asked, client and model. The warning is redacted too.
func InCall(c toolgate.Call, d toolgate.Decision, r *redact.Redactor) string {
	return r.String(Warning(r.Value(c.Args), r.Value(c.Meta), c.Name, c.Tool, c.Server, d.Reason, d.Rule,
		c.Principal.String(), c.Client.Name, c.Client.Version, c.Model.Name, c.Model.Version))
}

// rank orders findings for a reviewer, most deceptive first: a word that
// looks like a host, path or address (it holds . / @ : or a look-alike of
// one) and has a rune of another script than Latin, or a look-alike
// separator, that passes for ASCII (`gіthub.com`, `github.com∕x`); then
// any word with such a rune; then hosts and paths of Latin look-alikes and
// compatibility forms alone (`ɡoogle.com`, `ｇithub.com`); then the rest.
func (f Finding) rank() int {
	more := slices.ContainsFunc(f.Runes, func(r rune) bool {
		return strings.ContainsRune(separatorLike, r) || compatASCII(r) == "" && !unicode.Is(unicode.Latin, r)
	})
	host := strings.ContainsAny(f.Word, "./@:"+separatorLike)
	switch {
	case host && more:
		return 0
	case more:
		return 1
	case host:
		return 2
	}
	return 3
}

// String shows f as Warning lists it.
func (f Finding) String() string {
	w := f.Word
	if n := utf8.RuneCountInString(w); n > maxWordRunes {
		w = string([]rune(w)[:maxWordRunes]) + "…"
	}
	var b strings.Builder
	b.WriteString(toolgate.Visible(w) + ":")
	for i, r := range f.Runes {
		if i == maxRunes {
			fmt.Fprintf(&b, ", and %d more", len(f.Runes)-maxRunes)
			break
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " U+%04X %s (%s", r, runenames.Name(r), script(r))
		if s := compatASCII(r); s != "" {
			fmt.Fprintf(&b, ", a form of %s", s)
		}
		b.WriteString(")")
	}
	return b.String()
}

// script names r's Unicode script.
func script(r rune) string {
	for name, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return name
		}
	}
	return "Unknown"
}
