package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/lookalike"
)

// pendingView is one waiting review as the queue shows it.
type pendingView struct {
	ID, Tool, Rule, Reason, Requester, Model, Client, Session string
	Kind                                                      string // tool, prompt, resource or completion: a prompt may share a tool's name
	Args                                                      string // redacted, indented JSON
	Meta                                                      string // the call's _meta, as Args; "" for none
	Waiting                                                   string
	RequestedAt                                               time.Time
	// SessionMinutes is the longest approval for the session the rule
	// allows, in minutes; 0 when it allows none.
	SessionMinutes int
	Own            bool // the viewer made this call (approval is refused)
	// ArgsNotStored: the log keeps only the arguments' hash, so the page
	// cannot show them, and offers no approval (the store refuses one).
	ArgsNotStored bool
	// Lookalikes names the look-alike characters in what the review
	// shows (lookalike.InCall); "" for none.
	Lookalikes string
}

// shownCall is what the queue shows of a pending call that costs time in
// the call's size: its redacted arguments and _meta and its look-alike
// warning. An ID names one call for good, so each is made once while the
// call waits, not at every load of the queue, which every reviewer's page
// makes whenever any review arrives or ends.
type shownCall struct{ args, meta, lookalikes string }

func (h *Handler) pendingViews(ctx context.Context, v viewer) ([]pendingView, error) {
	ps, err := h.o.Store.PendingReviews(ctx)
	if err != nil {
		return nil, err
	}
	now := h.o.Now()
	out := make([]pendingView, 0, len(ps))
	h.shownMu.Lock()
	defer h.shownMu.Unlock()
	shown := make(map[string]shownCall, len(ps))
	for _, p := range ps {
		sh, ok := h.shown[p.Call.ID]
		if !ok {
			sh = shownCall{args: h.pageJSON(p.Call.Args), lookalikes: lookalike.InCall(p.Call, p.Decision, h.o.Redactor)}
			if len(p.Call.Meta) > 0 {
				sh.meta = h.pageJSON(p.Call.Meta)
			}
		}
		shown[p.Call.ID] = sh
		pv := pendingView{
			ID: p.Call.ID, Tool: p.Call.Name, Kind: p.Call.KindName(), Rule: orDash(p.Decision.Rule), Reason: p.Decision.Reason,
			Requester: orDash(p.Call.Principal.String()), Model: orDash(peer(p.Call.Model.Name, p.Call.Model.Version)),
			Client: orDash(peer(p.Call.Client.Name, p.Call.Client.Version)), Session: p.Call.SessionID,
			Args: sh.args, Meta: sh.meta, Lookalikes: sh.lookalikes,
			RequestedAt: p.RequestedAt, Waiting: now.Sub(p.RequestedAt).Round(time.Second).String(),
			SessionMinutes: int(p.SessionGrant(ctx, h.o.Decide) / time.Minute), ArgsNotStored: p.ArgsNotStored,
		}
		if v.s != nil && v.s.who.Personal() && p.Call.Principal.Personal() && v.s.who.User == p.Call.Principal.User {
			pv.Own = true
		}
		out = append(out, pv)
	}
	h.shown = shown
	return out, nil
}

func (h *Handler) reviewsPage(w http.ResponseWriter, r *http.Request, v viewer) {
	ps, err := h.pendingViews(r.Context(), v)
	if err != nil {
		h.serverError(w, "listing pending reviews", err)
		return
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	h.render(w, r, "reviews", v, map[string]any{"Pending": ps, "Sig": queueSig(ids)})
}

// queueSig names a set of pending reviews (their IDs, oldest first): the
// page tells the event stream which set it shows, so the stream's first
// event is a change, not a reload of what is on screen (which would
// replace a half-typed Deny reason).
func queueSig(ids []string) string {
	sum := sha256.Sum256([]byte(strings.Join(ids, ",")))
	return hex.EncodeToString(sum[:8])
}

func (h *Handler) queueFragment(w http.ResponseWriter, r *http.Request, v viewer) {
	ps, err := h.pendingViews(r.Context(), v)
	if err != nil {
		h.serverError(w, "listing pending reviews", err)
		return
	}
	h.renderFragment(w, "queue", v, map[string]any{"Pending": ps})
}

// events streams a "reviews" server-sent event whenever the set of
// pending reviews changes (a review arrives, or is answered by any
// process or channel); the page then reloads the queue.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, _ viewer) {
	h.streamMu.Lock()
	if h.streams >= maxStreams {
		h.streamMu.Unlock()
		http.Error(w, "too many live streams", http.StatusServiceUnavailable)
		return
	}
	h.streams++
	h.streamMu.Unlock()
	defer func() {
		h.streamMu.Lock()
		h.streams--
		h.streamMu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	t := time.NewTicker(h.o.PollInterval)
	defer t.Stop()
	last, idle := r.URL.Query().Get("have"), 0
	for {
		ps, err := h.o.Store.PendingReviews(ctx)
		if err != nil {
			if ctx.Err() == nil {
				h.o.Logger.Warn("web: live queue: listing pending reviews failed", "err", err)
			}
			return
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.Call.ID
		}
		sig := queueSig(ids)
		switch {
		case sig != last:
			_, err = fmt.Fprintf(w, "event: reviews\ndata: %d\n\n", len(ps))
			last, idle = sig, 0
		case idle*int(h.o.PollInterval) >= int(15*time.Second):
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
			idle = 0
		default:
			idle++
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// verdict records a signed-in reviewer's answer exactly as a Slack click
// does: SubmitVerdict on the audit store (which refuses an approval by
// the call's own principal, applies the rule's review policy, and chains
// the answer), then, for an approval for the session, GrantSession. The
// process holding the call sees the verdict on its next poll.
func (h *Handler) verdict(w http.ResponseWriter, r *http.Request, v viewer) {
	id := r.PathValue("id")
	if !v.canAct() {
		h.o.Logger.Warn("web: verdict refused: not a reviewer (http.reviewers)", "call_id", id, "user", v.s.who.User)
		http.Error(w, "you are not one of this toolgate's reviewers (http.reviewers)", http.StatusForbidden)
		return
	}
	action := r.PostForm.Get("action")
	who := v.s.who
	vd := toolgate.Verdict{
		Approved: action == "approve" || action == "session", Channel: toolgate.ChannelWeb,
		Reviewer: "web:" + orShared(who.User), DecidedAt: h.o.Now(), Reason: strings.TrimSpace(r.PostForm.Get("reason")),
	}
	if who.Personal() {
		// A shared-token reviewer cannot be told from a caller: the store
		// then refuses approvals of calls made under personal credentials.
		vd.ReviewerUser = who.User
	}
	var session time.Duration
	switch action {
	case "approve":
	case "session":
		limit, err := h.sessionGrant(r.Context(), id)
		if err != nil {
			h.flash(w, r, v, err.Error())
			return
		}
		mins, err := strconv.Atoi(r.PostForm.Get("minutes"))
		if err != nil || mins < 1 || time.Duration(mins)*time.Minute > limit {
			h.flash(w, r, v, fmt.Sprintf("Approve for this session: give a number of minutes from 1 to %d (the rule's session_grant).", int(limit/time.Minute)))
			return
		}
		session = time.Duration(mins) * time.Minute
		vd.Reason = "approved for the rest of the session, for " + session.String()
	case "deny":
		if vd.Reason == "" {
			h.flash(w, r, v, "Deny: give a reason (the agent is shown it).")
			return
		}
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	log := h.o.Logger.With("call_id", id, "reviewer", vd.Reviewer, "action", action)
	ok, err := h.o.Store.SubmitVerdict(r.Context(), id, vd)
	switch {
	case errors.Is(err, toolgate.ErrSelfApproval):
		log.Warn("web approval refused: " + err.Error())
		h.flash(w, r, v, "Your approval was not counted: "+err.Error()+". The review is still waiting.")
		return
	case errors.Is(err, toolgate.ErrMoreApprovals):
		h.flash(w, r, v, "Your approval counts ("+err.Error()+"). The review waits for another approver.")
		return
	case errors.Is(err, toolgate.ErrSameApprover), errors.Is(err, toolgate.ErrChannelRefused), errors.Is(err, audit.ErrFollows), errors.Is(err, toolgate.ErrArgsNotShown):
		h.flash(w, r, v, "Your answer was not counted: "+err.Error()+".")
		return
	case errors.Is(err, audit.ErrNotFound):
		h.flash(w, r, v, "No call "+id+" in the audit log.")
		return
	case err != nil:
		log.Error("web: storing verdict failed", "err", err)
		h.flash(w, r, v, "toolgate could not record your answer ("+err.Error()+"). Try again.")
		return
	case !ok:
		msg := "This review is no longer waiting; your answer changed nothing."
		if won, decided, err := h.o.Store.ReviewVerdict(r.Context(), id); err == nil && decided {
			msg = fmt.Sprintf("This review was already closed (%s via %s); your answer changed nothing.", outcome(won.Approved), won.Channel)
		}
		h.answered(w, r, v, msg, id)
		return
	}
	log.Info("web verdict stored", "approved", vd.Approved)
	msg := fmt.Sprintf("%s %s.", capital(outcome(vd.Approved)), id)
	if session > 0 {
		if gid, err := h.o.Store.GrantSession(context.WithoutCancel(r.Context()), id, session); err != nil {
			log.Error("web: issuing the session grant failed; later calls are reviewed", "err", err)
			msg += " The session grant could not be issued; later calls will be reviewed."
		} else {
			log.Info("session grant issued", "grant", gid, "ttl", session)
			msg += " Session grant " + gid + " for " + session.String() + "."
		}
	}
	h.answered(w, r, v, msg, id)
}

// sessionGrant returns the session_grant of pending review id's rule.
func (h *Handler) sessionGrant(ctx context.Context, id string) (time.Duration, error) {
	ps, err := h.o.Store.PendingReviews(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range ps {
		if p.Call.ID == id {
			g := p.SessionGrant(ctx, h.o.Decide)
			if g <= 0 {
				return 0, errors.New("This rule does not allow an approval for the session.")
			}
			return g, nil
		}
	}
	return 0, errors.New("This review is no longer waiting; your answer changed nothing.")
}

// flash shows msg on the reviews page the browser is sent back to.
func (h *Handler) flash(w http.ResponseWriter, r *http.Request, v viewer, msg string) {
	h.answered(w, r, v, msg, "")
}

// answered is flash for an answer that closed review id (counted, or the
// review was closed already; "" for none): the page's script closes it in
// place.
func (h *Handler) answered(w http.ResponseWriter, r *http.Request, v viewer, msg, id string) {
	h.sessions.setFlash(v.s, flash{text: msg, closed: id})
	http.Redirect(w, r, Prefix+"reviews", http.StatusSeeOther)
}

func outcome(approved bool) string {
	if approved {
		return "approved"
	}
	return "denied"
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orShared(user string) string {
	if user == "" {
		return "shared-token"
	}
	return user
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func peer(name, version string) string {
	if version == "" {
		return name
	}
	return name + "@" + version
}
