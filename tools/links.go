package tools

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// maxLinks bounds how many resource-link URIs one upstream remembers; past
// it the oldest half is forgotten.
const maxLinks = 4096

// linkSet is the URIs of the resources an upstream's tool results linked
// to or embedded (resource_link, resource): a tool may hand out a URI that
// no list shows (a session resource it just made), and the agent's read of
// it must reach that upstream.
type linkSet struct {
	mu    sync.Mutex
	uris  map[string]uint64 // URI -> when noted (seq)
	seq   uint64
	total int
}

func (l *linkSet) add(uri string) {
	if uri == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.uris == nil {
		l.uris = map[string]uint64{}
	}
	l.seq++
	l.uris[uri] = l.seq
	if len(l.uris) > maxLinks {
		cut := l.seq - maxLinks/2
		for u, s := range l.uris {
			if s <= cut {
				delete(l.uris, u)
			}
		}
	}
}

func (l *linkSet) has(uri string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.uris[uri]
	return ok
}

// noteLinks remembers the resource URIs in a tool result. A result passed
// on undecoded is only decoded (its content's types and URIs) when its
// bytes mention a resource at all.
func (u *upstream) noteLinks(r Result) {
	if r.Decoded != nil {
		for _, ct := range r.Decoded.Content {
			switch c := ct.(type) {
			case mcp.ResourceLink:
				u.links.add(c.URI)
			case mcp.EmbeddedResource:
				switch rc := c.Resource.(type) {
				case mcp.TextResourceContents:
					u.links.add(rc.URI)
				case mcp.BlobResourceContents:
					u.links.add(rc.URI)
				}
			}
		}
		return
	}
	if !bytes.Contains(r.Raw, []byte(`"resource`)) {
		return
	}
	var res struct {
		Content []struct {
			Type     string `json:"type"`
			URI      string `json:"uri"`
			Resource struct {
				URI string `json:"uri"`
			} `json:"resource"`
		} `json:"content"`
	}
	if json.Unmarshal(r.Raw, &res) != nil {
		return
	}
	for _, c := range res.Content {
		switch c.Type {
		case "resource_link":
			u.links.add(c.URI)
		case "resource":
			u.links.add(c.Resource.URI)
		}
	}
}
