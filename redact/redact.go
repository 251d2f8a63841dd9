// Package redact masks secrets (tokens, keys, passwords) in tool arguments,
// messages and logs before they leave toolgate.
//
// A [Redactor] masks two kinds of things:
//
//   - values stored under secret-looking keys ("password", "api_key",
//     "Authorization", "client_secret", "session", ... and any extra keys
//     given to [New]), matched case-insensitively and ignoring "_", "-" and
//     "." so that "apiKey", "API-KEY" and "api_key" are the same key;
//   - secret-looking substrings anywhere in a string: cloud and SaaS tokens
//     (AWS, GitHub, Slack, OpenAI/Anthropic, Google, Stripe, ...), JWTs, PEM
//     private key blocks, bearer/basic credentials, passwords in URLs and
//     KEY=value / "key": "value" pairs whose key looks secret.
//
// A PEM private key block is masked only when its body is key material
// (base64 lines, RFC 1421 headers first); other text between the markers
// is not a key and is left as text.
//
// Masking is one-way and idempotent: r.String(r.String(s)) == r.String(s).
// It errs on the side of masking too much, so what people decide from
// goes through [Redactor.ForReviewers], whose masks ([Describe]) say how
// long the hidden text is and whether it holds words or shell characters:
// a command dressed as a secret is flagged, not hidden.
//
//	r := redact.New([]string{"x-internal-sig"})
//	safe := r.Value(call.Args) // deep copy; call.Args is untouched
//	line := r.String("curl -H 'Authorization: Bearer abc...'")
package redact

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask replaces a secret.
const Mask = "[REDACTED]"

// maxPasses bounds the rewrite loop in String. Every rule's output is a fixed
// point of that rule, so two passes are the norm; a string that still changes
// after maxPasses is masked whole rather than returned half-redacted.
const maxPasses = 6

// secretKeyParts are substrings of a normalized key (lower case, letters and
// digits only) that make the key secret.
var secretKeyParts = []string{
	"password", "passwd", "passphrase", "secret", "token", "apikey",
	"authorization", "privatekey", "accesskey", "secretkey", "signingkey",
	"encryptionkey", "cookie", "session", "credential", "bearer",
}

// programSuffixes and locationSuffixes end normalized keys that name a
// program or a location (credential_helper, password_cmd; password_file,
// token_url, auth_sock). What fetches a secret, or where it is, is not the
// secret and may be the call's action ("credential.helper=/tmp/pwn.sh",
// "session_file": "/etc/cron.d/evil"), so a reviewer must see it
// (shownUnder): any value under a program key, a value under a location
// key that reads as a location (an absolute, home or ./ path, a URL). A
// bare word under a location key is masked all the same
// (API_TOKEN_FILE=Hunter2).
var (
	programSuffixes  = []string{"helper", "command", "cmd", "program", "script", "exe", "executable"}
	locationSuffixes = []string{"file", "files", "path", "paths", "dir", "directory", "url", "uri", "jar", "socket", "sock"}
)

// secretKeyExact are normalized keys that are secret only as a whole word
// ("auth" yes, "author" no).
var secretKeyExact = []string{"auth", "pass", "pwd", "xauth", "basicauth", "proxyauth"}

// Redactor masks values under secret-looking keys and secret-looking strings.
// It is immutable and safe for concurrent use. A nil *Redactor masks with the
// default rules.
type Redactor struct {
	extraKeys []string // as given to New
	extra     []string // normalized extra keys
	// mask is what replaces a hidden text: Mask, or for reviewers
	// Describe (ForReviewers).
	mask  func(hidden string) string
	rules []rule
	// hints indexes every rule's hints by their first byte, so that one
	// scan of the input finds which rules can match (instead of one
	// strings.Contains per hint, ~60 scans of the whole input).
	hints [256][]hintRef
}

// hintRef is one rule's hint.
type hintRef struct {
	hint string
	rule int
}

// rule is one pattern and how to rewrite each of its matches. hint is a cheap
// pre-check on the lower-cased input; nil means always try the pattern.
type rule struct {
	name string
	re   *regexp.Regexp
	hint []string
	repl func(s string, m []int) string
	// apply, when set, replaces re and repl.
	apply func(s string) string
	// scan is the scanRule apply runs, when it has a pre-check (its
	// differential test runs it without).
	scan *scanRule
}

// New returns a Redactor that also masks values under the given extra keys
// (compared like the built-in ones: case-insensitive, ignoring "_", "-", ".";
// a key is secret when it contains an extra key).
func New(extraKeys []string) *Redactor {
	return newRedactor(extraKeys, func(string) string { return Mask })
}

// ForReviewers returns a Redactor that masks what r masks, each with
// [Describe]'s marker instead of [Mask]: what a person deciding about a
// call sees (Slack, the web UI, `toolgate review`, elicitation), so that
// text made to look like a secret cannot hide what the call does from
// them. The secret itself is still never shown. A nil r gives the
// default rules.
func (r *Redactor) ForReviewers() *Redactor {
	var keys []string
	if r != nil {
		keys = r.extraKeys
	}
	return newRedactor(keys, Describe)
}

func newRedactor(extraKeys []string, mask func(string) string) *Redactor {
	r := &Redactor{extraKeys: slices.Clone(extraKeys), mask: mask}
	for _, k := range extraKeys {
		if n := normalizeKey(k); n != "" {
			r.extra = append(r.extra, n)
		}
	}
	r.rules = buildRules(r.extra, r.maskOf)
	for i, ru := range r.rules {
		for _, h := range ru.hint {
			r.hints[h[0]] = append(r.hints[h[0]], hintRef{h, i})
		}
	}
	return r
}

// IsSecretKey reports whether values under key are masked by Value.
func (r *Redactor) IsSecretKey(key string) bool {
	var extra []string
	if r != nil {
		extra = r.extra
	}
	return secretKey(normalizeKey(key), extra)
}

// secretKey reports whether the normalized key n is secret, given the
// normalized extra keys.
func secretKey(n string, extra []string) bool {
	if n == "" {
		return false
	}
	// Counts, not secrets: "max_tokens", "input_tokens", "session_count".
	if strings.HasSuffix(n, "tokens") || strings.HasSuffix(n, "count") {
		return false
	}
	for _, p := range secretKeyParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	for _, e := range secretKeyExact {
		if n == e {
			return true
		}
	}
	for _, e := range extra {
		if strings.Contains(n, e) {
			return true
		}
	}
	return false
}

// shownUnder reports whether v, a value under the normalized secret key n,
// is shown (see programSuffixes).
func shownUnder(n string, v any) bool {
	str, ok := v.(string)
	suffix := func(p string) bool { return strings.HasSuffix(n, p) }
	switch {
	case !ok:
		return false
	case slices.ContainsFunc(programSuffixes, suffix):
		return true
	case slices.ContainsFunc(locationSuffixes, suffix):
		return strings.Contains(str, "://") || strings.HasPrefix(str, "/") || strings.HasPrefix(str, "~/") ||
			strings.HasPrefix(str, "./") || strings.HasPrefix(str, "../")
	}
	return false
}

func normalizeKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		}
	}
	return b.String()
}

// Value returns a deep copy of v (JSON-like: maps, slices, strings, numbers)
// with secrets masked. v is not modified. Values under secret keys become
// [Mask] whatever their type (nil and "" stay as they are); every other
// string goes through [Redactor.String], map keys included. Values of other
// types are copied through a JSON round trip, and masked whole if that fails.
func (r *Redactor) Value(v any) any {
	if r == nil {
		r = defaultRedactor
	}
	return r.value(v, 0)
}

// maxDepth bounds recursion on pathological (self-referencing) inputs.
const maxDepth = 64

func (r *Redactor) value(v any, depth int) any {
	if depth > maxDepth {
		return Mask
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return r.String(x)
	case bool, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return x
	case json.Number:
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r.put(out, k, e, depth)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r.put(out, k, e, depth)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e, depth+1)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.String(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e, depth+1)
		}
		return out
	default:
		// Structs, typed maps, pointers: normalize through JSON, which is
		// what leaves toolgate anyway.
		b, err := json.Marshal(x)
		if err != nil {
			return Mask
		}
		var g any
		if err := json.Unmarshal(b, &g); err != nil {
			return Mask
		}
		return r.value(g, depth+1)
	}
}

// put stores e (redacted) under the redacted k, never overwriting an entry
// another key redacted to the same text.
func (r *Redactor) put(out map[string]any, k string, e any, depth int) {
	var val any
	if r.IsSecretKey(k) && !shownUnder(normalizeKey(k), e) {
		val = r.maskWhole(e)
	} else {
		val = r.value(e, depth+1)
	}
	rk := r.String(k)
	if _, dup := out[rk]; dup || (rk != k && hasKey(out, rk)) {
		for i := 2; ; i++ {
			c := fmt.Sprintf("%s#%d", rk, i)
			if _, taken := out[c]; !taken {
				rk = c
				break
			}
		}
	}
	out[rk] = val
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// maskWhole masks v, a value under a secret key, whatever its type: a
// string is hidden as it is, anything else as its JSON.
func (r *Redactor) maskWhole(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if x == "" {
			return ""
		}
		return r.maskOf(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Mask
	}
	return r.maskOf(string(b))
}

// maskOf is r's mask of hidden; a marker (text already masked) is kept as
// it is, so that masking stays idempotent.
func (r *Redactor) maskOf(hidden string) string {
	if IsMask(hidden) {
		return hidden
	}
	return r.mask(hidden)
}

// String returns s with secret-looking substrings masked.
func (r *Redactor) String(s string) string {
	if r == nil {
		r = defaultRedactor
	}
	for range maxPasses {
		t := r.pass(s)
		if t == s {
			return s
		}
		s = t
	}
	return r.mask(s)
}

func (r *Redactor) pass(s string) string {
	if s == "" {
		return s
	}
	var hit []bool
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.hint != nil {
			if hit == nil {
				hit = r.hinted(s, i)
			}
			if !hit[i] {
				continue
			}
		}
		var t string
		if ru.apply != nil {
			t = ru.apply(s)
		} else {
			t = replaceAll(ru.re, s, ru.repl)
		}
		if t != s {
			s, hit = t, nil // look for the later rules' hints in the new text
		}
	}
	return s
}

// hinted reports, for each rule from the from-th on, whether the ASCII
// lower-cased s contains one of its hints. A rule's pattern can only match
// text that contains one of them: every hint is an ASCII literal of the
// pattern (letters compared case-insensitively).
func (r *Redactor) hinted(s string, from int) []bool {
	hit := make([]bool, len(r.rules))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		for _, h := range r.hints[c] {
			if h.rule >= from && !hit[h.rule] && hasPrefixFold(s[i:], h.hint) {
				hit[h.rule] = true
			}
		}
	}
	return hit
}

// hasPrefixFold reports whether s starts with the lower-case ASCII lower,
// ignoring the case of ASCII letters in s.
func hasPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for j := 0; j < len(lower); j++ {
		c := s[j]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[j] {
			return false
		}
	}
	return true
}

// replaceAll is regexp.ReplaceAllStringFunc with access to submatch indexes.
func replaceAll(re *regexp.Regexp, s string, repl func(s string, m []int) string) string {
	ms := re.FindAllStringSubmatchIndex(s, -1)
	if ms == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, m := range ms {
		b.WriteString(s[last:m[0]])
		b.WriteString(repl(s, m))
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// group returns submatch n of m in s, "" when it did not participate.
func group(s string, m []int, n int) string {
	if m[2*n] < 0 {
		return ""
	}
	return s[m[2*n]:m[2*n+1]]
}

// tokenPatterns are well-known credential formats, masked wherever they
// appear. Each hint is a lower-case literal the match must contain. A
// pattern with a group masks only the group: the rest is the host and path
// a client reaches, left in clear. check, when set, has the last word on a
// match (ok), and says where its mask ends (end; the rest is left as it
// is).
var tokenPatterns = []struct {
	name, re string
	hint     []string
	check    func(s string, m []int) (end int, ok bool)
}{
	{"aws-access-key-id", `\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16,}`, []string{"akia", "asia", "abia", "acca", "aroa", "aida"}, nil},
	{"github", `(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}`, []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, nil},
	{"github-pat", `github_pat_[A-Za-z0-9_]{20,}`, []string{"github_pat_"}, nil},
	{"gitlab", `glpat-[A-Za-z0-9_\-]{20,}`, []string{"glpat-"}, nil},
	{"slack", `xox[abposre]-[A-Za-z0-9\-]{8,}`, []string{"xox"}, nil},
	{"slack-app", `xapp-[A-Za-z0-9\-]{8,}`, []string{"xapp-"}, nil},
	{"slack-webhook", `hooks\.slack\.com/(?:services|workflows)/([A-Za-z0-9/_\-]+)`, []string{"hooks.slack.com"}, nil},
	{"openai-anthropic", `\bsk-[A-Za-z0-9_\-]{16,}`, []string{"sk-"}, nil},
	{"google-api-key", `AIza[0-9A-Za-z_\-]{30,}`, []string{"aiza"}, nil},
	// Service accounts' tokens start "ya29.c."; a token runs past a DNS
	// label's 63 characters, so a name (ya29.x.evil.example, or a host
	// whose top-level domain is ya29.xn--...) stays in clear.
	{"google-oauth", `ya29\.(?:c\.)?[0-9A-Za-z_\-]{64,}`, []string{"ya29."}, nil},
	{"stripe", `\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}`, []string{"k_live_", "k_test_"}, nil},
	{"stripe-webhook", `whsec_[0-9A-Za-z]{16,}`, []string{"whsec_"}, nil},
	{"npm", `npm_[A-Za-z0-9]{30,}`, []string{"npm_"}, nil},
	{"pypi", `pypi-[A-Za-z0-9_\-]{40,}`, []string{"pypi-"}, nil},
	// curl's and wget's user:password options (-u, --user, -U,
	// --proxy-user, --http-password...): the password; a uid:gid
	// (docker run -u 1000:1000) is none.
	{"user-password", `(?:^|\s)(?:-u|-U|--user|--proxy-user)[\s=]*['"]?[^\s:'"]*:([^\s'"]+)`, []string{"-u", "--user", "--proxy-user"},
		func(s string, m []int) (int, bool) { return m[3], strings.Trim(s[m[2]:m[3]], "0123456789") != "" }},
}

// dottedAfter reports whether s goes on at i as a dotted name: a "."
// and a letter or digit.
func dottedAfter(s string, i int) bool {
	return i+1 < len(s) && s[i] == '.' && isAlnum(s[i+1])
}

// joseStarts are how a JOSE header (a JSON object whose first member's
// name starts with a letter, as "alg", "typ", "kid" and "enc" do) starts
// in base64, standard or URL-safe: "{" then '"' (eyJ), or whitespace first:
// a space (eyA), a newline (ewo), "\r\n" (ew0), a tab (ewk). They are the
// hints of the JWT/JWE rule; maskJOSE decodes what follows to tell a token.
var joseStarts = []string{"eyJ", "eyA", "ewo", "ew0", "ewk"}

// joseTriesPerRun bounds the header starts maskJOSE tries in one run of
// base64 characters, so that a long run full of starts costs linear time.
const joseTriesPerRun = 16

// jwtSignatureMin is the length of the shortest JWS signature in base64
// (HS256's 32 bytes); ES256, EdDSA and RS256 ones are longer.
const jwtSignatureMin = 43

// maskJOSE masks JWTs (JWS: header.payload.signature, the header and
// payload base64 JSON objects, the signature empty (alg none) or of a
// real length) and JWEs (header, encrypted key, IV, ciphertext, tag: the
// header a base64 JSON object, the other parts base64url, IV, ciphertext
// and tag at least 16 long), wherever they stand (after %20, inside a
// word). Base64 may be URL-safe or standard, padded or not. Decoding the
// header and payload, not their shape, tells a token from a name made of
// look-alike labels (https://eyJhbGciOi.exfil-service.com/); a token that
// goes on as a dotted name is masked up to its last label only (inName).
func maskJOSE(s string, mask func(string) string) string {
	var b strings.Builder
	last, runEnd, tries := 0, -1, 0
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], 'e')
		if j < 0 {
			break
		}
		j += i
		i = j + 1
		if !slices.ContainsFunc(joseStarts, func(p string) bool { return strings.HasPrefix(s[j:], p) }) {
			continue
		}
		if j >= runEnd {
			runEnd, tries = b64Run(s, j), 0
		}
		if tries++; tries > joseTriesPerRun {
			i = runEnd
			continue
		}
		end, ok := joseAt(s, j, runEnd)
		if !ok {
			continue
		}
		maskEnd := inName(s, []int{j, end})
		b.WriteString(s[last:j])
		b.WriteString(mask(s[j:maskEnd]))
		b.WriteString(s[maskEnd:end])
		last, i, runEnd = end, end, -1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// joseAt returns the end of the JWS or JWE whose header starts at j and
// runs to h (b64Run), and whether there is one. The parts' layout is
// checked first, their decoding last.
func joseAt(s string, j, h int) (int, bool) {
	if h >= len(s) || s[h] != '.' {
		return 0, false
	}
	header := s[j:h]
	// JWS: a payload that is a JSON object, then a signature.
	if p := b64Run(s, h+1); p < len(s) && s[p] == '.' {
		payload := s[h+1 : p]
		end := jwsSignatureEnd(s, p+1, header, payload)
		n := len(strings.TrimRight(s[p+1:end], "="))
		if (n == 0 || n >= jwtSignatureMin) &&
			(eyJShaped(header, 16) && eyJShaped(payload, 7) || b64JSONObject(header) && b64JSONObject(payload)) {
			return end, true
		}
	}
	// JWE: encrypted key (empty for "dir"), IV, ciphertext, tag.
	i := h + 1
	for k, min := range []int{0, 16, 16, 16} {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0, false
			}
			i++
		}
		e := i
		for e < len(s) && isBase64URL(s[e]) {
			e++
		}
		if e-i < min {
			return 0, false
		}
		i = e
	}
	return i, eyJShaped(header, 16) || b64JSONObject(header)
}

// eyJShaped reports whether seg has the shape of a base64url JSON object
// that starts {" ("eyJ" and at least n more base64url characters), which
// is masked even when it does not decode (a token cut or mangled, a
// payload that is not JSON): what was masked before decoding was.
func eyJShaped(seg string, n int) bool {
	if !strings.HasPrefix(seg, "eyJ") || len(seg) < 3+n {
		return false
	}
	for i := 3; i < len(seg); i++ {
		if !isBase64URL(seg[i]) {
			return false
		}
	}
	return true
}

// jwsSignatureEnd is where a JWS signature starting at i ends, after
// header and payload. A base64url signature ends at a "+" or "/"; a
// standard one goes on through them when the header or payload is
// standard base64 too, or when no part says which (no "-", "_", "+", "/"
// or "=") and what comes before the "+" or "/" is too short for a
// signature and is not a word of letters: in
// "eyJ...eyJ....com/aaaa...", ".com/aaaa..." is a host's last label and
// a path, not a signature.
func jwsSignatureEnd(s string, i int, header, payload string) int {
	e := i
	for e < len(s) && isBase64URL(s[e]) {
		e++
	}
	urlSafe := strings.ContainsAny(header, "-_") || strings.ContainsAny(payload, "-_") || strings.ContainsAny(s[i:e], "-_")
	std := strings.ContainsAny(header, "+/=") || strings.ContainsAny(payload, "+/=")
	if e < len(s) && (s[e] == '+' || s[e] == '/') && !urlSafe && (std || e-i < jwtSignatureMin && !isWord(s[i:e])) {
		return b64Run(s, e)
	}
	return padded(s, e)
}

// isWord reports whether w is two letters or more, as a top-level domain
// is.
func isWord(w string) bool {
	if len(w) < 2 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if c := w[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isBase64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// b64Run is the end of the run of base64 characters (either alphabet)
// from i, with up to two "=" of padding.
func b64Run(s string, i int) int {
	for i < len(s) && (isBase64URL(s[i]) || s[i] == '+' || s[i] == '/') {
		i++
	}
	return padded(s, i)
}

// padded is the end of up to two "=" of base64 padding at i.
func padded(s string, i int) int {
	for k := 0; k < 2 && i < len(s) && s[i] == '='; k++ {
		i++
	}
	return i
}

// b64JSONObject reports whether seg, base64 of either alphabet (not
// both), padded or not, decodes to a JSON object.
func b64JSONObject(seg string) bool {
	seg = strings.TrimRight(seg, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(seg, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(seg)
	if err != nil {
		return false
	}
	t := strings.TrimLeft(string(b), " \t\r\n")
	return strings.HasPrefix(t, "{") && json.Valid(b)
}

// inName is where the mask of a dotted token's match m of s ends: at the
// match's end, but for a match that goes on as a dotted name (".evil.example"
// follows), before its last label, which is left in clear with the rest
// of the name. A host built from token-shaped labels then shows the domain
// a reviewer must see, whatever lengths its labels have; a real JWT
// followed by ".x" keeps its header and payload masked (its signature
// alone is no credential), a JWE all but its tag.
func inName(s string, m []int) int {
	tok := s[m[0]:m[1]]
	if dottedAfter(s, m[1]) {
		if i := strings.LastIndexByte(tok, '.'); i > 0 {
			return m[0] + i
		}
	}
	// A last part that reads as a top-level domain (letters, or an IDN's
	// xn--) after a part that fits a DNS label ends a host name, not a
	// token (a signature or tag is that only by a rare chance): the last
	// two labels, the domain, stay in clear.
	if i := strings.LastIndexByte(tok, '.'); i > 0 && topLevel(tok[i+1:]) {
		if j := strings.LastIndexByte(tok[:i], '.'); j > 0 && i-j-1 <= 63 {
			return m[0] + j
		}
	}
	return m[1]
}

// topLevel reports whether label reads as a top-level domain: 2 to 24
// letters, or an internationalized one (xn--...); the longest is 24. A
// JWS signature is longer (jwtSignatureMin).
func topLevel(label string) bool {
	if len(label) > 24 {
		return false
	}
	if len(label) > 4 && strings.EqualFold(label[:4], "xn--") {
		return true
	}
	return isWord(label)
}

// genericValue is the value part of a KEY=value pair: a double-quoted
// string (optionally with escaped quotes, as in JSON inside a string), a
// single-quoted string, or a bare word; a bare value that starts with a
// mask is the mask and the word after it ("[REDACTED 4 chars — not
// shown]s3cr3t", which the kv rule masks whole).
const genericValue = `(\\"(?:[^"\\]|\\[^"])*\\"|"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s"',;&<>(){}\[\]]+|` + markerRe + `[^\s"',;&<>(){}\[\]]*|\[[^\s\]]*\]?)`

// buildRules builds the rules of a Redactor with the normalized extra
// keys extraNorm, each hiding what it matches with mask.
func buildRules(extraNorm []string, mask func(string) string) []rule {
	var rs []rule
	// PEM private keys first: the block may contain anything.
	rs = append(rs, rule{name: "pem", hint: []string{"private key"}, apply: func(s string) string { return maskPEM(s, mask) }})
	for _, p := range tokenPatterns {
		re := regexp.MustCompile(p.re)
		whole := re.NumSubexp() == 0
		repl := func(s string, m []int) string {
			end := m[1]
			if p.check != nil {
				e, ok := p.check(s, m)
				if !ok {
					return s[m[0]:m[1]]
				}
				end = e
			}
			if whole {
				return mask(s[m[0]:end]) + s[end:m[1]]
			}
			return s[m[0]:m[2]] + mask(s[m[2]:m[3]]) + s[m[3]:m[1]]
		}
		rs = append(rs, rule{name: p.name, re: re, hint: p.hint, repl: repl})
	}
	jose := make([]string, len(joseStarts))
	for i, p := range joseStarts {
		jose[i] = strings.ToLower(p)
	}
	rs = append(rs, rule{name: "jwt-jwe", hint: jose, apply: func(s string) string { return maskJOSE(s, mask) }})
	// scheme://user:password@host -> scheme://user:[REDACTED]@host. The
	// password ends at the last "@" before the authority ends at "/", "?",
	// "#" or "\" (WHATWG parsers, as in browsers and Node, end it at "\"
	// too, and take the host after the last "@", as Go and Python do), so
	// the host left in clear is the one a client connects to:
	// "https://u:x@evil.example\@github.com/" shows evil.example. A
	// password with a raw "@" is hidden whole, not cut at its first "@".
	url := &scanRule{
		re:     regexp.MustCompile(`^([A-Za-z0-9+.\-]*://[^\s:/?#@]*:)[^\s/?#\\]*@`),
		starts: []string{"://"},
		back:   func(c byte) bool { return isAlnum(c) || c == '+' || c == '.' || c == '-' },
		repl: func(s string, m []int) (string, bool) {
			return group(s, m, 1) + mask(s[m[3]:m[1]-1]) + "@", true
		},
	}
	rs = append(rs, rule{name: "url-password", hint: url.starts, apply: url.apply})
	// Bearer/Basic credentials wherever they appear.
	auth := &scanRule{
		re:        regexp.MustCompile(`^(?i)((?:bearer|basic|digest|negotiate)\s+)[A-Za-z0-9\-._~+/]+=*`),
		starts:    []string{"bearer", "basic", "digest", "negotiate"},
		wordStart: true,
		repl: func(s string, m []int) (string, bool) {
			// "basic arithmetic" is prose; credentials mix in digits,
			// capitals or punctuation.
			return group(s, m, 1) + mask(s[m[3]:m[1]]), credentialLike(s[m[3]:m[1]])
		},
	}
	rs = append(rs, rule{name: "auth-scheme", hint: auth.starts, apply: auth.apply})
	// KEY=value, KEY: value, "key": "value", key := "value" where KEY looks
	// secret. The pattern finds candidates; IsSecretKey has the last word,
	// so counts like max_tokens=100 are kept.
	parts := append([]string(nil), secretKeyParts...)
	parts = append(parts, `api[_\-.]?key`, `private[_\-.]?key`, `access[_\-.]?key`, `secret[_\-.]?key`,
		`client[_\-.]?secret`, `auth`, `pass`, `pwd`)
	starts := append([]string(nil), secretKeyParts...)
	starts = append(starts, "api", "private", "access", "client", "auth", "pass", "pwd")
	for _, n := range extraNorm {
		// "X-Internal-Sig" in text matches extra key "xinternalsig".
		parts = append(parts, strings.Join(strings.Split(n, ""), `[_\-.]?`))
		starts = append(starts, n[:1])
	}
	// Longest alternatives first so RE2's leftmost-first picks the full word.
	sort.SliceStable(parts, func(i, j int) bool { return len(parts[i]) > len(parts[j]) })
	// A key runs at most maxKeyTail bytes past its keyword, so a
	// candidate that is no key fails without scanning the rest of the text.
	keyRe := `(?:` + strings.Join(parts, "|") + `)[A-Za-z0-9_.\-]{0,` + fmt.Sprint(maxKeyTail) + `}`
	// keyOf is the normalized identifier around the key from p to end: the
	// keyword only found a candidate; the whole identifier decides, so
	// counts like max_tokens=100 are kept.
	keyOf := func(s string, p, end int) string {
		for p > 0 && isIdentByte(s[p-1]) {
			p--
		}
		return normalizeKey(s[p:end])
	}
	kv := &scanRule{
		re:     regexp.MustCompile(`^(?i)(` + keyRe + `)(\\?["']?\s*(?::=|=>|[:=])\s*)((?:bearer|basic|token|digest|negotiate)\s+)?` + genericValue),
		starts: starts,
		pre: func(s string, p int) bool {
			end, ok := keyHead(s, p)
			return ok && secretKey(keyOf(s, p, end), extraNorm)
		},
		mask: mask,
		repl: func(s string, m []int) (string, bool) {
			q, v := quoted(group(s, m, 4))
			if n := keyOf(s, m[0], m[3]); !secretKey(n, extraNorm) || shownUnder(n, v) || userinfo(s, m[0], v) {
				return "", false
			}
			// A value that is a mask is kept, so that masking is
			// idempotent; one that only starts with a mask is masked
			// whole ("[REDACTED]hunter2" is not a mask).
			if IsMask(v) {
				return "", false
			}
			return group(s, m, 1) + group(s, m, 2) + group(s, m, 3) + q + mask(v) + q, true
		},
	}
	rs = append(rs, rule{name: "key-value", hint: starts, apply: kv.apply, scan: kv})
	return rs
}

// userinfo reports whether the identifier around s[p] is a URL's user
// name whose password url-password masked: its value v is that mask and
// "@" (scheme://token:[REDACTED]@host). The host after it stays in clear,
// whatever the name says.
func userinfo(s string, p int, v string) bool {
	for p > 0 && isIdentByte(s[p-1]) {
		p--
	}
	m := marker.FindString(v)
	return strings.HasSuffix(s[:p], "://") && m != "" && strings.HasPrefix(v[len(m):], "@")
}

// scanRule finds candidate positions with plain string search for its
// lower-case starts and runs its anchored pattern only there. Patterns whose
// first character could be anything (a case-folded alternation, an
// identifier) cost ~0.4 µs per input byte when left unanchored; this is what
// keeps String at tens of MB/s.
type scanRule struct {
	re     *regexp.Regexp // anchored with ^
	starts []string
	// back, when set, moves a candidate start left over bytes it accepts
	// (the scheme before "://").
	back func(c byte) bool
	// wordStart requires a non-word byte (or the start) before a candidate.
	wordStart bool
	// pre, when set, must accept a candidate at p before re runs: a cheap
	// test that spares re's longer scan. It may accept what re then
	// rejects, never the other way round.
	pre func(s string, p int) bool
	// repl returns the replacement of match m; false keeps the match as is.
	repl func(s string, m []int) (string, bool)
	// mask hides what is left of s from a candidate on once the matches
	// kept as they are have scanned more than scanBudget allows.
	mask func(string) string
}

// scanBudget bounds the bytes a scanRule's matches that are kept as they
// are may scan, in multiples of the text's length: candidates overlap, so
// without a bound text made of them (max_tokens=max_tokens=...) costs time
// quadratic in its length. Past it, the rest of the text is masked.
const scanBudget = 8

func (k *scanRule) apply(s string) string {
	lower := asciiLower(s)
	var pos []int
	for _, w := range k.starts {
		for off := 0; ; {
			i := strings.Index(lower[off:], w)
			if i < 0 {
				break
			}
			p := off + i
			off = p + 1
			if k.wordStart && p > 0 && (isAlnum(s[p-1]) || s[p-1] == '_') {
				continue
			}
			if k.back != nil {
				for p > 0 && k.back(s[p-1]) {
					p--
				}
			}
			pos = append(pos, p)
		}
	}
	if pos == nil {
		return s
	}
	sort.Ints(pos)
	var b strings.Builder
	last, kept := 0, 0
	for _, p := range pos {
		if p < last {
			continue
		}
		if kept > scanBudget*len(s)+64<<10 && k.mask != nil {
			b.WriteString(s[last:p])
			b.WriteString(k.mask(s[p:]))
			return b.String()
		}
		if k.pre != nil && !k.pre(s, p) {
			continue
		}
		m := k.re.FindStringSubmatchIndex(s[p:])
		if m == nil {
			continue
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += p
			}
		}
		r, ok := k.repl(s, m)
		if !ok {
			kept += m[1] - p
			continue
		}
		b.WriteString(s[last:p])
		b.WriteString(r)
		last = m[1]
	}
	if b.Len() == 0 && last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// maxKeyTail bounds a key's length past its keyword (see keyRe).
const maxKeyTail = 64

// keyHead is what the key-value rule's pattern needs at p, checked
// without it: a run of key characters and then a separator (an optional \
// and quote, spaces, and :=, =>, : or =). It returns where the run ends.
// Key characters are the pattern's [A-Za-z0-9_.\-] under (?i), which
// folds the Kelvin sign and the long s into its letters.
// It accepts whatever the pattern can match, and more: it does not check
// the keyword, and reads a run up to 256 bytes, longer than any keyword
// and maxKeyTail.
func keyHead(s string, p int) (int, bool) {
	end := p
	for end < len(s) && end-p < 256 {
		switch {
		case isAlnum(s[end]) || s[end] == '_' || s[end] == '.' || s[end] == '-':
			end++
			continue
		case strings.HasPrefix(s[end:], "\u212a"): // the Kelvin sign, k folded (?i) as the pattern does
			end += len("\u212a")
			continue
		case strings.HasPrefix(s[end:], "\u017f"): // the long s, folded to s
			end += len("\u017f")
			continue
		}
		break
	}
	i := end
	if i < len(s) && s[i] == '\\' {
		i++
	}
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
	}
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return end, i < len(s) && (s[i] == ':' || s[i] == '=')
}

// isSpace is RE2's \s: space, \t, \n, \f, \r (not \v).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// asciiLower lower-cases ASCII letters only, so byte offsets are preserved.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func credentialLike(tok string) bool {
	if len(tok) < 8 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < 'a' || c > 'z' {
			return true
		}
	}
	return false
}

var (
	pemBegin = regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----`)
	pemEnd   = regexp.MustCompile(`-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----`)
	// pemHeader is an RFC 1421 header line (Proc-Type: 4,ENCRYPTED,
	// DEK-Info: AES-128-CBC,...; PGP's Version: and Comment:), its value
	// limited to what such headers hold.
	pemHeader = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*: [A-Za-z0-9,._+/=() -]*$`)
	// pemBase64 is a run of base64 (a line of the body; PGP's checksum
	// line is one too).
	pemBase64 = regexp.MustCompile(`^=?[A-Za-z0-9+/]+={0,2}$`)
)

// cutPEMLine cuts s at its first line break: a real one (\r\n, \n, \r) or
// an escaped one in text that holds JSON (the characters \r\n or \n). found
// is false when s has none. A body is read a line at a time, so that text
// after a BEGIN line that is not a key costs its first line, not a pass over
// all of it.
func cutPEMLine(s string) (line, rest string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			return s[:i], s[i+1:], true
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				return s[:i], s[i+2:], true
			}
			return s[:i], s[i+1:], true
		case '\\':
			if strings.HasPrefix(s[i:], `\r\n`) {
				return s[:i], s[i+4:], true
			}
			if strings.HasPrefix(s[i:], `\n`) {
				return s[:i], s[i+2:], true
			}
		}
	}
	return s, "", false
}

// maskPEM keeps each private key block's BEGIN and END lines and masks
// what is between them when it is key material (keyMaterial); a block with
// no END (truncated input) is masked to the end of s. Anything else
// between the markers is not a key and is left as text: "BEGIN ... PRIVATE
// KEY-----; curl ... | sh; -----END" must not hide the command.
func maskPEM(s string, mask func(string) string) string {
	var b strings.Builder
	for {
		loc := pemBegin.FindStringIndex(s)
		if loc == nil {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:loc[1]])
		rest := s[loc[1]:]
		end := pemEnd.FindStringIndex(rest)
		body := rest
		if end != nil {
			body = rest[:end[0]]
		}
		if b64, ok := keyMaterial(body); ok {
			// Described by its base64 alone: the line breaks between
			// runs of base64 are layout, not words.
			b.WriteString(mask(b64))
		} else {
			b.WriteString(body)
		}
		if end == nil {
			return b.String()
		}
		b.WriteString(rest[end[0]:end[1]])
		s = rest[end[1]:]
	}
}

// keyMaterial reports whether body, the text between a private key's BEGIN
// and END lines, looks like a key: RFC 1421 header lines, then lines of
// base64 (runs of it split by spaces too, as in a key pasted on one
// line), at least 32 base64 characters, every run but the last at least 16
// long (the lines of a PEM body are 64 to 76). Short words made of base64
// letters ("reboot", "/tmp/x") are not key material. It returns the
// base64, joined.
func keyMaterial(body string) (string, bool) {
	var runs []string
	for rest, more := body, true; more; {
		var line string
		line, rest, more = cutPEMLine(rest)
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case len(runs) == 0 && pemHeader.MatchString(line):
		default:
			for _, f := range strings.Fields(line) {
				if !pemBase64.MatchString(f) {
					return "", false
				}
				runs = append(runs, f)
			}
		}
	}
	n := 0
	for i, r := range runs {
		if i < len(runs)-1 && len(r) < 16 {
			return "", false
		}
		n += len(r)
	}
	if n < 32 {
		return "", false
	}
	return strings.Join(runs, ""), true
}

// markerRe matches a mask: Mask, or one Describe wrote.
const markerRe = `\[REDACTED(?: [0-9]+ chars(?: — contains ` + describeItem + `(?:(?:, | and | )` + describeItem + `)*)? — not shown)?\]`

// describeItem is one thing Describe says a hidden text contains; its
// class holds shellChars.
const describeItem = `(?:spaces|newlines|control characters|invisible characters|[;|&$` + "`" + `()<>{},/@\\])`

var marker = regexp.MustCompile(`^` + markerRe)

// IsMask reports whether s is a mask (Mask, or one Describe wrote) and
// nothing else.
func IsMask(s string) bool {
	return strings.HasPrefix(s, "[REDACTED") && len(marker.FindString(s)) == len(s)
}

// quoted splits a key's value v into the quote it starts with (\", " or
// ', "" for a bare word) and what is inside, which the kv rule masks
// between the same quotes.
func quoted(v string) (q, inner string) {
	for _, q := range []string{`\"`, `"`, `'`} {
		if strings.HasPrefix(v, q) {
			return q, strings.TrimSuffix(strings.TrimPrefix(v, q), q)
		}
	}
	return "", v
}

// shellChars are the characters that make a hidden text more than a
// secret, in the order Describe lists them: the shell's, brace
// expansion's, and those of paths and hosts.
const shellChars = ";|&$`()<>{},/@\\"

// Describe is the mask a reviewer sees ([Redactor.ForReviewers]): it says
// what was hidden without showing it, its length in characters and, when
// the hidden text could be more than one secret word, what it contains:
// words split by whitespace, line breaks, other control characters,
// invisible ones (zero-width, bidi overrides: Unicode format characters)
// and shellChars. A secret is one word; a command, a path or a URL is not,
// and a reviewer told "contains spaces and ; |" knows to look at the call
// another way (`toolgate audit show` on the host does not show it either:
// the reviewer should deny). For example
// "[REDACTED 52 chars — contains spaces and ; | / — not shown]".
func Describe(hidden string) string {
	var what []string
	if len(strings.Fields(hidden)) > 1 {
		what = append(what, "spaces")
	}
	if strings.ContainsAny(hidden, "\n\r") {
		what = append(what, "newlines")
	}
	if strings.ContainsFunc(hidden, func(c rune) bool {
		return unicode.IsControl(c) && c != '\n' && c != '\r' && c != '\t'
	}) {
		what = append(what, "control characters")
	}
	if strings.ContainsFunc(hidden, func(c rune) bool { return unicode.Is(unicode.Cf, c) }) {
		what = append(what, "invisible characters")
	}
	var syms []string
	for _, c := range shellChars {
		if strings.ContainsRune(hidden, c) {
			syms = append(syms, string(c))
		}
	}
	if len(syms) > 0 {
		what = append(what, strings.Join(syms, " "))
	}
	n := utf8.RuneCountInString(hidden)
	if len(what) == 0 {
		return fmt.Sprintf("[REDACTED %d chars — not shown]", n)
	}
	list := what[0]
	if len(what) > 1 {
		list = strings.Join(what[:len(what)-1], ", ") + " and " + what[len(what)-1]
	}
	return fmt.Sprintf("[REDACTED %d chars — contains %s — not shown]", n, list)
}

// defaultRedactor is immutable after init; it backs a nil *Redactor.
var defaultRedactor = New(nil)
