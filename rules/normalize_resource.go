package rules

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
)

// fileResource normalizes a resource read whose URI has the file scheme
// (in any case) as a file read: the path the URI names, decoded and
// cleaned, is a path the call reads, classified like a file tool's
// (paths.all, paths.outside, paths.secret...). It reports whether c is
// such a read; any other call or URI is left to argPaths.
//
// What toolgate checks must be what the upstream reads, and upstreams
// parse URIs their own way: a WHATWG parser (Node's URL) drops spaces and
// control characters around the URI and tabs and newlines in it, and
// takes a backslash for a slash; most readers drop a query or fragment,
// some keep it as part of the name; some ignore the host, some decode
// twice, some stop at a NUL. So the call reads the path net/url gives and
// each other reading's path where it differs (any of them can make the
// call secret), and resource.unchecked says why the URI is not one every
// reader reads the same way.
func (n *normCall) fileResource(c *toolgate.Call, ws Workspace) bool {
	if c.Kind != toolgate.KindResource {
		return false
	}
	uri, _ := c.Args["uri"].(string)
	paths, why, ok := fileURLReadings(uri, ws.dir(c.Server), ws)
	if !ok {
		return false
	}
	n.resFile = true
	for _, p := range paths {
		n.readPath(p)
	}
	n.resUnchecked = strings.Join(why, "; ")
	return true
}

// fileURLReadings reads uri as upstreams may read a file: URI: paths are
// the paths, absolute and clean, that one reader or another takes it to
// name (the one net/url gives first), and why says what makes readers
// differ (nothing: every reader reads the one path); a relative one
// (file:x) resolves against dir, where its reader runs. ok is false when
// uri does not have the file scheme.
func fileURLReadings(uri, dir string, ws Workspace) (paths, why []string, ok bool) {
	add := func(p string) {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	s := dropTabsAndNewlines.Replace(strings.TrimFunc(uri, func(r rune) bool { return r <= ' ' }))
	if !isFileURL(s) {
		return nil, nil, false
	}
	if s != uri {
		why = append(why, "it has spaces or control characters, which URL parsers drop")
	}
	if strings.Contains(s, `\`) {
		why = append(why, `it has a backslash, which some readers take for a "/"`)
		s = strings.ReplaceAll(s, `\`, "/")
	}
	if strings.ContainsAny(s, "?#") {
		why = append(why, "it has a query or a fragment, which readers drop or keep as part of the name")
	}
	u, err := url.Parse(s)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		why = append(why, fmt.Sprintf("it is not a valid URI (%v)", err))
		return paths, why, true
	}
	if u.Opaque != "" {
		// file:x/y: a WHATWG parser reads /x/y, a naive reader x/y
		// where it runs, which may be the workspace.
		why = append(why, "its path is relative")
		op, err := url.PathUnescape(u.Opaque)
		if err != nil {
			op = u.Opaque
		}
		add(cleanPath("/" + op))
		add(resolvePath(op, dir, ws))
		return paths, why, true
	}
	if u.User != nil {
		why = append(why, "it has user information")
	}
	if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
		why = append(why, fmt.Sprintf("it names the host %q, which readers ignore or reach over the network", u.Host))
	}
	p := u.Path
	if p == "" {
		why = append(why, "it names no path")
		return paths, why, true
	}
	add(cleanPath(p))
	if strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		why = append(why, "its path has control characters")
		if i := strings.IndexByte(p, 0); i >= 0 {
			add(cleanPath(p[:i]))
		}
	}
	if !utf8.ValidString(p) {
		why = append(why, "its path is not valid UTF-8")
	}
	if strings.Contains(p, "%") {
		why = append(why, `its path is still percent-encoded once decoded ("%"), which a reader that decodes twice reads differently`)
		if q, err := url.PathUnescape(p); err == nil {
			add(cleanPath(q))
		}
	}
	return paths, why, true
}

// dropTabsAndNewlines removes what a WHATWG URL parser removes anywhere
// in a URI.
var dropTabsAndNewlines = strings.NewReplacer("\t", "", "\n", "", "\r", "")

// readPath records p, absolute and clean, as a path the call only reads.
func (n *normCall) readPath(p string) {
	n.addPath(p)
	mark(&n.read, p)
}

// isFileURL reports whether s has the file scheme, in any case.
func isFileURL(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	return ok && strings.EqualFold(scheme, "file")
}

// pathReadings are the paths a tool's path argument s may name: s as
// written, and for a file: URL every path a reader may take it to name
// (fileURLReadings); the call touches every reading, so a secret among
// them makes it secret.
func pathReadings(s, dir string, ws Workspace) []string {
	paths, _, _ := fileURLReadings(s, dir, ws)
	return append([]string{s}, paths...)
}

// otherResource records the secret stores a resource read of another
// scheme than file: may read. Its server maps the URI to what it reads
// its own way, often a file (repo://proj/.env, notes:///home/u/.ssh/id_rsa),
// and may decode it once or more. So every reading of the text after the
// scheme, as written and percent-decoded as far as it goes (decodeAll),
// with its authority as the first component and without it,
// with and without a query or fragment, that is secret as a file read
// (isSecret: a secret store, toolgate's own files) is a path the call
// reads. Other readings are left out, so the paths of an ordinary
// resource (test://static/resource/1) stay empty: it is not a file.
func (n *normCall) otherResource(uri string, ws Workspace) {
	_, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return
	}
	var texts []string
	for _, t := range []string{rest, decodeAll(rest)} {
		t = strings.ReplaceAll(t, `\`, "/")
		texts = append(texts, t)
		if i := strings.IndexAny(t, "?#"); i >= 0 {
			texts = append(texts, t[:i])
		}
	}
	for _, t := range texts {
		readings := []string{"/" + t}
		if auth, ok := strings.CutPrefix(t, "//"); ok {
			readings = []string{"/" + auth}
			if _, p, ok := strings.Cut(auth, "/"); ok {
				readings = append(readings, "/"+p)
			}
		}
		for _, r := range readings {
			p := cleanPath(r)
			if isSecret(p, relTo(p, ws.root(), ws.home()), ws) && !slices.Contains(n.paths, p) {
				n.readPath(p)
			}
		}
	}
}

// maxDecodes bounds how many times decodeAll decodes.
const maxDecodes = 8

// decodeAll percent-decodes s until it stays the same (at most
// maxDecodes times), as a reader that decodes repeatedly would read it;
// a % that starts no valid escape is kept, as lenient decoders keep it.
func decodeAll(s string) string {
	for range maxDecodes {
		d := decodeLenient(s)
		if d == s {
			break
		}
		s = d
	}
	return s
}

// decodeLenient decodes each valid %XX escape of s once.
func decodeLenient(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// completedArgs are the arguments a completion names for the rules: the
// value of the argument it completes, under that argument's name, and
// the other arguments the agent has filled in (context). The upstream
// completes the value as the prompt's or template's argument, so it
// names a path as that argument would; the completion's own keys (ref,
// name, uri: a URI template) name none. A context value under the
// completed argument's name is kept beside the value, in a list: the
// server may read either.
func completedArgs(args map[string]any) map[string]any {
	out := map[string]any{}
	if ctx, ok := args["context"].(map[string]any); ok {
		for k, v := range ctx {
			out[k] = v
		}
	}
	if name, ok := args["argument"].(string); ok {
		if prev, ok := out[name]; ok {
			out[name] = []any{args["value"], prev}
		} else {
			out[name] = args["value"]
		}
	}
	return out
}

// completedResource records what a completion of a resource template's
// argument reads: the template filled in with the arguments it completes
// (args, completedArgs), as the server may list what that URI names
// (file:///{+path} with home/u/.ssh/ lists /home/u/.ssh), a file: URI's
// every reading (fileURLReadings), another scheme's secret ones
// (otherResource).
func (n *normCall) completedResource(c *toolgate.Call, args map[string]any, ws Workspace) {
	tmpl, _ := c.Args["uri"].(string)
	if ref, _ := c.Args["ref"].(string); ref != "resource" || tmpl == "" {
		return
	}
	name, _ := c.Args["argument"].(string)
	values, both := args[name].([]any) // the value and the context's (completedArgs)
	if !both {
		values = []any{args[name]}
	}
	for _, v := range values {
		filled := maps.Clone(args)
		filled[name] = v
		uri := expandTemplate(tmpl, filled)
		paths, _, ok := fileURLReadings(uri, n.cwd, ws)
		if !ok {
			n.otherResource(uri, ws)
			continue
		}
		for _, p := range paths {
			n.readPath(p)
		}
	}
}

// expandTemplate fills the URI template tmpl (RFC 6570) with vars as a
// server reading it would: each expression's defined variables, with the
// operator's prefix and separators, values put in as they are (a reader
// decodes what expansion would encode), undefined ones dropped.
func expandTemplate(tmpl string, vars map[string]any) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		j := strings.IndexByte(tmpl[i+1:], '}')
		if i < 0 || j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		expr := tmpl[i+1 : i+1+j]
		tmpl = tmpl[i+2+j:]
		prefix, sep, named := "", ",", false
		if expr != "" && strings.ContainsRune("+#./;?&", rune(expr[0])) {
			switch expr[0] {
			case '#':
				prefix = "#"
			case '.':
				prefix, sep = ".", "."
			case '/':
				prefix, sep = "/", "/"
			case ';':
				prefix, sep, named = ";", ";", true
			case '?':
				prefix, sep, named = "?", "&", true
			case '&':
				prefix, sep, named = "&", "&", true
			}
			expr = expr[1:]
		}
		first := true
		for _, spec := range strings.Split(expr, ",") {
			name, _, _ := strings.Cut(strings.TrimSuffix(spec, "*"), ":")
			v, ok := vars[name].(string)
			if !ok {
				continue
			}
			if first {
				b.WriteString(prefix)
			} else {
				b.WriteString(sep)
			}
			first = false
			if named {
				b.WriteString(name + "=")
			}
			b.WriteString(v)
		}
	}
}
