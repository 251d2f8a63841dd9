package review

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/lookalike"
	"github.com/toolgate/toolgate/redact"
)

// Sizes of what the review message shows. A section's text may hold 3000
// characters; a message, 50 blocks.
const (
	// argsPreviewLimit is how many bytes of argument values the inline
	// preview shows, shared among the top-level keys.
	argsPreviewLimit = 1500
	// argsPreviewMinPerKey is the least a key's value gets.
	argsPreviewMinPerKey = 48
	// sectionLimit is what a section's text is cut to after escaping.
	sectionLimit = 2900
	// fullArgsChunk is the most arguments text one block of the thread
	// reply holds, and fullArgsMaxBlocks the most blocks it has.
	fullArgsChunk     = 2800
	fullArgsMaxBlocks = 45
)

// fallbackText is the notification text; names are escaped so a tool
// called "<!channel>" cannot ping anyone.
func (sc *slackChannel) fallbackText(c toolgate.Call, v *toolgate.Verdict) string {
	r := sc.s.o.Redactor
	name, id := code(truncate(r.String(c.Name), 200)), escape(truncate(c.ID, 100))
	if v == nil {
		return fmt.Sprintf("toolgate: review requested for %s (decision %s)", name, id)
	}
	return fmt.Sprintf("toolgate: %s %s (decision %s)", name, outcomeWord(*v), id)
}

func outcomeWord(v toolgate.Verdict) string {
	switch {
	case v.Approved:
		return "approved"
	case v.Channel == toolgate.ChannelTimeout || v.Channel == toolgate.ChannelExpired:
		return "expired"
	case v.Channel == toolgate.ChannelCancelled:
		return "cancelled"
	default:
		return "denied"
	}
}

// mrkdwn is a text object of Slack markup, verbatim: Slack links no bare
// URL or channel name and parses no mention in it, so only what toolgate
// marks up is markup.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// reviewBlocks builds the message: a header, the call's details and who
// asks, the redacted arguments (each top-level key's value cut to its
// share), who may answer and where the call is in the audit log, and
// either the buttons (v == nil; Deny asks for its reason in a form, see
// openDenyForm) or the outcome. Every text from the call, the rule or a
// reviewer goes through the Redactor.
func (sc *slackChannel) reviewBlocks(c toolgate.Call, d toolgate.Decision, expires time.Time, v *toolgate.Verdict) []slack.Block {
	r := sc.s.o.Redactor
	txt := func(s string) string { return escape(r.String(s)) }

	title := "Review requested: " + c.Name
	if v != nil {
		title = strings.ToUpper(outcomeWord(*v)[:1]) + outcomeWord(*v)[1:] + ": " + c.Name
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain(truncate(r.String(title), 145)))}
	blocks = append(blocks, lookalikeBlocks(c, d, r)...)

	summary := fmt.Sprintf("An agent wants to run %s (%s on server %s).", code(r.String(c.Name)), code(r.String(c.Tool)), code(r.String(c.Server)))
	if c.Kind != "" && c.Kind != toolgate.KindTool {
		summary = "An agent wants to " + code(r.String(c.Wants())) + "."
	}
	if d.Rule != "" {
		summary += "\n*Rule:* " + code(d.Rule)
	}
	if d.Reason != "" {
		summary += " — " + code(r.String(d.Reason))
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(summary, sectionLimit)), nil, nil))

	conf := "unknown"
	if c.Confidence != nil {
		conf = strconv.FormatFloat(*c.Confidence, 'f', 2, 64)
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Client:*\n" + orDash(code(truncate(r.String(peer(c.Client)), 200)))),
		mrkdwn("*Model:*\n" + orDash(code(truncate(r.String(peer(c.Model)), 200)))),
		mrkdwn("*Session:*\n" + sessionText(c.SessionID)),
	}
	if p := c.Principal.String(); p != "" {
		fields = append(fields, mrkdwn("*Requested by:*\n"+truncate(txt(p), 500)))
	}
	if sc.o.Requester != "" {
		fields = append(fields, mrkdwn("*Requester:*\n"+truncate(txt(sc.o.Requester), 500)))
	}
	fields = append(fields,
		mrkdwn("*Confidence:*\n"+conf),
		mrkdwn("*Runs in:*\n"+escape(sandboxText(d.Sandbox))),
		mrkdwn("*Decision ID:*\n`"+truncate(txt(c.ID), 100)+"`"))
	if !expires.IsZero() {
		fields = append(fields, mrkdwn("*Expires:*\n"+slackDate(expires)))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	blocks = append(blocks, jsonSection("*Arguments:*", r.Value(c.Args)))
	if len(c.Meta) > 0 {
		blocks = append(blocks, jsonSection("*`_meta`* (sent to the tool's server with the arguments):", r.Value(c.Meta)))
	}
	blocks = append(blocks, slack.NewContextBlock("toolgate_about",
		mrkdwn(truncate("*May answer:* "+sc.answerers(), 1900)),
		mrkdwn("*Audit:* `toolgate audit show "+escape(truncate(c.ID, 100))+"` on toolgate's host")))

	if v == nil {
		buttons := []slack.BlockElement{slack.NewButtonBlockElement(ActionApprove, c.ID, plain("Approve once")).WithStyle(slack.StylePrimary)}
		if d.SessionGrant > 0 {
			buttons = append(buttons, slack.NewButtonBlockElement(ActionApproveSession, fmt.Sprintf("%s|%d", c.ID, int(d.SessionGrant.Seconds())),
				plain(truncate("Approve "+c.Tool+" for this session ("+d.SessionGrant.String()+")", 75))))
		}
		buttons = append(buttons,
			slack.NewButtonBlockElement(ActionDeny, c.ID, plain("Deny")).WithStyle(slack.StyleDanger),
			slack.NewButtonBlockElement(ActionViewArgs, c.ID, plain("View full arguments")))
		blocks = append(blocks, slack.NewActionBlock(blockActionsPrefix+c.ID, buttons...))
		return blocks
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(sc.outcomeText(*v)), nil, nil))
	return blocks
}

// answerers lists who may answer as Slack mentions: the approvers, then
// the approver groups. IDs that are not plain Slack IDs are shown as code,
// never as markup.
func (sc *slackChannel) answerers() string {
	var who []string
	for _, u := range sc.o.Approvers {
		who = append(who, mention("@", u))
	}
	for _, g := range sc.o.ApproverGroups {
		who = append(who, mention("!subteam^", g))
	}
	return strings.Join(who, ", ")
}

func mention(kind, id string) string {
	if id == "" || strings.ContainsFunc(id, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < '0' || r > '9') }) {
		return "`" + escape(truncate(id, 40)) + "`"
	}
	return "<" + kind + id + ">"
}

// sessionText names the agent's MCP session without showing its ID (which
// can let whoever holds it use the session): "stdio", or a short hash that
// tells sessions apart.
func sessionText(id string) string {
	switch id {
	case "":
		return "—"
	case "stdio":
		return "stdio"
	}
	h := sha256.Sum256([]byte(id))
	return "`#" + hex.EncodeToString(h[:4]) + "`"
}

// outcomeText is the line that replaces the buttons once a review ends.
func (sc *slackChannel) outcomeText(v toolgate.Verdict) string {
	who := v.Reviewer
	if v.Channel == toolgate.ChannelSlack && who != "" {
		who = mention("@", who)
	} else if who != "" {
		who = "`" + escape(who) + "`"
	}
	when := "at " + slackDate(v.DecidedAt)
	var s string
	switch {
	case v.Approved:
		s = fmt.Sprintf(":white_check_mark: *Approved* by %s via %s %s", orDash(who), v.Channel, when)
	case v.Channel == toolgate.ChannelTimeout:
		s = ":hourglass: *Expired*: nobody answered in time; the call was denied " + when
	case v.Channel == toolgate.ChannelExpired:
		s = ":hourglass: *Expired (toolgate restarted)*: the call was denied " + when
	case v.Channel == toolgate.ChannelCancelled:
		s = ":no_entry_sign: *Cancelled*: the agent stopped waiting; the call was denied " + when
	case who != "":
		s = fmt.Sprintf(":x: *Denied* by %s via %s %s", who, v.Channel, when)
	default:
		s = fmt.Sprintf(":x: *Denied* (%s) %s", v.Channel, when)
	}
	if v.Reason != "" && v.Channel != toolgate.ChannelExpired {
		s += "\n*Reason:* " + escape(truncate(sc.s.o.Redactor.String(v.Reason), 500))
	}
	return s
}

func plainOutcome(v toolgate.Verdict) string {
	s := outcomeWord(v)
	if v.Reviewer != "" {
		who := v.Reviewer
		if v.Channel == toolgate.ChannelSlack {
			who = mention("@", who)
		}
		s += " by " + who
	}
	return s + " via " + v.Channel
}

func peer(p toolgate.Peer) string {
	if p.Version == "" {
		return p.Name
	}
	return p.Name + " " + p.Version
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// slackDate renders t in each reader's time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.UTC().Format(time.RFC3339))
}

// escape makes s safe inside Slack mrkdwn: Visible (no line break or
// bidi control of the agent's can add or reorder lines), then mrkdwn's
// specials.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "```", "`\u200b``").Replace(toolgate.Visible(s))
}

// code shows s, text an agent or an upstream chose, as an inline code
// span ("" for ""): Slack applies no formatting, emoji or link inside one,
// so the text cannot bold, strike, badge or link itself (*APPROVED*,
// :white_check_mark:), and its backquotes, which would end the span, are
// shown as ˋ. Otherwise as escape.
func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(escape(s), "`", "ˋ") + "`"
}

// codeEscape makes s safe inside a ``` block however it is cut: a zero
// width space after every backquote means no cut can form a closing fence.
var codeEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "`\u200b").Replace

// jsonSection is a section showing v (arguments or _meta, already
// redacted) under heading: argsPreviewPlain in a ``` block, cut to fit.
func jsonSection(heading string, v any) slack.Block {
	code := cutLines(codeEscape(argsPreviewPlain(v)), sectionLimit-len(heading)-len("\n``````"))
	return slack.NewSectionBlock(mrkdwn(heading+"\n```"+code+"```"), nil, nil)
}

// argsPreviewPlain renders args (already redacted) for a reviewer: an
// object one top-level key a line, each value's JSON cut to its share of
// argsPreviewLimit so that every key stays visible; anything else as
// indented JSON cut at argsPreviewLimit. What JSON leaves as it is and a
// reader would not see (bidi controls, invisible characters) is made
// Visible; nothing is HTML-escaped.
func argsPreviewPlain(args any) string {
	s, _ := argsPreview(args)
	return s
}

// argsPreview is argsPreviewPlain, and whether it cut a value.
func argsPreview(args any) (preview string, cut bool) {
	m, ok := args.(map[string]any)
	if !ok {
		s, err := jsonText(args, true)
		if err != nil {
			return "(arguments could not be shown)", false
		}
		s = toolgate.VisibleLines(s)
		if len(s) > argsPreviewLimit {
			return truncate(s, argsPreviewLimit) + fmt.Sprintf("\n… (%d bytes in all)", len(s)), true
		}
		return s, false
	}
	if len(m) == 0 {
		return "{}", false
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	per := max(argsPreviewLimit/len(keys), argsPreviewMinPerKey)
	var b strings.Builder
	b.WriteString("{\n")
	for i, k := range keys {
		kj, _ := jsonText(truncate(k, 100), false)
		if len(k) > 100 {
			// Two long keys may differ past what is shown.
			kj += fmt.Sprintf(" (key of %d bytes)", len(k))
			cut = true
		}
		vj, err := jsonText(m[k], false)
		if err != nil {
			vj = "(could not be shown)"
		}
		if len(vj) > per {
			vj = truncate(vj, per) + fmt.Sprintf(" (%d bytes in all)", len(vj))
			cut = true
		}
		b.WriteString("  " + toolgate.Visible(kj) + ": " + toolgate.Visible(vj))
		if i < len(keys)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	return b.String(), cut
}

// jsonText encodes v as JSON without escaping <, > and & (a reviewer
// would read \u0026), indented or on one line.
func jsonText(v any, indent bool) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// cutLines cuts s to at most n bytes at a line end, saying how many lines
// were left out; a first line longer than n is cut within.
func cutLines(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const note = "\n… (%d more lines: View full arguments)"
	budget := n - len(note) - 8
	cut := strings.LastIndexByte(s[:max(budget, 0)], '\n')
	if cut <= 0 {
		return truncate(s, max(budget, 0))
	}
	return s[:cut] + fmt.Sprintf(note, strings.Count(s[cut:], "\n"))
}

// lookalikeBlocks warns of the look-alike characters in what the review
// shows of the call (lookalike.InCall); none when there are none.
func lookalikeBlocks(c toolgate.Call, d toolgate.Decision, r *redact.Redactor) []slack.Block {
	w := lookalike.InCall(c, d, r)
	if w == "" {
		return nil
	}
	return []slack.Block{slack.NewSectionBlock(mrkdwn(truncate(":warning: *Look-alike characters:* "+code(w), sectionLimit)), nil, nil)}
}

// fullArgsBlocks renders args and the call's _meta (both already
// redacted; meta nil for none) in full, as indented JSON, each line
// Visible, in ``` blocks of at most fullArgsChunk bytes each, for the
// thread reply of "View full arguments".
func fullArgsBlocks(args, meta any) []slack.Block {
	s, err := jsonText(args, true)
	if err != nil {
		s = "(arguments could not be shown)"
	}
	if meta != nil {
		m, err := jsonText(meta, true)
		if err != nil {
			m = "(could not be shown)"
		}
		s += "\n\n_meta (sent to the tool's server with the arguments):\n" + m
	}
	s = toolgate.VisibleLines(s)
	var blocks []slack.Block
	for len(s) > 0 && len(blocks) < fullArgsMaxBlocks {
		var chunk string
		chunk, s = codeChunk(s, fullArgsChunk-6)
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("```"+chunk+"```"), nil, nil))
	}
	if len(s) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("… %d more bytes not shown; see `toolgate audit show`.", len(s)))))
	}
	return blocks
}

// codeChunk takes from s the longest prefix whose codeEscape fits n bytes,
// ending at a line end when one is in its second half, and returns it
// escaped with the rest of s.
func codeChunk(s string, n int) (chunk, rest string) {
	size, end, lastNL := 0, 0, -1
	for end < len(s) {
		_, w := utf8.DecodeRuneInString(s[end:])
		add := len(codeEscape(s[end : end+w]))
		if size+add > n {
			break
		}
		size += add
		end += w
		if s[end-1] == '\n' {
			lastNL = end
		}
	}
	if end < len(s) && lastNL > end/2 {
		end = lastNL
	}
	return codeEscape(strings.TrimSuffix(s[:end], "\n")), s[end:]
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
