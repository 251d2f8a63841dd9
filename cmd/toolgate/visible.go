package main

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/toolgate/toolgate"
)

// visibleCells joins cols into one tab-separated row for a tabwriter,
// each made visible: a column can neither end its cell nor its line.
func visibleCells(cols ...string) string {
	for i, c := range cols {
		cols[i] = toolgate.Visible(c)
	}
	return strings.Join(cols, "\t")
}

// visibleJSON indents the JSON document raw (each line after the first
// starting with prefix) and makes each line visible: the line breaks are
// the indentation's own, since JSON holds none in its strings. raw that
// is not valid JSON is shown on one line, made visible whole.
func visibleJSON(raw []byte, prefix string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return toolgate.Visible(string(raw))
	}
	// Visible escapes every line break in a line, so the ones left are
	// the indentation's.
	return strings.ReplaceAll(toolgate.VisibleLines(b.String()), "\n", "\n"+prefix)
}
