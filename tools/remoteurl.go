package tools

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/toolgate/toolgate/redact"
)

// redactedValue replaces each query value of a remote upstream's URL in
// what the MCP transport sees.
const redactedValue = "REDACTED"

// remoteURL is a remote upstream's configured URL split in two. The MCP
// transport is given only public: no userinfo, each query value
// redactedValue. Its errors (net/http's *url.Error quotes the request URL,
// and strips only a password) and its logs can then never hold a
// credential from the URL, whatever path they take to the agent, the
// audit log or stderr. The upstream's HTTP client swaps real back in for a
// request to exactly public (roundTripper), so the server still gets the
// configured URL.
type remoteURL struct {
	raw    string
	real   *url.URL
	public string
	// hidden are the texts scrub hides wherever they appear (a redirect's
	// URL repeats the query): the upstream's configured header values, the
	// URL's query values and userinfo, and the path segments that hold a
	// token (.../mcp/sk-.../sse), which public keeps.
	hidden []string
}

// minHeaderValue is the shortest value scrub hides: shorter ones ("1",
// "yes") are no credential, and hiding them would garble the text.
const minHeaderValue = 8

// newRemoteURL splits raw; headers are the upstream's configured ones.
// Its error does not quote raw: url.Parse's does.
func newRemoteURL(raw string, headers map[string]string) (remoteURL, error) {
	real, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return remoteURL{}, fmt.Errorf("invalid URL: %w", err)
	}
	pub := *real
	pub.User = nil
	if real.RawQuery != "" {
		// A parameter without a value ("?s3cr3t") may be the credential
		// itself: its name is hidden too.
		q := url.Values{}
		for k, vs := range real.Query() {
			if strings.Join(vs, "") == "" {
				k = redactedValue
			}
			for range vs {
				q.Add(k, redactedValue)
			}
		}
		pub.RawQuery = q.Encode()
	}
	pub.ForceQuery = false
	public := pub.String()
	// The transport parses public and prints it again for each request:
	// compare with that form.
	if p, err := url.Parse(public); err == nil {
		public = p.String()
	}
	var hidden []string
	hide := func(v string) {
		if len(v) >= minHeaderValue {
			hidden = append(hidden, v)
		}
	}
	for _, v := range headers {
		for _, s := range headerSecrets(v) {
			hide(s)
		}
	}
	// Each value as written and as decoded either way (a "+" is a space to
	// a query, a "+" to a path), and a valueless parameter's name: an
	// error quotes a URL as its client wrote it (a redirect's, say).
	for pair := range strings.SplitSeq(real.RawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if v == "" {
			v = k
		}
		hide(v)
		if d, err := url.QueryUnescape(v); err == nil {
			hide(d)
		}
		if d, err := url.PathUnescape(v); err == nil {
			hide(d)
		}
	}
	if real.User != nil {
		pw, _ := real.User.Password()
		hide(pw)
		hide(real.User.Username())
	}
	tokens := redact.New(nil)
	for seg := range strings.SplitSeq(real.Path, "/") {
		if tokens.String(seg) != seg {
			hide(seg)
		}
	}
	return remoteURL{raw: raw, real: real, public: public, hidden: hidden}, nil
}

// secret reports whether the URL holds anything public hides.
func (r remoteURL) secret() bool { return r.real.User != nil || r.real.RawQuery != "" }

// roundTripper sends a request for public to the real URL, with the
// userinfo as basic auth when the request has no Authorization (what
// http.Client does for a URL with userinfo). Other requests (an SSE
// server's message endpoint, a redirect) go as they are: they did not
// carry the URL's query before either.
func (r remoteURL) roundTripper(next http.RoundTripper) http.RoundTripper {
	if !r.secret() {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.String() != r.public {
			return next.RoundTrip(req)
		}
		out := req.Clone(req.Context())
		u := *r.real
		out.URL = &u
		if r.real.User != nil && out.Header.Get("Authorization") == "" {
			pw, _ := r.real.User.Password()
			out.SetBasicAuth(r.real.User.Username(), pw)
		}
		resp, err := next.RoundTrip(out)
		if resp != nil {
			resp.Request = req // callers see the request they made, with public
		}
		return resp, r.scrub(err)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// scrub is err with the configured URL, in any form it is printed in,
// replaced by public, and the header values by redactedValue: a last
// guard for text that reached them some other way (a server echoing its
// request). It keeps err's chain for errors.Is and errors.As.
func (r remoteURL) scrub(err error) error {
	if err == nil {
		return err
	}
	msg := err.Error()
	out := msg
	if r.secret() {
		for _, s := range []string{r.raw, r.real.String(), r.real.Redacted()} {
			out = strings.ReplaceAll(out, s, r.public)
		}
	}
	for _, v := range r.hidden {
		out = strings.ReplaceAll(out, v, redactedValue)
	}
	if out == msg {
		return err
	}
	return &scrubbedError{msg: out, err: err}
}

// scrubbedError is an error whose text had a secret replaced; it unwraps
// to the original, which must not be printed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
