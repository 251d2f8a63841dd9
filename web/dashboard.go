package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
)

// defaultWindow is the dashboard's window when the query names none (the
// drift test needs a lower bound).
const defaultWindow = "7d"

// query is a page's filter, as the forms send it; the names are the
// flags of `toolgate audit list` and `audit stats`.
type query struct {
	Since, Until, Tool, Server, Action, Client, Model, Rule, User, Bucket string
}

func queryOf(v url.Values) query {
	return query{
		Since: v.Get("since"), Until: v.Get("until"), Tool: v.Get("tool"), Server: v.Get("server"),
		Action: v.Get("action"), Client: v.Get("client"), Model: v.Get("model"), Rule: v.Get("rule"),
		User: v.Get("user"), Bucket: v.Get("bucket"),
	}
}

// filter turns q into the audit filter, as `audit` parses its flags.
func (q query) filter(now time.Time) (audit.Filter, error) {
	f := audit.Filter{Tool: q.Tool, Server: q.Server, Action: q.Action, Client: q.Client, Model: q.Model, Rule: q.Rule, User: q.User}
	var err error
	if f.Since, err = audit.ParseWhen(q.Since, now); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = audit.ParseWhen(q.Until, now); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	switch toolgate.Action(f.Action) {
	case "", toolgate.Allow, toolgate.Deny, toolgate.Review:
	default:
		return f, fmt.Errorf("action must be allow, deny or review")
	}
	return f, nil
}

// report computes the dashboard's numbers: audit.Store.Report, the
// function `toolgate audit stats --output json` prints.
func (h *Handler) report(r *http.Request) (audit.Report, query, error) {
	vals := r.URL.Query()
	if !vals.Has("since") {
		vals.Set("since", defaultWindow)
	}
	q := queryOf(vals)
	now := h.o.Now()
	f, err := q.filter(now)
	if err != nil {
		return audit.Report{}, q, err
	}
	b, err := audit.ParseBucket(q.Bucket)
	if err != nil {
		return audit.Report{}, q, fmt.Errorf("bucket: %w", err)
	}
	rep, err := h.o.Store.Report(r.Context(), f, b, now)
	return rep, q, err
}

func (h *Handler) statsJSON(w http.ResponseWriter, r *http.Request, _ viewer) {
	rep, _, err := h.report(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

func (h *Handler) dashboardPage(w http.ResponseWriter, r *http.Request, v viewer) {
	rep, q, err := h.report(r)
	data := map[string]any{"Q": q, "Report": rep, "Query": r.URL.RawQuery}
	if err != nil {
		data["Error"] = err.Error()
	}
	h.render(w, r, "dashboard", v, data)
}
