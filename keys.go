package toolgate

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CaseAmbiguity says where v, a decoded JSON value, holds a key that a
// server may read as another key: two keys of one object, at any depth,
// equal under Unicode's simple case folding ("script" and "SCRIPT", or
// "script" and "ſcript" with a long s), or a key with a rune outside
// ASCII that a server may read as an ASCII letter (foldsToASCII:
// "worKdir" with a Kelvin sign, "scrıpt"). "" when there is none.
//
// The rules read keys as they are spelled, while a server that decodes
// its arguments into a struct with Go's encoding/json gives a field the
// value of the last key that folds to the field's name: a call with such
// keys could be decided on one value and run with another, so the gate
// refuses it.
func CaseAmbiguity(v any) string {
	switch x := v.(type) {
	case map[string]any:
		if why := caseAmbiguousKeys(x); why != "" {
			return why
		}
		for _, e := range x {
			if why := CaseAmbiguity(e); why != "" {
				return why
			}
		}
	case []any:
		for _, e := range x {
			if why := CaseAmbiguity(e); why != "" {
				return why
			}
		}
	}
	return ""
}

// foldsToASCII are the runes outside ASCII that a server's case-blind
// key matching can read as an ASCII letter: the long s and the Kelvin
// sign fold to s and k (Go's encoding/json), and the dotless ı and the
// dotted İ upper- or lower-case to I and i (.NET's and Java's ignore-case
// comparisons).
const foldsToASCII = "\u017f\u212a\u0131\u0130"

// caseAmbiguousKeys is CaseAmbiguity for m's own keys.
func caseAmbiguousKeys(m map[string]any) string {
	var seen map[string]string
	for k := range m {
		if i := strings.IndexAny(k, foldsToASCII); i >= 0 {
			r, _ := utf8.DecodeRuneInString(k[i:])
			return fmt.Sprintf("the key %q, whose %U reads as an ASCII letter where keys are matched ignoring case", k, r)
		}
		if len(m) == 1 {
			break
		}
		if seen == nil {
			seen = make(map[string]string, len(m))
		}
		f := foldKey(k)
		if other, dup := seen[f]; dup {
			return fmt.Sprintf("both %q and %q, keys that differ only in letter case", min(k, other), max(k, other))
		}
		seen[f] = k
	}
	return ""
}

// foldKey maps k to one spelling per class of keys equal under simple case
// folding: each rune becomes the least rune of its folding orbit (for
// ASCII letters, the capital).
func foldKey(k string) string {
	if !strings.ContainsFunc(k, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return strings.ToUpper(k)
	}
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, k)
}
