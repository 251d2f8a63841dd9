package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/toolgate/toolgate"
)

// pageNames are the templates rendered inside layout.html.
var pageNames = []string{"signin", "reviews", "dashboard", "audit", "call", "rules"}

var funcs = template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"dur": func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return d.Round(time.Millisecond).String()
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"orDash": orDash,
	"list":   func(s ...string) []string { return s },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"ratio": func(f float64) string {
		if f < 0 {
			return "new"
		}
		return fmt.Sprintf("%.2fx", f)
	},
}

func (h *Handler) parseTemplates() error {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/queue.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	return nil
}

// pageData is what layout.html sees.
type pageData struct {
	Page     string
	User     string
	Auth     string
	CSRF     string
	CanAct   bool
	ReadOnly bool
	Flash    string
	Closed   string // the review the answer in Flash closed
	Data     map[string]any
}

func pageDataOf(page string, v viewer, readOnly bool, data map[string]any) pageData {
	pd := pageData{Page: page, ReadOnly: readOnly, Data: data, CanAct: v.canAct()}
	if v.s != nil {
		pd.User, pd.Auth, pd.CSRF = orShared(v.s.who.User), v.s.who.Auth, v.s.csrf
	}
	return pd
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, page string, v viewer, data map[string]any) {
	var buf bytes.Buffer
	pd := pageDataOf(page, v, h.o.ReadOnly, data)
	if v.s != nil {
		f := h.sessions.takeFlash(v.s)
		pd.Flash, pd.Closed = f.text, f.closed
	}
	if err := h.pages[page].ExecuteTemplate(&buf, "layout.html", pd); err != nil {
		h.serverError(w, "rendering "+page, err)
		return
	}
	writeHTML(w, buf.Bytes())
}

// writeHTML writes a rendered page with every rune a reader would not see
// printed (bidi controls, zero-width and other format characters,
// controls other than the page's own line breaks and tabs, invalid UTF-8)
// shown as toolgate.Visible shows it: text of the agent's, its client's or
// an upstream's cannot reorder or hide what a reviewer reads. toolgate's
// templates hold no such rune, and HTML needs none.
func writeHTML(w http.ResponseWriter, page []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	hidden := func(r rune) bool {
		return r != '\n' && r != '\t' && r != '\r' && (r == utf8.RuneError || !toolgate.Shown(r))
	}
	if bytes.IndexFunc(page, hidden) < 0 {
		_, _ = w.Write(page)
		return
	}
	var b bytes.Buffer
	for len(page) > 0 {
		r, n := utf8.DecodeRune(page)
		if hidden(r) {
			b.WriteString(toolgate.Visible(string(page[:n])))
		} else {
			b.Write(page[:n])
		}
		page = page[n:]
	}
	_, _ = b.WriteTo(w)
}

// renderFragment renders one named template of the reviews page alone
// (the live queue's script fetches it).
func (h *Handler) renderFragment(w http.ResponseWriter, name string, v viewer, data map[string]any) {
	var buf bytes.Buffer
	pd := pageDataOf("reviews", v, h.o.ReadOnly, data)
	if err := h.pages["reviews"].ExecuteTemplate(&buf, name, pd); err != nil {
		h.serverError(w, "rendering "+name, err)
		return
	}
	writeHTML(w, buf.Bytes())
}
