package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/lookalike"
)

// auditPageLimit is how many of the newest matching calls the audit
// browser lists (`audit list --limit`'s default).
const auditPageLimit = 100

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, v viewer) {
	q := queryOf(r.URL.Query())
	f, err := q.filter(h.o.Now())
	data := map[string]any{"Q": q}
	if err != nil {
		data["Error"] = err.Error()
		h.render(w, r, "audit", v, data)
		return
	}
	f.Limit = auditPageLimit
	recs, err := h.o.Store.List(r.Context(), f)
	if err != nil {
		h.serverError(w, "listing calls", err)
		return
	}
	// Newest first, as people read a log.
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	data["Records"], data["Limit"] = recs, auditPageLimit
	h.render(w, r, "audit", v, data)
}

func (h *Handler) callPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id := r.PathValue("id")
	rec, err := h.o.Store.Get(r.Context(), id)
	if errors.Is(err, audit.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.serverError(w, "reading call", err)
		return
	}
	c, _ := rec.Call() // arguments that do not decode stay nil; the rest is checked for look-alikes
	pretty, meta := h.redactedJSON(rec.Args), ""
	if len(rec.Meta) > 0 {
		meta = h.redactedJSON(rec.Meta)
	}
	grants, err := h.o.Store.GrantsOf(r.Context(), id)
	if err != nil {
		h.serverError(w, "reading grants", err)
		return
	}
	chain, length, err := h.o.Store.ChainOf(r.Context(), id)
	if err != nil {
		h.serverError(w, "reading the chain", err)
		return
	}
	rep, at, verr := h.verifyStatus(r.Context())
	data := map[string]any{
		"R": rec, "Args": pretty, "Meta": meta, "Lookalikes": lookalike.InCall(c, rec.Decision(), h.o.Redactor), "Grants": grants, "Chain": chain, "ChainLen": length,
		"VerifyOK": verr == nil && rep.OK(), "VerifyAt": at, "Verify": rep,
	}
	if verr != nil {
		data["VerifyErr"] = verr.Error()
	}
	var mine []audit.Problem
	for _, p := range rep.Problems {
		if p.CallID == id {
			mine = append(mine, p)
		}
	}
	data["Problems"] = mine
	h.render(w, r, "call", v, data)
}

func (h *Handler) rulesPage(w http.ResponseWriter, r *http.Request, v viewer) {
	vs, err := h.o.Store.RuleVersions(r.Context())
	if err != nil {
		h.serverError(w, "listing rule versions", err)
		return
	}
	h.render(w, r, "rules", v, map[string]any{"Versions": vs})
}

// redactedJSON is the stored JSON raw (a call's arguments or _meta)
// redacted again and indented, for a page.
func (h *Handler) redactedJSON(raw json.RawMessage) string {
	var v any
	_ = json.Unmarshal(raw, &v)
	return h.pageJSON(v)
}

// pageJSON is v redacted and indented, with <, > and & written as they
// are (the page's template escapes them): a reviewer would read \u003e
// for a shell's redirect.
func (h *Handler) pageJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h.o.Redactor.Value(v))
	return strings.TrimSuffix(b.String(), "\n")
}
