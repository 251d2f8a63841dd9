package toolgatetest

import "strings"

// OutsideMarkdownCode is text without its fenced code blocks (between
// lines of exactly three backticks) and inline code spans (CommonMark's:
// a run of backticks ends at the next run of the same length on its
// line): what a client that renders text as markdown reads as markdown.
// An unclosed block is reported in what it returns.
func OutsideMarkdownCode(text string) string {
	var out strings.Builder
	inBlock := false
	for _, l := range strings.Split(text, "\n") {
		if l == "```" {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			continue
		}
		for l != "" {
			i := strings.IndexByte(l, '`')
			if i < 0 {
				out.WriteString(l)
				break
			}
			out.WriteString(l[:i])
			n := backticks(l[i:])
			rest := l[i+n:]
			end := -1
			for j := 0; j < len(rest); {
				k := strings.IndexByte(rest[j:], '`')
				if k < 0 {
					break
				}
				if m := backticks(rest[j+k:]); m != n {
					j += k + m
					continue
				}
				end = j + k
				break
			}
			if end < 0 {
				out.WriteString(l[i:])
				break
			}
			l = rest[end+n:]
		}
		out.WriteString("\n")
	}
	if inBlock {
		out.WriteString("(an unclosed block)")
	}
	return out.String()
}

// backticks is the length of the run of backticks s starts with.
func backticks(s string) int {
	return len(s) - len(strings.TrimLeft(s, "`"))
}
