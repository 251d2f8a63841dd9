package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/toolgate/toolgate"
)

// PinMode is how a tool seen for the first time is treated.
type PinMode string

// The pinning modes (config pinning.mode).
const (
	// PinTOFU pins a new tool's definition at first sight (trust on first
	// use): only later changes are quarantined.
	PinTOFU PinMode = "tofu"
	// PinStrict quarantines new tools too, until an admin approves them.
	PinStrict PinMode = "strict"
)

// ByTOFU is the ApprovedBy of a pin made at first sight in mode tofu.
const ByTOFU = "toolgate (trust on first use)"

// ToolPin is one upstream declaration's pin (a tool's, prompt's,
// resource's or resource template's): the definition approved (at first
// sight, or by an admin) and the definition seen last.
type ToolPin struct {
	// Kind is toolgate.KindTool, KindPrompt, KindResource or
	// KindResourceTemplate.
	Kind   string `json:"kind"`
	Server string `json:"server"`
	// Tool identifies the declaration on its server (toolgate.ToolDef.Tool):
	// a tool's or prompt's name, a resource's URI, a template's URI
	// template.
	Tool string `json:"tool"`
	// Name is the exposed name the tool was last seen under.
	Name string `json:"name"`
	// PinnedHash is the approved definition's hash; "" if none ever was.
	PinnedHash string          `json:"pinned_hash,omitempty"`
	PinnedDef  json.RawMessage `json:"pinned_definition,omitempty"`
	// SeenHash is the definition's hash when the tool was last listed, and
	// SeenAt when that definition was first seen.
	SeenHash   string            `json:"seen_hash"`
	SeenDef    json.RawMessage   `json:"seen_definition"`
	SeenAt     time.Time         `json:"seen_at"`
	FirstSeen  time.Time         `json:"first_seen"`
	ApprovedAt *time.Time        `json:"approved_at,omitempty"`
	ApprovedBy string            `json:"approved_by,omitempty"`
	State      toolgate.PinState `json:"state"`
}

// state is the pin's state as seen last.
func (p *ToolPin) state() toolgate.PinState {
	switch {
	case p.PinnedHash == "":
		return toolgate.PinPending
	case p.PinnedHash != p.SeenHash:
		return toolgate.PinChanged
	}
	return toolgate.PinPinned
}

// pin is p as the catalog wants it.
func (p *ToolPin) pin() toolgate.Pin {
	out := toolgate.Pin{State: p.state()}
	if p.ApprovedAt != nil {
		out.ApprovedAt = *p.ApprovedAt
	}
	return out
}

// pinEvent is the chained record of a pin's change: a definition seen
// (first, or different from the one seen before) or approved. Its call_id
// is pinEventID, never a call's: Verify checks it in the chain but
// reconciles no calls row with it.
type pinEvent struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	At     int64  `json:"at"`
	Server string `json:"server"`
	Tool   string `json:"tool"`
	Name   string `json:"name"`
	// Hash is the definition seen, or approved.
	Hash string `json:"hash"`
	// Pinned is the approved hash after the event ("" if none).
	Pinned string `json:"pinned_hash"`
	// By is who approved (kindPinApprove, or ByTOFU on a first sight).
	By string `json:"by,omitempty"`
}

// A pin's events are of kind KIND_seen or KIND_approve, KIND its pin's
// kind (tool_seen, prompt_approve, resource_template_seen, ...).
const (
	pinSeen        = "_seen"
	pinApprove     = "_approve"
	kindPinSeen    = toolgate.KindTool + pinSeen
	kindPinApprove = toolgate.KindTool + pinApprove
)

// pinKinds are the kinds of declaration pinned.
var pinKinds = []string{toolgate.KindTool, toolgate.KindPrompt, toolgate.KindResource, toolgate.KindResourceTemplate, toolgate.KindInstructions}

// standaloneKinds are the event kinds not about a call: Verify checks
// them in the chain but looks for no calls row.
var standaloneKinds = func() map[string]bool {
	m := map[string]bool{kindArchiveCut: true}
	for _, k := range pinKinds {
		m[k+pinSeen], m[k+pinApprove] = true, true
	}
	return m
}()

// pinEventID is the call_id of a pin's events: "KIND:SERVER/TOOL". No
// call's id has a colon (they are ULIDs), and the kind prefix keeps a
// prompt's events apart from a tool's of the same server and name.
func pinEventID(kind, server, tool string) string { return kind + ":" + server + "/" + tool }

// appendPinEvent chains p's event of kind what (pinSeen or pinApprove);
// by is who approved ("" for a definition seen, unless trust on first use
// pinned it).
func (w *wtx) appendPinEvent(what string, at time.Time, p *ToolPin, hash, by string) error {
	kind, id := p.Kind+what, pinEventID(p.Kind, p.Server, p.Tool)
	body, err := json.Marshal(pinEvent{Kind: kind, ID: id, At: at.UnixNano(),
		Server: p.Server, Tool: p.Tool, Name: p.Name, Hash: hash, Pinned: p.PinnedHash, By: by})
	if err != nil {
		return fmt.Errorf("audit: encode %s event: %w", kind, err)
	}
	return w.appendBody(id, kind, at.UnixNano(), body)
}

const pinCols = `kind, server, tool, name, pinned_hash, pinned_def, seen_hash, seen_def, seen_at, first_seen, approved_at, approved_by`

func scanPin(sc scanner) (*ToolPin, error) {
	var (
		p                  ToolPin
		pinnedDef, seenDef string
		seenAt, first      int64
		approvedAt         sql.NullInt64
	)
	if err := sc.Scan(&p.Kind, &p.Server, &p.Tool, &p.Name, &p.PinnedHash, &pinnedDef, &p.SeenHash, &seenDef, &seenAt, &first,
		&approvedAt, &p.ApprovedBy); err != nil {
		return nil, err
	}
	if pinnedDef != "" {
		p.PinnedDef = json.RawMessage(pinnedDef)
	}
	p.SeenDef = json.RawMessage(seenDef)
	p.SeenAt, p.FirstSeen = time.Unix(0, seenAt).UTC(), time.Unix(0, first).UTC()
	if approvedAt.Valid {
		t := time.Unix(0, approvedAt.Int64).UTC()
		p.ApprovedAt = &t
	}
	p.State = p.state()
	return &p, nil
}

// ObservePin records that declaration t (a tool, prompt, resource or
// resource template) was listed with its definition, and returns its pin:
// one seen for the first time is inserted, pinned at once in mode
// PinTOFU, pending approval in PinStrict; a definition other than the one
// seen last is recorded as seen. Each of those is chained in the audit
// log. Seeing the same definition again writes nothing.
func (s *Store) ObservePin(ctx context.Context, t toolgate.ToolDef, mode PinMode) (*ToolPin, error) {
	kind := t.KindName()
	if !slices.Contains(pinKinds, kind) {
		return nil, fmt.Errorf("audit: %s %s: no such kind of pin", kind, t.Name)
	}
	if t.Hash == "" {
		return nil, fmt.Errorf("audit: %s %s has no definition hash", toolgate.KindNoun(kind), t.Name)
	}
	if p, err := s.pin(ctx, s.rdb, kind, t.Server, t.Tool); err == nil && p.SeenHash == t.Hash && p.Name == t.Name {
		return p, nil // the common case: nothing new, no write
	} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	var out *ToolPin
	at := utc(s.o.Now())
	err := s.write(ctx, func(w *wtx) error {
		p, err := s.pin(w.ctx, w.s.conn, kind, t.Server, t.Tool)
		by := ""
		switch {
		case errors.Is(err, sql.ErrNoRows):
			p = &ToolPin{Kind: kind, Server: t.Server, Tool: t.Tool, Name: t.Name, SeenHash: t.Hash, SeenDef: t.Definition,
				SeenAt: at, FirstSeen: at}
			if mode != PinStrict {
				p.PinnedHash, p.PinnedDef, p.ApprovedAt, p.ApprovedBy = t.Hash, t.Definition, &at, ByTOFU
				by = ByTOFU
			}
			var approved any
			if p.ApprovedAt != nil {
				approved = at.UnixNano()
			}
			if _, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO pins (`+pinCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
				p.Kind, p.Server, p.Tool, p.Name, p.PinnedHash, string(p.PinnedDef), p.SeenHash, string(p.SeenDef), at.UnixNano(), at.UnixNano(),
				approved, p.ApprovedBy); err != nil {
				return fmt.Errorf("audit: record %s %s: %w", toolgate.KindNoun(kind), t.Name, err)
			}
		case err != nil:
			return err
		case p.SeenHash == t.Hash:
			if p.Name != t.Name {
				if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE pins SET name = ? WHERE kind = ? AND server = ? AND tool = ?`,
					t.Name, p.Kind, p.Server, p.Tool); err != nil {
					return fmt.Errorf("audit: record %s %s: %w", toolgate.KindNoun(kind), t.Name, err)
				}
				p.Name = t.Name
			}
			out = p
			return nil
		default:
			p.Name, p.SeenHash, p.SeenDef, p.SeenAt = t.Name, t.Hash, t.Definition, at
			if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE pins SET name = ?, seen_hash = ?, seen_def = ?, seen_at = ?
				WHERE kind = ? AND server = ? AND tool = ?`, p.Name, p.SeenHash, string(p.SeenDef), at.UnixNano(), p.Kind, p.Server, p.Tool); err != nil {
				return fmt.Errorf("audit: record %s %s: %w", toolgate.KindNoun(kind), t.Name, err)
			}
		}
		p.State = p.state()
		out = p
		return w.appendPinEvent(pinSeen, at, p, t.Hash, by)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// querier is the read pool or the writer's connection.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) pin(ctx context.Context, q querier, kind, server, tool string) (*ToolPin, error) {
	p, err := scanPin(q.QueryRowContext(ctx, `SELECT `+pinCols+` FROM pins WHERE kind = ? AND server = ? AND tool = ?`, kind, server, tool))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: read pin of %s %s/%s: %w", kind, server, tool, err)
	}
	return p, err
}

// ToolPins lists every declaration ever seen (tools, prompts, resources,
// resource templates), by exposed name, then kind.
func (s *Store) ToolPins(ctx context.Context) ([]*ToolPin, error) {
	return allPins(ctx, s.rdb)
}

func allPins(ctx context.Context, q querier) ([]*ToolPin, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+pinCols+` FROM pins ORDER BY name, kind, server, tool`)
	if err != nil {
		return nil, fmt.Errorf("audit: pins: %w", err)
	}
	defer rows.Close()
	var out []*ToolPin
	for rows.Next() {
		p, err := scanPin(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: pins: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ErrNoSuchTool: ApprovePins was given a name no declaration was seen
// under.
var ErrNoSuchTool = errors.New("audit: no tool, prompt or resource seen under that name")

// ErrAmbiguousPin: ApprovePins was given a name that more than one
// declaration answers to (a tool and a prompt, say, or two servers'
// resources of one URI).
var ErrAmbiguousPin = errors.New("audit: more than one declaration answers to that name")

// ErrPinMoved: ApprovePins was given the hash of a definition that is no
// longer the one seen (the upstream changed it after the admin reviewed
// it), so it approved nothing.
var ErrPinMoved = errors.New("audit: the definition changed since it was reviewed")

// MinHashPrefix is the fewest hex digits of a definition hash that
// ApprovePins accepts as the one reviewed. The upstream writes both the
// definition the admin reviews and the one it swaps in, so it can search
// for two sharing a prefix (a birthday search: 2^(2n) hashes for n hex
// digits); 32 digits put that out of reach, 12 would not.
const MinHashPrefix = 32

// CheckHashPrefix reports whether h can name a reviewed definition: at
// least MinHashPrefix and at most 64 lowercase hex digits.
func CheckHashPrefix(h string) error {
	if len(h) < MinHashPrefix || len(h) > 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return fmt.Errorf("audit: definition hash %q: want %d to 64 lowercase hex digits (the hash `toolgate tools show` prints)", h, MinHashPrefix)
	}
	return nil
}

// ID is the name p alone answers to, whatever other declarations are
// called: KIND:SERVER/TOOL (prompt:up/greet, resource:up/mem://notes),
// also its events' call_id.
func (p *ToolPin) ID() string { return pinEventID(p.Kind, p.Server, p.Tool) }

// answersTo reports whether name designates p. A name that starts with a
// kind and a colon is qualified: KIND:SERVER/TOOL is p's ID, KIND:NAME its
// exposed name (exposed names have no slash), never a URI: a URI is the
// upstream's free text, which could spell another declaration's qualified
// name. Any other name is p's exposed name or, for a resource or template,
// its URI (template).
func (p *ToolPin) answersTo(name string) bool {
	if kind, rest, ok := strings.Cut(name, ":"); ok && slices.Contains(pinKinds, kind) {
		if server, tool, ok := strings.Cut(rest, "/"); ok {
			return p.Kind == kind && p.Server == server && p.Tool == tool
		}
		return p.Kind == kind && p.Name == rest
	}
	return p.Name == name || ((p.Kind == toolgate.KindResource || p.Kind == toolgate.KindResourceTemplate) && p.Tool == name)
}

// Ref is the shortest name that designates p among ps (see MatchPin), as
// one shell word an admin can paste: its kind-qualified exposed name (its
// bare name for a tool) when that names p alone, else its ID (shellWord).
func (p *ToolPin) Ref(ps []*ToolPin) string {
	names := []string{p.Kind + ":" + p.Name}
	if p.Kind == toolgate.KindTool {
		names = []string{p.Name, p.Kind + ":" + p.Name}
	}
	for _, n := range names {
		if m, err := MatchPin(ps, n); err == nil && m == p {
			return n
		}
	}
	return shellWord(p.ID())
}

// shellWord is s as one word of a POSIX shell command line, shown as
// toolgate.Visible shows it: single-quoted unless it is made of
// characters no shell acts on. A pasted word with an invisible rune in it
// (now escaped) designates nothing, so approves nothing.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(toolgate.Visible(s), "'", `'\''`) + "'"
}

// MatchPin returns the pin of ps that name designates (see answersTo). A
// name designating more than one is an error (ErrAmbiguousPin) that lists
// their IDs, and one designating none ErrNoSuchTool: the admin approves
// what was reviewed, never a namesake.
func MatchPin(ps []*ToolPin, name string) (*ToolPin, error) {
	var out []*ToolPin
	for _, p := range ps {
		if p.answersTo(name) {
			out = append(out, p)
		}
	}
	switch len(out) {
	case 0:
		return nil, fmt.Errorf("%w: %s (see `toolgate tools list`)", ErrNoSuchTool, name)
	case 1:
		return out[0], nil
	}
	ids := make([]string, len(out))
	for i, p := range out {
		ids[i] = shellWord(p.ID())
	}
	return nil, fmt.Errorf("%w: %s; name one of %s", ErrAmbiguousPin, name, strings.Join(ids, ", "))
}

// PinRef designates a declaration to approve: Name as MatchPin reads it
// and, when not "", Hash: a prefix (CheckHashPrefix) of the hash of the
// definition the admin reviewed.
type PinRef struct {
	Name, Hash string
}

// ApprovePins approves the definition last seen of each declaration
// refs designates, and with allChanged of every changed or pending one,
// as approved by by (e.g. "cli:alice"), chaining each approval. It
// returns the pins it approved; one whose seen definition is already the
// pinned one is left as it is. A ref with a Hash approves only if the
// definition seen is that one, checked in the transaction that pins it,
// so a definition swapped in after the admin reviewed it is never
// approved (ErrPinMoved). All or nothing: an unknown or ambiguous name,
// or a moved definition, approves none.
func (s *Store) ApprovePins(ctx context.Context, refs []PinRef, allChanged bool, by string) ([]*ToolPin, error) {
	for _, r := range refs {
		if r.Hash != "" {
			if err := CheckHashPrefix(r.Hash); err != nil {
				return nil, err
			}
		}
	}
	at := utc(s.o.Now())
	var out []*ToolPin
	err := s.write(ctx, func(w *wtx) error {
		out = nil
		all, err := allPins(w.ctx, w.s.conn)
		if err != nil {
			return err
		}
		want := map[*ToolPin]bool{}
		for _, r := range refs {
			p, err := MatchPin(all, r.Name)
			if err != nil {
				return err
			}
			if r.Hash != "" && !strings.HasPrefix(p.SeenHash, r.Hash) {
				return fmt.Errorf("%w: %s %s's definition is now %s, not %s as reviewed; nothing approved: review it again with `toolgate tools show %s`",
					ErrPinMoved, toolgate.KindNoun(p.Kind), p.Name, p.SeenHash, r.Hash, p.Ref(all))
			}
			want[p] = true
		}
		for _, p := range all {
			if p.State == toolgate.PinPinned || !(want[p] || allChanged) {
				continue
			}
			p.PinnedHash, p.PinnedDef, p.ApprovedAt, p.ApprovedBy = p.SeenHash, p.SeenDef, &at, by
			if _, err := w.s.conn.ExecContext(w.ctx, `UPDATE pins SET pinned_hash = ?, pinned_def = ?, approved_at = ?, approved_by = ?
				WHERE kind = ? AND server = ? AND tool = ?`, p.PinnedHash, string(p.PinnedDef), at.UnixNano(), by, p.Kind, p.Server, p.Tool); err != nil {
				return fmt.Errorf("audit: approve %s %s: %w", toolgate.KindNoun(p.Kind), p.Name, err)
			}
			p.State = p.state()
			if err := w.appendPinEvent(pinApprove, at, p, p.SeenHash, by); err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pinsVersion is a fingerprint of the pins an approval changes: it moves
// whenever a declaration is added or a pin approved (an approval stamps
// approved_at with its time; the sum is a float sum, which cannot overflow).
func (s *Store) pinsVersion(ctx context.Context) (string, error) {
	var (
		n, last int64
		sum     float64
	)
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(approved_at), 0), COALESCE(SUM(CAST(approved_at AS DOUBLE PRECISION)), 0) FROM pins`).Scan(&n, &last, &sum); err != nil {
		return "", fmt.Errorf("audit: pins: %w", err)
	}
	return fmt.Sprintf("%d/%d/%g", n, last, sum), nil
}

// Pins is the pin store a tool catalog uses (tools.PinStore), over a Store
// that other processes (`toolgate tools approve`) write to as well.
type Pins struct {
	s    *Store
	mode PinMode

	mu      sync.Mutex
	version string
	// failed is set when a check failed, so that Watch retries it.
	failed bool
}

// NewPins returns the pin store over s in mode (PinTOFU when "").
func NewPins(s *Store, mode PinMode) *Pins {
	if mode == "" {
		mode = PinTOFU
	}
	return &Pins{s: s, mode: mode}
}

// CheckPin implements tools.PinStore.
func (p *Pins) CheckPin(ctx context.Context, d toolgate.ToolDef) (toolgate.Pin, error) {
	tp, err := p.s.ObservePin(ctx, d, p.mode)
	if err != nil {
		p.mu.Lock()
		p.failed = true
		p.mu.Unlock()
		return toolgate.Pin{}, err
	}
	return tp.pin(), nil
}

// Watch calls changed, until ctx ends, whenever the pins changed since the
// last look (every interval): an approval made by another process, or a
// tool seen for the first time. It also calls it after a failed CheckPin,
// so the check is retried. changed should re-check every tool
// (tools.Catalog.Refresh).
func (p *Pins) Watch(ctx context.Context, interval time.Duration, changed func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := p.s.pinsVersion(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.s.o.Logger.Warn("reading tool pins failed", "err", err)
			}
			continue
		}
		p.mu.Lock()
		moved := v != p.version || p.failed
		p.version, p.failed = v, false
		p.mu.Unlock()
		if moved {
			changed()
		}
	}
}
