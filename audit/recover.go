package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/toolgate/toolgate"
)

// A call is recorded started before it runs, and its outcome after
// (Finish). A process that dies in between (kill -9, OOM, power loss)
// leaves the call started for good: list shows it running, and an archive
// cut stops before it. CloseInterrupted gives such a call a chained
// outcome event of status interrupted once no process can still be running
// it, which is when either holds:
//
//   - every live lease (see Options.Owner) started after the call's
//     decision. The process that begins a call holds a lease from before
//     its decision until after its outcome, so a call older than every
//     live lease belongs to a process that is gone. A lease of another
//     machine is live while renewed within LeaseTTL; one of this machine
//     (same host and PID namespace) while its process exists: a restart
//     after a crash closes its predecessor's calls at once.
//   - the call was decided longer ago than the horizon passed in: the
//     longest review wait plus the longest call timeout (and a margin), so
//     that nothing still runs it, whatever the leases say (a live process
//     whose outcome write failed leaves its call started too).
//
// A process of another machine whose lease ran out while it lived
// (suspended longer than LeaseTTL) is taken for dead like a crashed one:
// its late Finish of a call closed meanwhile is refused and logged, and
// the call keeps the one outcome, interrupted, so that the row and the
// chain never disagree.

// Why an interrupted call was closed: the outcome's Error.
const (
	whyLeaseGone = "no outcome recorded: the toolgate process that ran the call stopped (killed, crashed or lost power) before recording it"
	whyHorizon   = "no outcome recorded within %v of the decision, longer than any call may run: toolgate stopped while the call ran, or its outcome could not be written"
)

// started is a call left started, with its decision's time.
type started struct {
	id        string
	decidedAt int64
}

// CloseInterrupted closes the calls left started that no process can still
// be running (see above), horizon being the longest a call may take from
// its decision to its outcome (0: judge by the leases alone). It returns
// the ids it closed. Each gets an outcome event of status interrupted
// whose Error says why, chained like any outcome; the archive cut then
// passes them.
func (s *Store) CloseInterrupted(ctx context.Context, horizon time.Duration) ([]string, error) {
	if s.kick == nil {
		return nil, fmt.Errorf("audit: close interrupted calls: store opened read-only")
	}
	// Candidates from the readers (a scan of calls, off the write lock),
	// once calls reflects every process's events; the write transaction
	// re-checks each against the leases it sees.
	if s.spool != nil {
		s.spool.scanWant.Add(1) // a dead process's spool first
	}
	if err := s.Flush(ctx); err != nil {
		return nil, fmt.Errorf("audit: close interrupted calls: %w", err)
	}
	var cands []started
	// The status is a literal so that the planner can use calls_started.
	rows, err := s.rdb.QueryContext(ctx, `SELECT calls.id, d.at FROM calls JOIN events d ON d.seq = calls.seq WHERE calls.status = '`+
		toolgate.StatusStarted+`'`)
	if err != nil {
		return nil, fmt.Errorf("audit: close interrupted calls: %w", err)
	}
	for rows.Next() {
		var c started
		if err := rows.Scan(&c.id, &c.decidedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: close interrupted calls: %w", err)
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: close interrupted calls: %w", err)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	var closed []string
	err = s.write(ctx, func(w *wtx) error {
		closed = closed[:0]
		now := s.o.Now()
		// The leases as of this transaction: a process that starts after
		// it begins no call before it commits.
		cover, err := w.liveLeaseStart(now)
		if err != nil {
			return err
		}
		old := int64(math.MinInt64)
		if horizon > 0 {
			old = now.Add(-horizon).UnixNano()
		}
		for _, c := range cands {
			why := ""
			switch {
			case c.decidedAt < cover:
				why = whyLeaseGone
			case c.decidedAt < old:
				why = fmt.Sprintf(whyHorizon, horizon)
			default:
				continue
			}
			if ok, err := w.interrupt(c.id, why, now); err != nil {
				return err
			} else if ok {
				closed = append(closed, c.id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range closed {
		s.o.Logger.Warn("audit: closed a call left started as interrupted", "call_id", id)
	}
	return closed, nil
}

// interrupt closes call id, if it is still started, with an interrupted
// outcome saying why.
func (w *wtx) interrupt(id, why string, now time.Time) (bool, error) {
	status, err := w.status(id)
	if err != nil || status != toolgate.StatusStarted {
		return false, err
	}
	o := toolgate.Outcome{Status: toolgate.StatusInterrupted, Error: why, FinishedAt: utc(now)}
	if err := w.appendEvent(&event{Kind: kindOutcome, ID: id, At: o.FinishedAt.UnixNano(), Status: o.Status, Outcome: &o}); err != nil {
		return false, err
	}
	n, err := w.setOutcome(id, &o, w.head)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: close %s as interrupted: its row is not started", ErrState, id)
	}
	return err == nil, err
}

// status is call id's status as of this transaction: its row's, unless
// this writer keeps a later one of its own, unprojected. Its own
// "started" may be stale, though: another process may have projected the
// decision and closed the call as interrupted since, and the row says so.
func (w *wtx) status(id string) (string, error) {
	own, ok := w.unprojected(id)
	if ok && own != toolgate.StatusStarted {
		return own, nil
	}
	var row string
	err := w.s.stmts.rowStatus.QueryRowContext(w.ctx, id).Scan(&row)
	switch {
	case errors.Is(err, sql.ErrNoRows) && ok:
		return own, nil // projected by nobody yet
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return "", fmt.Errorf("audit: read status of %s: %w", id, err)
	}
	return row, nil
}

// liveLeaseStart returns when the earliest live lease started
// (math.MaxInt64 when none is live): no call decided before it can still
// be running. A lease taken on this machine is live while its process
// exists, whatever its heartbeat (a stopped process, or one renewing at a
// longer lease_ttl than this store's); another machine's while renewed
// within LeaseTTL.
func (w *wtx) liveLeaseStart(now time.Time) (int64, error) {
	rows, err := w.s.conn.QueryContext(w.ctx, `SELECT pid, host, started_at, heartbeat_at FROM review_owners`)
	if err != nil {
		return 0, fmt.Errorf("audit: read leases: %w", err)
	}
	defer rows.Close()
	here, stale := hostIdentity(), now.Add(-w.s.o.LeaseTTL).UnixNano()
	cover := int64(math.MaxInt64)
	for rows.Next() {
		var (
			pid                int
			host               string
			startAt, heartbeat int64
		)
		if err := rows.Scan(&pid, &host, &startAt, &heartbeat); err != nil {
			return 0, fmt.Errorf("audit: read leases: %w", err)
		}
		if host == here && !processGone(pid) || host != here && heartbeat >= stale {
			cover = min(cover, startAt)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("audit: read leases: %w", err)
	}
	return cover, nil
}

// hostIdentity names the machine a lease is held from, as precisely as a
// process ID needs: the host name, and on Linux the PID namespace (two
// containers of one host name see different processes under one PID).
func hostIdentity() string {
	host, _ := os.Hostname()
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		return host + " " + ns
	}
	return host
}

// processGone reports whether no process has ID pid here. Any doubt (no
// permission to signal it, a system without signals) counts as alive.
func processGone(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	defer p.Release()
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}
