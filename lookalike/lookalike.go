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

	"golang.org/x/text/unicode/bidi"
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
// letter or digit (from Unicode's confusables, UTS #39, and Chromium's
// list of Cyrillic letters that pass for Latin ones: п, г, ъ, Ь, ҽ, ѡ):
// of Cyrillic, Greek, Coptic, Armenian, Cherokee (capital and small) and
// Lisu; of Latin itself without a visible mark (the script g, alpha,
// iota, small capitals, the click letters ǀ and ǁ, ꭇ, ɾ, ƿ; not Turkish ı,
// which Turkish paths and addresses are full of); and of the scripts that
// may share a word with Latin (the ideographic zero 〇, Hangul ㅇ and ㅣ,
// Bopomofo ㄏ and ㄧ).
var latinLike = rangetable.New([]rune("" +
	"АВЕЗІЈКМНОРЅСТУХҮӀԚԜЬаеорсухѕіјԁһӏԛԝүѵпгъҽѡԌԍ" + // Cyrillic
	"ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹͿαγικνορυχϲϳω" + // Greek
	"ⲀⲂⲈⲎⲒⲔⲘⲚⲞⲢⲤⲦⲨⲬⲁⲃⲉⲏⲓⲕⲙⲛⲟⲣⲥⲧⲩⲭ" + // Coptic
	"ՏՕՍօսցհոզա" + // Armenian
	"ᎪᏴᏟᎠᎬᏀᎻᎫᏦᏞᎷᏢᏚᎢᏙᎳᏃᎥᏒᎡ" + // Cherokee capitals
	"ꭺᏼꮯꭰꭼꮐꮋꭻꮶꮮꮇꮲꮪꭲꮩꮃꮓꭵꮢꭱ" + // and their small letters
	"ꓮꓐꓚꓓꓰꓝꓖꓧꓲꓙꓗꓡꓟꓠꓳꓑꓣꓢꓔꓴꓦꓪꓫꓬꓜ" + // Lisu
	"ɡɑɩƅƖʋĸꞷǀǁᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢꭇɾƿ" + // Latin
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
//     (latinLike: `ɡoogle`, `g〇〇gle`), or digits of another script
//     (`depl०y`), or a combining mark that NFC does not absorb into its
//     letter (`scrı̇pts`; a mark after a Latin letter too): those runes;
//   - it has two labels or more, and one is made only of letters that look
//     like Latin ones (latinLike), while the rest of the word has ASCII
//     letters or only such letters too (`асе.com`, `орех.ру`,
//     `/usr/bin/ѕһ`): those letters;
//   - it holds a compatibility form of an ASCII letter, digit or
//     separator, which NFKC turns into that character (`ｇithub`,
//     `ﬁle`, the Kelvin sign K): those runes;
//   - a slash or dot look-alike (separatorLike) sits between two ASCII
//     letters or digits (`github.com∕org`): that rune;
//   - it holds letters written right to left (Hebrew, Arabic) and s holds
//     ASCII letters (`mv -f א ב` is drawn `mv -f ב א`): those letters;
//   - it is a URL and its host holds a Latin letter with a mark
//     (`https://gịthub.com`): that letter.
//
// Apart from words, a punctuation look-alike (punctLike, or a rune NFKC
// turns into ASCII punctuation: `ꞌ`, `‐`, `；`) next to an ASCII letter,
// digit or punctuation mark, or to another such rune that is no letter,
// is flagged with the run of s between ASCII spaces around it as its word
// (`-m ꞌfix; echo x; ꞌ`, `‐‐dry-run`), unless it is a wide dash between
// words of prose (proseDash).
//
// A word wholly in another script (`Москва`, `東京`, `ノート`) and accented
// Latin outside a URL's host (`café`, `naïve`) are not flagged. Find does
// no I/O.
func Find(s string) []Finding {
	var out []Finding
	word := 0 // where the last word checked ends
	var tok span
	latin := 0 // 1 if s holds ASCII letters, 2 if not; found once an RTL letter asks
	for k := 0; k < len(s); {
		// ASCII is never flagged: skip to the next rune that is not.
		if s[k] < utf8.RuneSelf {
			k++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[k:])
		prev, _ := utf8.DecodeLastRuneInString(s[:k])
		if isPunctLike(r) && (nextToPunct(prev, 0) || nextToPunct(utf8.DecodeRuneInString(s[k+n:]))) && !tok.at(s, k).proseDash(r, prev) {
			if tok.finding < 0 {
				out, tok.finding = append(out, Finding{Word: s[tok.start:tok.end]}), len(out)
			}
			if f := &out[tok.finding]; !slices.Contains(f.Runes, r) {
				f.Runes = append(f.Runes, r)
			}
		}
		if k >= word && isWordRune(r) {
			i := word
			if j := strings.LastIndexFunc(s[word:k], notWordRune); j >= 0 {
				_, m := utf8.DecodeRuneInString(s[word+j:])
				i = word + j + m
			}
			word = len(s)
			if j := strings.IndexFunc(s[k:], notWordRune); j >= 0 {
				word = k + j
			}
			f := findWord(s[i:word])
			if slices.ContainsFunc(f.Runes, isRTL) {
				if latin == 0 {
					latin = 2
					if strings.ContainsFunc(s, func(r rune) bool { return r < utf8.RuneSelf && unicode.IsLetter(r) }) {
						latin = 1
					}
				}
				if latin == 2 {
					f.Runes = slices.DeleteFunc(f.Runes, isRTL)
				}
			}
			if len(f.Runes) > 0 {
				out = append(out, f)
			}
		}
		k += n
	}
	return out
}

const asciiSpace = " \t\n\v\f\r"

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
	// can hold only compatibility forms and right-to-left letters.
	if !strings.ContainsFunc(w, func(r rune) bool { return r < utf8.RuneSelf && unicode.IsLetter(r) || !isLabelRune(r) }) {
		for _, r := range w {
			if compatASCII(r) != "" || isRTL(r) {
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
		marks := false
		for _, r := range l {
			switch {
			case compatASCII(r) != "",
				n.ascii > 0 && n.other > 0 && isOtherScript(r),
				latinLikeLabel && unicode.IsLetter(r),
				n.ascii > 0 && r >= utf8.RuneSelf && (unicode.Is(latinLike, r) || unicode.IsDigit(r)),
				isRTL(r):
				add(r)
			}
			marks = marks || isMark(r)
		}
		// A mark that NFC leaves apart from its letter draws as if part
		// of it (ı + U+0307 as i), among ASCII letters or after a Latin
		// one; a mark Visible escapes is seen.
		if marks {
			prev := utf8.RuneError
			for _, r := range norm.NFC.String(l) {
				if !isMark(r) {
					prev = r
				} else if toolgate.Shown(r) && (n.ascii > 0 || unicode.Is(unicode.Latin, prev)) {
					add(r)
				}
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
	// In a URL's host a Latin letter with a mark passes for the ASCII
	// letter under it (gịthub.com, whose dot below a reader may not see):
	// a host is no prose.
	for _, r := range urlHost(w) {
		if r >= utf8.RuneSelf && unicode.Is(unicode.Latin, r) && markedASCII(r) {
			add(r)
		}
	}
	return f
}

// urlHost returns the host of the URL w (scheme://user@host:port/path,
// or git's user@host:path), or "" when w is none.
func urlHost(w string) string {
	if _, rest, ok := strings.Cut(w, "://"); ok {
		w = rest
	} else if i := strings.IndexByte(w, '@'); i >= 0 && strings.Contains(w[i:], ":") {
		w = w[i+1:]
	} else {
		return ""
	}
	if i := strings.IndexByte(w, '/'); i >= 0 {
		w = w[:i]
	}
	if i := strings.LastIndexByte(w, '@'); i >= 0 {
		w = w[i+1:]
	}
	if i := strings.IndexByte(w, ':'); i >= 0 {
		w = w[:i]
	}
	return w
}

// markedASCII reports whether r is an ASCII letter with marks (ị, é).
func markedASCII(r rune) bool {
	var b [utf8.UTFMax]byte
	d := norm.NFD.Properties(b[:utf8.EncodeRune(b[:], r)]).Decomposition()
	return len(d) > 1 && 'a' <= d[0]|0x20 && d[0]|0x20 <= 'z'
}

// isMark reports whether r is a mark drawn on the rune before it.
func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Me) }

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
	if isLabelRune(r) || strings.ContainsRune(separatorLike, r) {
		return true
	}
	c := compatASCII(r)
	return c != "" && !strings.ContainsFunc(c, notWordRune)
}

func notWordRune(r rune) bool { return !isWordRune(r) }

// separatorLike are runes that pass for a slash or a dot and that NFKC
// leaves alone (or, for ｡, turns into another of them): the division,
// fraction, big and long slashes, a box-drawing diagonal, the Han,
// katakana and Hanunoo strokes 丿, ㇓, 〳, ノ, ᜵ and the Kangxi radical ⼃;
// the ideographic, halfwidth ideographic and Armenian full stops, the
// Syriac, Vai and Kharoshthi dots, the hyphenation point, the dot
// operator, the middle dots (katakana, Latin ·), the Hangul araea, the
// Latin sinological dot, and the Arabic-Indic zeros ٠ and ۰. Between two
// ASCII letters or digits (`github∕org`, `github。com`, `com丿toolgate`,
// `github٠com`; the Catalan `l·l` too) they are flagged; in prose
// (`東京。`, `ノート`) not.
const separatorLike = "\u2215\u2044\u29f8\u2571\u27cb\u4e3f\u31d3\u3033\u30ce\u1735\u2f03" +
	"\u3002\uff61\u0589\u0701\u0702\ua60e\U00010a50\u2027\u22c5\u30fb\u00b7\u318d\ua78f\u0660\u06f0"

// punctLike are runes that pass for ASCII punctuation and that NFKC
// leaves alone (or, for ‑ and ″, turns into another of them): the quotes
// ꞌ Ꞌ ʼ ˈ ʹ ʺ ׳ ״ ′ ″ ˋ ‵, the hyphens and dashes ‐ ‑ ‒ – — − ˗ ⁃ ⎯ ─ 一 ー,
// the colons ː ꞉ ∶ ׃ ः and the bars ∣ │ ⏐ ׀. With the runes NFKC turns
// into ASCII punctuation (＂, ；, the Greek question mark, ｜), they are
// flagged next to ASCII that is not a space, or to another of them that
// is no letter (`-m ꞌfix; echo x; ꞌ`, `‐‐dry-run`), not in prose
// (`ノート`, `一二三`, a dash between words: proseDash). Curly quotes are
// not among them: they look curly, and English prose is full of them.
const punctLike = "\ua78c\ua78b\u02bc\u02c8\u02b9\u02ba\u05f3\u05f4\u2032\u2033\u02cb\u2035" +
	"\u2010\u2011\u2012\u2013\u2014\u2212\u02d7\u2043\u23af\u2500\u4e00\u30fc" +
	"\u02d0\ua789\u2236\u05c3\u0903\u2223\u2502\u23d0\u05c0"

// isPunctLike reports whether r passes for ASCII punctuation: it is in
// punctLike, or NFKC turns it into ASCII that is not a word's.
func isPunctLike(r rune) bool {
	return r >= utf8.RuneSelf && (unicode.Is(punctTable, r) || !isWordRune(r) && compatASCII(r) != "")
}

var punctTable = rangetable.New([]rune(punctLike)...)

// span is the run of a text between ASCII spaces around a rune Find
// looks at, kept while Find moves through it, so that each byte of the
// text is scanned once whatever the text (a run of dashes ten thousand
// long included).
type span struct {
	start, end int
	finding    int  // the index in Find's out of the run's finding; -1: none yet
	hostish    bool // it holds a dot, slash or colon of a host or path
}

// at makes sp the run around s[k], a rune other than an ASCII space,
// when sp is the run before it (k only grows), and returns sp.
func (sp *span) at(s string, k int) *span {
	if k < sp.end {
		return sp
	}
	start := sp.end
	if i := strings.LastIndexAny(s[start:k], asciiSpace); i >= 0 {
		start += i + 1
	}
	end := len(s)
	if e := strings.IndexAny(s[k:], asciiSpace); e >= 0 {
		end = k + e
	}
	*sp = span{start: start, end: end, finding: -1, hostish: strings.ContainsAny(s[start:end], "./:")}
	return sp
}

// proseDash reports whether r, in sp after prev, is a dash wider than a
// hyphen (– — ─ ⎯ 一 ー) used as prose uses it: after an ASCII letter or
// digit (`fix—handle nil`, `调用API一次`), in a run with no dot, slash or
// colon of a host or path (`my–bucket.example.com` is flagged). Before an
// option (` —force`) or in a host it is not prose.
func (sp *span) proseDash(r, prev rune) bool {
	return strings.ContainsRune("\u2013\u2014\u2500\u23af\u4e00\u30fc", r) && isASCIIAlnum(prev) && !sp.hostish
}

// nextToPunct reports whether r, beside a rune that passes for ASCII
// punctuation, makes that rune read as part of ASCII text: r is ASCII
// other than a space or control, or passes for punctuation and is no
// letter. (It takes utf8.DecodeRuneInString's results.)
func nextToPunct(r rune, _ int) bool {
	return '!' <= r && r <= '~' || !unicode.IsLetter(r) && isPunctLike(r)
}

// isRTL reports whether r is a letter written right to left (bidi class
// R or AL: Hebrew, Arabic, Syriac, Thaana, NKo...); none is below U+0590.
func isRTL(r rune) bool {
	if r < 0x590 || !unicode.IsLetter(r) {
		return false
	}
	p, _ := bidi.LookupRune(r)
	return p.Class() == bidi.R || p.Class() == bidi.AL
}

// compatASCII is what NFKC turns r into when r is not ASCII and that is
// printable ASCII other than spaces (ｇ→g, ﬁ→fi, ．→., ；→;) or an
// ellipsis; otherwise "". A
// superscript or other number that NFKC makes no letter of (m², ½, ⑴)
// is left alone; the roman numerals (ⅼ→l, ⅿ→m) are letters' forms.
func compatASCII(r rune) string {
	if r < utf8.RuneSelf || r == utf8.RuneError || r == '\u2026' {
		// An ellipsis reads as the three dots it is, and prose is full of
		// them.
		return ""
	}
	// A rune whose decomposition is all ASCII composes to nothing else,
	// so the decomposition is its NFKC (TestCompatASCIILikeNFKC), read
	// from the tables without normalizing a string.
	var b [utf8.UTFMax]byte
	d := norm.NFKC.Properties(b[:utf8.EncodeRune(b[:], r)]).Decomposition()
	letter, spaces := false, true
	for _, c := range d {
		if c < ' ' || c > '~' {
			return ""
		}
		letter = letter || 'a' <= c|0x20 && c|0x20 <= 'z'
		spaces = spaces && c == ' '
	}
	// Spaces (U+00A0, the ideographic space) can only make one word look
	// like two.
	if spaces || !letter && unicode.In(r, unicode.No, unicode.Nl) {
		return ""
	}
	return string(d)
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
// before those of later ones, so decoys of compatibility forms or of
// visibly foreign letters, or outside hosts and paths, cannot push a host
// whose letters pass for ASCII ones out of the list. Only the first
// maxChecked bytes of text are read; the warning says how much more
// there is. Findings are separated by "; ". "" when there is none.
func Warning(vals ...any) string {
	var lists [8][]string // by rank
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

// rank orders findings for a reviewer, most deceptive first, by the
// runes that make f flagged: a rune that passes for an ASCII one and is
// no Latin letter (`gіthub.com`, `github.com∕x`, `‐‐dry-run`, `scrı̇pts`,
// `depl०y`); then a Latin letter that does (`ɡoogle.com`); then a
// compatibility form (`ｇithub.com`); then letters that look foreign
// (`μservice`, `ΔT`) or are written right to left. Within each, a word that
// looks like a host, path or address (it holds . / @ : or a look-alike of
// one) comes first. So visibly foreign decoys cannot push out what passes
// for ASCII.
func (f Finding) rank() int {
	kind := 3
	for _, r := range f.Runes {
		switch {
		case compatASCII(r) != "":
			kind = min(kind, 2)
		case strings.ContainsRune(separatorLike+punctLike, r) || isMark(r) || unicode.IsDigit(r) ||
			unicode.Is(latinLike, r) && !unicode.Is(unicode.Latin, r):
			kind = 0
		case unicode.Is(latinLike, r), markedASCII(r):
			kind = min(kind, 1)
		}
	}
	if strings.ContainsAny(f.Word, "./@:"+separatorLike) {
		return 2 * kind
	}
	return 2*kind + 1
}

// rtlNote ends a finding of right-to-left letters.
const rtlNote = " (right-to-left: may be shown in another order than it runs)"

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
			fmt.Fprintf(&b, ", a form of %s", strings.ReplaceAll(s, " ", "a space"))
		}
		b.WriteString(")")
	}
	if slices.ContainsFunc(f.Runes, isRTL) {
		b.WriteString(rtlNote)
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
