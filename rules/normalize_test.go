package rules

import (
	"fmt"
	"reflect"
	"testing"
)

// TestWithWorkspaceCopiesEveryField guards WithWorkspace against a Set
// field added later and not copied: every field but the per-call pool and
// the workspace itself must be the same in the copy.
func TestWithWorkspaceCopiesEveryField(t *testing.T) {
	s := mustParse(t, "version: 1\nlabel: x\ndefault: review\ndeny_below: 0.2\nrules:\n  - name: r\n    match: 'tool.name == \"a\"'\n    action: allow\n")
	w := s.WithWorkspace(Workspace{Root: "/w", Home: "/h", Own: []string{"/h/c"}})
	sv, wv := reflect.ValueOf(s).Elem(), reflect.ValueOf(w).Elem()
	for i := 0; i < sv.NumField(); i++ {
		name := sv.Type().Field(i).Name
		if name == "acts" || name == "ws" {
			continue
		}
		if a, b := fmt.Sprintf("%v", sv.Field(i)), fmt.Sprintf("%v", wv.Field(i)); a != b {
			t.Errorf("WithWorkspace does not copy Set.%s: %s, copy %s", name, a, b)
		}
	}
	if w.Workspace().Root != "/w" || s.Workspace().Root != "" {
		t.Errorf("workspace: copy %+v, original %+v", w.Workspace(), s.Workspace())
	}
}
