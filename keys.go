package toolgate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CaseAmbiguity says where v, a decoded JSON value, holds a key that a
// server may read as another key: two keys of one object, at any depth,
// equal under Unicode's simple case folding ("script" and "SCRIPT", or
// "script" and "ſcript" with a long s; "script" and "scrıpt", which .NET
// and Java compare equal ignoring case), or a key with the long s or the
// Kelvin sign, which no key needs ("worKdir"). "" when there is none.
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

// foldsToASCII are the runes outside ASCII that Go's encoding/json folds
// to an ASCII letter (s, k), and that no key needs.
const foldsToASCII = "\u017f\u212a"

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

// UndeclaredCase says where args holds a key that schema, a tool's input
// schema, does not declare but that equals one of its properties ignoring
// case ("CWD" for cwd), at any depth the schema declares properties for
// (an object property's, an array's items'): a server matching keys
// ignoring case takes it for that property, while the rules read the
// property by its name. "" when there is none.
func UndeclaredCase(args map[string]any, schema json.RawMessage) string {
	if allNamed(args, schema) {
		// Every key is named as a key in the schema, so none is
		// undeclared: what every call with declared arguments costs is
		// this search, not a decoding of its schema.
		return ""
	}
	return undeclaredCase(args, schema, "")
}

// allNamed reports whether every key in v, at any depth, appears as a key
// in schema's text.
func allNamed(v any, schema json.RawMessage) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !bytes.Contains(schema, []byte(strconv.Quote(k)+":")) || !allNamed(e, schema) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !allNamed(e, schema) {
				return false
			}
		}
	}
	return true
}

// schemaNode is the part of a JSON schema UndeclaredCase follows.
type schemaNode struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Items      json.RawMessage            `json:"items"`
}

func undeclaredCase(args map[string]any, schema json.RawMessage, at string) string {
	var s schemaNode
	_ = json.Unmarshal(schema, &s)
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if sub, ok := s.Properties[k]; ok {
			if why := undeclaredIn(args[k], sub, at+k); why != "" {
				return why
			}
			continue
		}
		f := foldKey(k)
		for p := range s.Properties {
			if foldKey(p) == f {
				return fmt.Sprintf("the key %q, which the tool does not declare and servers that match keys ignoring case read as its %q", at+k, at+p)
			}
		}
	}
	return ""
}

// undeclaredIn is undeclaredCase on v, the value of the property at, whose
// schema is schema: an object's keys, or each object item of an array.
func undeclaredIn(v any, schema json.RawMessage, at string) string {
	switch x := v.(type) {
	case map[string]any:
		return undeclaredCase(x, schema, at+".")
	case []any:
		var s schemaNode
		if json.Unmarshal(schema, &s) != nil || len(s.Items) == 0 {
			return ""
		}
		for i, e := range x {
			if why := undeclaredIn(e, s.Items, fmt.Sprintf("%s[%d]", at, i)); why != "" {
				return why
			}
		}
	}
	return ""
}

// foldKey maps k to one spelling per class of keys equal ignoring case:
// each rune becomes the least rune of its simple folding orbit (for ASCII
// letters, the capital), and the dotless ı and the dotted İ become I, as
// .NET's and Java's ignore-case comparisons make them.
func foldKey(k string) string {
	if !strings.ContainsFunc(k, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return strings.ToUpper(k)
	}
	return strings.Map(func(r rune) rune {
		if r == '\u0131' || r == '\u0130' {
			return 'I'
		}
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, k)
}
