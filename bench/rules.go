package bench

import (
	"fmt"
	"strings"
)

// HundredRules returns the 100-rule set the benchmarks and the operations
// tests use: the test upstream's echo call is allowed only by the last rule,
// after 50 deny rules limited to other tool names (skipped by the tool-name
// index) and 49 that any tool may match (path globs, shell-ish argument
// regexes, confidence checks), all evaluated on every call. label names the
// set in the audit log.
func HundredRules(label string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nlabel: %s\ndefault: review\non_error: deny\nrules:\n", label)
	for i := range 50 {
		fmt.Fprintf(&b, "  - name: other-tool-%d\n    match: 'tool.name == \"tool_%d\" && glob(args.?path.orValue(\"\"), \"**/secret%d/**\")'\n    action: deny\n", i, i, i)
	}
	for i := range 49 {
		var m string
		switch i % 3 {
		case 0:
			m = fmt.Sprintf(`glob(args.?path.orValue(""), "**/private%d/**")`, i)
		case 1:
			m = fmt.Sprintf(`args.?command.orValue("").matches("^rm -rf /data%d")`, i)
		default:
			m = fmt.Sprintf(`tool.server == "svc%d" && confidence.orValue(1.0) < 0.5`, i)
		}
		fmt.Fprintf(&b, "  - name: any-tool-%d\n    match: '%s'\n    action: deny\n", i, m)
	}
	b.WriteString("  - name: allow-echo\n    match: 'tool.name == \"echo\"'\n    action: allow\n")
	return b.String()
}
