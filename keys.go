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
// "script" and "ſcript" with a long s), or a key with one of the two
// runes outside ASCII that fold to an ASCII letter, the long s and the
// Kelvin sign ("worKdir"). "" when there is none.
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

// caseAmbiguousKeys is CaseAmbiguity for m's own keys.
func caseAmbiguousKeys(m map[string]any) string {
	var seen map[string]string
	for k := range m {
		if i := strings.IndexAny(k, "\u017f\u212a"); i >= 0 {
			what := "U+017F LATIN SMALL LETTER LONG S"
			if strings.HasPrefix(k[i:], "\u212a") {
				what = "U+212A KELVIN SIGN"
			}
			return fmt.Sprintf("the key %q, whose %s folds to an ASCII letter", k, what)
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
