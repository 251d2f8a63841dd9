package audit

import (
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/toolgate/toolgate"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An archive is a gzip-compressed SQLite file holding a prefix of the log's
// event chain exactly as stored (every column of every events row), the
// calls rows and review approvals of the calls in it, every rule set (for
// the rule-set checks), its chain_base (where its chain starts) and an
// archive_info row. It has this build's schema, so Verify, Replay and the
// queries read it as they read the live log; an archive made by an older
// build is migrated when opened (the copy, never the file).
//
// The live log keeps, after archiving, a chain_base row (the archived
// head: the last archived event's seq and hash, where its own chain now
// starts) and a chained cut event carrying that head, the archive's start
// and its sha256. Verify of the live log starts from the chain_base;
// VerifyArchives checks archives and the live log as one chain.

// kindArchiveCut is the chained event that records an archive cut; its
// call_id is "archive:HEADSEQ".
const kindArchiveCut = "archive_cut"

// archiveFormat is ArchiveInfo.Format of the archives this build writes.
const archiveFormat = 1

// Errors of Archive.
var (
	// ErrNothingToArchive: no whole, finished call lies before the cut time.
	ErrNothingToArchive = errors.New("audit: nothing to archive")
	// ErrArchiveRace: the log changed under the archive in a way that
	// would cut a call in two (or another archive ran); nothing was
	// pruned, and running it again picks up the new state.
	ErrArchiveRace = errors.New("audit: log changed during archive; nothing pruned")
)

// ChainPoint is a position in the event chain: an event's seq and hash.
// The zero value is the genesis (before the first event).
type ChainPoint struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// ArchiveInfo describes an archive; it is stored in the archive itself.
type ArchiveInfo struct {
	Format int `json:"format"`
	// Start is the event the archive's chain follows (the previous
	// archive's Head; zero for the first archive); Head is its last event.
	Start ChainPoint `json:"start"`
	Head  ChainPoint `json:"head"`
	// Events and Calls count what the archive holds.
	Events int64 `json:"events"`
	Calls  int64 `json:"calls"`
	// Before is the cut time asked for; CreatedAt when it was made.
	Before    time.Time `json:"before"`
	CreatedAt time.Time `json:"created_at"`
	// SchemaVersion is the schema the archive was written with.
	SchemaVersion   int    `json:"schema_version"`
	ToolgateVersion string `json:"toolgate_version,omitempty"`
}

// Cut is the body of a chained cut event in the live log.
type Cut struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	At   int64  `json:"at"`
	// Start and Head are the archive's (ArchiveInfo).
	Start  ChainPoint `json:"start"`
	Head   ChainPoint `json:"head"`
	Events int64      `json:"events"`
	Calls  int64      `json:"calls"`
	// SHA256 is the hex sha256 of the archive file as written.
	SHA256 string `json:"sha256"`
	// File is the archive's file name when written (informational).
	File string `json:"file"`
	// Kept are the context events at or before Head that the log keeps
	// because decisions after Head name them (context.go): each event's
	// seq, the hash of the event before it in the chain, and its own, so
	// that a verify of the log alone checks them.
	Kept []KeptEvent `json:"kept,omitempty"`
}

// KeptEvent is an event an archive cut left in the log: its seq, the hash
// of the event before it, and its hash (hex).
type KeptEvent struct {
	Seq  int64  `json:"seq"`
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// ArchiveOptions says what Archive moves and where.
type ArchiveOptions struct {
	// Before: calls decided before it are archived, whole (every event of
	// the call), as far as the chain allows; see Archive.
	Before time.Time
	// To is the archive file to write; it must not exist.
	To string
	// TempDir holds the uncompressed archive while it is built; "" means
	// To's directory.
	TempDir string
	// MaxCalls bounds how many calls one archive takes (0: no bound). The
	// prune holds the log's write lock for a time proportional to what it
	// removes; a bound keeps a running server's calls from waiting long.
	MaxCalls int
	// Vacuum rebuilds the DB file after the prune to return the freed
	// pages to the file system. It holds the write lock for as long as it
	// takes (seconds per GB), so a running server's calls wait; without
	// it, the freed pages are reused by new records and the file stops
	// growing instead of shrinking. On PostgreSQL it is a plain VACUUM
	// (pgVacuum): no writer waits, and the tables keep their size.
	Vacuum bool
}

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	Info   ArchiveInfo `json:"info"`
	File   string      `json:"file"`
	SHA256 string      `json:"sha256"`
	// Bytes is the archive file's size.
	Bytes int64 `json:"bytes"`
	// HeldBack, when set, is the call that stopped the cut before Before:
	// one still pending or started (its events are not all written yet),
	// or one with events after the cut time. It and every later event
	// stay in the live log.
	HeldBack *HeldBack `json:"held_back,omitempty"`
	// More says the cut stopped at ArchiveOptions.MaxCalls: more calls
	// before the cut time are left to archive.
	More bool `json:"more,omitempty"`
	// DBBytes and DBBytesAfter are the DB file's size (with its WAL; on
	// PostgreSQL its tables', see dbBytes) before and after (after the
	// vacuum, if asked).
	DBBytes      int64 `json:"db_bytes"`
	DBBytesAfter int64 `json:"db_bytes_after"`
	// Copy, Prune and Vacuum are how long each step took.
	Copy   time.Duration `json:"copy"`
	Prune  time.Duration `json:"prune"`
	Vacuum time.Duration `json:"vacuum"`
}

// HeldBack is a call that stopped an archive cut.
type HeldBack struct {
	CallID string `json:"call_id"`
	Seq    int64  `json:"seq"`
	Why    string `json:"why"`
}

// Archive moves the calls decided before o.Before into a new archive file
// and prunes them from the log. It is fail-safe: the archive is built,
// its chain re-verified and written (fsynced) before anything is pruned,
// and the prune is one transaction that re-checks what it removes, so a
// failure at any step leaves the log as it was.
//
// What moves is a prefix of the event chain: the events up to the last
// seq C such that every decision at or before C was made before o.Before,
// and every call with its decision at or before C has all its events at or
// before C and is finished (neither pending nor started). A pending
// review or a started call therefore stays in the log, and so does
// everything after it: the cut stops at its decision (ArchiveResult.
// HeldBack says which call). So does a call whose last event (a late
// verdict) follows the decision of a call made after o.Before: the two
// cannot be split. Events of no call (tokens, rule-set loads, tool pins,
// earlier cuts) move with the prefix.
//
// The prune deletes the archived events, calls rows and review approvals,
// sets the log's chain_base to the archived head, and appends a cut event
// (chained, so it is tamper-evident like any other). The events table
// refuses any DELETE except of events at or before chain_base, so the
// prune is the one path that removes events; whoever can write the DB
// file can do the same by hand, as they could rewrite the chain before:
// the signed checkpoints (VerifyCheckpoints, with the archives) are what
// detect that. On PostgreSQL the archive is the same file, and the prune
// runs under the chain lock like every write (archive_pg.go).
func (s *Store) Archive(ctx context.Context, o ArchiveOptions) (*ArchiveResult, error) {
	if s.kick == nil {
		return nil, fmt.Errorf("audit: archive: store opened read-only")
	}
	if o.To == "" || o.Before.IsZero() {
		return nil, fmt.Errorf("audit: archive: a cut time and a file are required")
	}
	if _, err := os.Lstat(o.To); err == nil {
		return nil, fmt.Errorf("audit: archive: %s already exists", o.To)
	}
	dir := o.TempDir
	if dir == "" {
		dir = filepath.Dir(o.To)
	}
	res := &ArchiveResult{File: o.To}
	var err error
	if res.DBBytes, err = s.dbBytes(ctx); err != nil {
		return nil, err
	}
	// The calls rows must show every durable decision's status before the
	// cut is chosen from them.
	if err := s.Flush(ctx); err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	t0 := time.Now()
	tmp, err := os.CreateTemp(dir, ".toolgate-archive-*.db")
	if err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	tmp.Close()
	defer removeDB(tmp.Name())
	plan, err := s.copyArchive(ctx, tmp.Name(), o, res)
	if err != nil {
		return nil, err
	}
	if err := checkArchiveDB(ctx, tmp.Name(), plan.info); err != nil {
		return nil, err
	}
	if res.SHA256, res.Bytes, err = compressFile(tmp.Name(), o.To); err != nil {
		return nil, err
	}
	res.Info = plan.info
	res.Copy = time.Since(t0)

	t0 = time.Now()
	cut := Cut{
		Kind: kindArchiveCut, ID: fmt.Sprintf("archive:%d", plan.info.Head.Seq), At: s.o.Now().UnixNano(),
		Start: plan.info.Start, Head: plan.info.Head, Events: plan.info.Events, Calls: plan.info.Calls,
		SHA256: res.SHA256, File: filepath.Base(o.To),
	}
	if err := s.write(ctx, func(w *wtx) error { return w.prune(plan, &cut) }); err != nil {
		// The archive holds records the log still has: remove it, so that
		// it is not taken for one the log was cut at.
		os.Remove(o.To)
		return nil, err
	}
	res.Prune = time.Since(t0)
	if o.Vacuum {
		t0 = time.Now()
		if err := s.vacuum(ctx); err != nil {
			return res, err
		}
		res.Vacuum = time.Since(t0)
	}
	res.DBBytesAfter, err = s.dbBytes(ctx)
	return res, err
}

// archivePlan is what copyArchive chose and the prune must re-check.
type archivePlan struct {
	info ArchiveInfo
	// snapMax is the last seq the copy saw; ids the archived calls;
	// below counts the events at or before the start (contexts an earlier
	// cut kept), which the archive holds as well for its decisions.
	snapMax, below int64
	ids            map[string]struct{}
}

// copyArchive creates the archive DB at path, picks the cut and copies
// the prefix into it, all in one read snapshot of the log on a connection
// of its own (the log's writer is not held up: only the archive file is
// written).
func (s *Store) copyArchive(ctx context.Context, path string, o ArchiveOptions, res *ArchiveResult) (*archivePlan, error) {
	if err := s.createArchiveDB(ctx, path); err != nil {
		return nil, err
	}
	// One snapshot of the log for the plan and the copy: on PostgreSQL a
	// reader's (repeatable read), on SQLite a deferred transaction on a
	// connection with the archive attached.
	var tx *sql.Tx
	if s.pg != nil {
		var err error
		if tx, err = s.rdb.BeginTx(ctx, nil); err != nil {
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
	} else {
		db, err := sql.Open("sqlite3", snapshotDSN(s.path, s.o))
		if err != nil {
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
		defer db.Close()
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS arch`, path); err != nil {
			return nil, fmt.Errorf("audit: archive: attach %s: %w", path, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE arch`)
		if tx, err = conn.BeginTx(ctx, nil); err != nil {
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
	}
	defer tx.Rollback()
	plan, err := s.planArchive(ctx, tx, o, res)
	if err != nil {
		return nil, err
	}
	if s.pg != nil {
		err = pgCopyPrefix(ctx, tx, path, plan)
	} else {
		err = copyPrefix(ctx, tx, plan)
	}
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	return plan, nil
}

// createArchiveDB creates an empty log at path, at this build's schema.
func (s *Store) createArchiveDB(ctx context.Context, path string) error {
	a, err := Open(ctx, path, Options{ToolgateVersion: s.o.ToolgateVersion, Now: s.o.Now})
	if err != nil {
		return fmt.Errorf("audit: archive: create %s: %w", path, err)
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("audit: archive: create %s: %w", path, err)
	}
	return nil
}

// planArchive picks the cut in tx's snapshot of the log and fills in the
// archive's info.
func (s *Store) planArchive(ctx context.Context, tx *sql.Tx, o ArchiveOptions, res *ArchiveResult) (*archivePlan, error) {
	plan, err := planCut(ctx, tx, o.Before, o.MaxCalls, res)
	if err != nil {
		return nil, err
	}
	plan.info.Before = o.Before.UTC()
	plan.info.CreatedAt = s.o.Now().UTC()
	plan.info.SchemaVersion = SchemaVersion
	plan.info.ToolgateVersion = s.o.ToolgateVersion
	return plan, nil
}

// snapshotDSN is a connection to the log that reads in deferred
// transactions (a snapshot, no write lock on the log) but may write to an
// attached archive.
func snapshotDSN(path string, o Options) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(o.BusyTimeout.Milliseconds()))
	q.Set("_txlock", "deferred")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// planCut picks the archive's head (see Archive) in tx's snapshot.
func planCut(ctx context.Context, tx *sql.Tx, before time.Time, maxCalls int, res *ArchiveResult) (*archivePlan, error) {
	start, err := chainBase(ctx, tx)
	if err != nil {
		return nil, err
	}
	p := &archivePlan{info: ArchiveInfo{Format: archiveFormat, Start: start}, ids: map[string]struct{}{}}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0), count(CASE WHEN seq <= ? THEN 1 END) FROM events`, start.Seq).Scan(&p.snapMax, &p.below); err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	// limit: the last event before the first decision at or after the
	// cut time.
	var limit int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(min(seq), ?) - 1 FROM events WHERE seq > ? AND kind = ? AND at >= ?`,
		p.snapMax+1, start.Seq, kindDecision, before.UnixNano()).Scan(&limit); err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	if limit <= start.Seq {
		return nil, ErrNothingToArchive
	}
	// open: calls that may still get events (never archived), and calls
	// with events after limit (their decision at or before it must not be).
	open := map[string]string{}
	for _, status := range []string{toolgate.StatusPending, toolgate.StatusStarted} {
		if err := queryEach(ctx, tx, `SELECT id FROM calls WHERE status = ?`, func(id string) bool {
			open[id] = "still " + status
			return true
		}, status); err != nil {
			return nil, err
		}
	}
	if err := queryEach(ctx, tx, `SELECT DISTINCT call_id FROM events WHERE seq > ? AND kind <> ?`, func(id string) bool {
		if _, ok := open[id]; !ok {
			open[id] = "has events after the cut time"
		}
		return true
	}, limit, kindDecision); err != nil {
		return nil, err
	}
	// last[id] is the last event of each call decided in the prefix
	// (math.MaxInt64 for an open one); decisions lists them in order.
	type decision struct {
		seq int64
		id  string
	}
	last := map[string]int64{}
	var decisions []decision
	rows, err := tx.QueryContext(ctx, `SELECT seq, call_id, kind FROM events WHERE seq > ? AND seq <= ? ORDER BY seq`, start.Seq, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	for rows.Next() {
		var (
			seq      int64
			id, kind string
		)
		if err := rows.Scan(&seq, &id, &kind); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: archive: %w", err)
		}
		if kind == kindDecision {
			decisions = append(decisions, decision{seq, id})
			last[id] = seq
			if _, ok := open[id]; ok {
				last[id] = math.MaxInt64
			}
		} else if l, ok := last[id]; ok && l != math.MaxInt64 {
			last[id] = seq
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	// The cut is the largest c <= limit at which every call decided at or
	// before c has its last event at or before c (and at most maxCalls
	// calls are).
	head, reach := start.Seq, start.Seq
	for i, d := range decisions {
		if reach < d.seq {
			head = d.seq - 1 // a cut before d holds decisions[:i]
		}
		if maxCalls > 0 && i == maxCalls {
			res.More = true
			reach = math.MaxInt64
			break
		}
		if l := last[d.id]; l == math.MaxInt64 {
			why := open[d.id]
			res.HeldBack = &HeldBack{CallID: d.id, Seq: d.seq, Why: why}
			reach = l
			break
		} else {
			reach = max(reach, l)
		}
	}
	if reach <= limit {
		head = limit
	}
	for _, d := range decisions {
		if d.seq > head {
			break
		}
		p.ids[d.id] = struct{}{}
	}
	if len(p.ids) == 0 {
		// Events of no call alone (the last cut's, a token's) are not
		// worth an archive.
		return nil, ErrNothingToArchive
	}
	p.info.Head.Seq = head
	p.info.Events = head - start.Seq
	p.info.Calls = int64(len(p.ids))
	if err := tx.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, head).Scan(hexScan{&p.info.Head.Hash}); err != nil {
		return nil, fmt.Errorf("audit: archive: event %d: %w", head, err)
	}
	return p, nil
}

// archivedCalls selects the ids of the calls decided in (?, ?].
const archivedCalls = `SELECT call_id FROM events WHERE seq > ? AND seq <= ? AND kind = 'decision'`

// copyPrefix copies the planned prefix into the attached archive, every
// column as stored, and records the archive's chain_base and info.
func copyPrefix(ctx context.Context, tx *sql.Tx, p *archivePlan) error {
	return fillArchive(ctx, tx, "arch.", p, func(table, where string, args []any) (int64, error) {
		cols, err := tableColumns(ctx, tx, table)
		if err != nil {
			return 0, err
		}
		list := strings.Join(cols, ", ")
		res, err := tx.ExecContext(ctx, `INSERT INTO arch.`+table+` (`+list+`) SELECT `+list+` FROM main.`+table+` WHERE `+where, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
}

// fillArchive fills the archive DB that dst writes (its tables named with
// prefix pre) with the planned prefix: copyTable copies the rows of a table of
// the log that match where into the archive's table of that name. It
// checks the counts against the plan and records the archive's
// chain_base and info.
func fillArchive(ctx context.Context, dst *sql.Tx, pre string, p *archivePlan, copyTable func(table, where string, args []any) (int64, error)) error {
	from, to := p.info.Start.Seq, p.info.Head.Seq
	for _, c := range []struct {
		table, where string
		args         []any
	}{
		{"events", `seq <= ?`, []any{to}},
		{"calls", `id IN (` + archivedCalls + `)`, []any{from, to}},
		{"review_approvals", `call_id IN (` + archivedCalls + `)`, []any{from, to}},
		{"rulesets", `1 = 1`, nil},
		// Every name, by the ids the calls rows refer to them by.
		{"names", `1 = 1`, nil},
	} {
		n, err := copyTable(c.table, c.where, c.args)
		if err != nil {
			return fmt.Errorf("audit: archive: copy %s: %w", c.table, err)
		}
		switch {
		case c.table == "events" && n != p.info.Events+p.below:
			return fmt.Errorf("audit: archive: copied %d events, expected %d (seq gap in the log?)", n, p.info.Events+p.below)
		case c.table == "calls" && n != p.info.Calls:
			return fmt.Errorf("audit: archive: copied %d calls rows for %d decisions (rows missing from the log?)", n, p.info.Calls)
		}
	}
	info, err := json.Marshal(p.info)
	if err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO ` + pre + `chain_base (id, seq, hash) VALUES (1, ?, ?)`, []any{from, p.info.Start.Hash}},
		// Every archived call is over and was projected before the cut.
		{`UPDATE ` + pre + `projection SET seq = ? WHERE name = 'calls'`, []any{p.info.Head.Seq}},
		{`CREATE TABLE ` + pre + `archive_info (body TEXT NOT NULL)`, nil},
		{`INSERT INTO ` + pre + `archive_info (body) VALUES (?)`, []any{string(info)}},
	} {
		if _, err := dst.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("audit: archive: %w", err)
		}
	}
	return nil
}

// tableColumns lists the columns of the log's table, in order.
func tableColumns(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	var cols []string
	err := collectColumns(ctx, tx, table, func(name string) { cols = append(cols, `"`+name+`"`) })
	if err == nil && len(cols) == 0 {
		err = fmt.Errorf("no table %s", table)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: archive: columns of %s: %w", table, err)
	}
	return cols, nil
}

func collectColumns(ctx context.Context, tx *sql.Tx, table string, f func(string)) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, 'main')`, table)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		f(name)
	}
	return rows.Err()
}

// checkArchiveDB re-verifies the built archive's chain from its start to
// the head the plan read in the log, and folds its WAL into the file.
func checkArchiveDB(ctx context.Context, path string, info ArchiveInfo) error {
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		return fmt.Errorf("audit: archive: check: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode = DELETE`); err != nil {
		return fmt.Errorf("audit: archive: check: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: archive: check: %w", err)
	}
	defer tx.Rollback()
	var rep VerifyReport
	if err := verifyChain(ctx, tx, &rep, info.Start); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("audit: archive: the log's chain is broken in the part to archive (%s); run toolgate audit verify", rep.First())
	}
	if rep.Head != info.Head.Hash || rep.Events != info.Events {
		return fmt.Errorf("audit: archive: the archive's chain ends at %.12s… after %d events, expected %.12s… after %d", rep.Head, rep.Events, info.Head.Hash, info.Events)
	}
	return nil
}

// compressFile gzips src into dst (created, never overwritten; fsynced
// with its directory) and returns the sha256 and size of what it wrote.
func compressFile(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, fmt.Errorf("audit: archive: %w", err)
	}
	defer in.Close()
	tmp := dst + ".partial"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("audit: archive: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return "", 0, fmt.Errorf("audit: archive: %w", err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		return "", 0, fmt.Errorf("audit: archive: write %s: %w", dst, err)
	}
	if err := zw.Close(); err != nil {
		return "", 0, fmt.Errorf("audit: archive: write %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		return "", 0, fmt.Errorf("audit: archive: write %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return "", 0, fmt.Errorf("audit: archive: write %s: %w", dst, err)
	}
	// A hard link fails if dst appeared meanwhile: never overwrite.
	if err := os.Link(tmp, dst); err != nil {
		return "", 0, fmt.Errorf("audit: archive: %w", err)
	}
	os.Remove(tmp)
	ok = true
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// prune removes the archived prefix and records the cut (see Archive). It
// fails, and the transaction rolls back, if the log is no longer the one
// the archive was cut from or a call in it got an event since.
func (w *wtx) prune(p *archivePlan, cut *Cut) error {
	q := w.s.conn
	ctx := w.ctx
	base, err := chainBase(ctx, q)
	if err != nil {
		return err
	}
	if base != p.info.Start {
		return fmt.Errorf("%w (another archive moved the chain's start to event %d)", ErrArchiveRace, base.Seq)
	}
	var head string
	if err := q.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, p.info.Head.Seq).Scan(hexScan{&head}); err != nil || head != p.info.Head.Hash {
		return fmt.Errorf("%w (event %d changed or is gone: %v)", ErrArchiveRace, p.info.Head.Seq, err)
	}
	late := ""
	if err := queryEach(ctx, q, `SELECT call_id FROM events WHERE seq > ?`, func(id string) bool {
		if _, ok := p.ids[id]; ok {
			late = id
			return false
		}
		return true
	}, p.snapMax); err != nil {
		return err
	}
	if late != "" {
		return fmt.Errorf("%w (call %s got an event)", ErrArchiveRace, late)
	}
	if cut.Kept, err = w.keptContexts(p, base); err != nil {
		return err
	}
	// The cut event goes first: a new event's seq is one more than the
	// largest kept, so the newest event must stay in the table for seqs
	// never to be reused (the cut event is always newer than the prefix).
	body, err := json.Marshal(cut)
	if err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	if err := w.appendBody(cut.ID, kindArchiveCut, cut.At, body); err != nil {
		return err
	}
	from, to := p.info.Start.Seq, p.info.Head.Seq
	res, err := q.ExecContext(ctx, `DELETE FROM calls WHERE id IN (`+archivedCalls+`) AND status NOT IN (?, ?)`,
		from, to, toolgate.StatusPending, toolgate.StatusStarted)
	if err != nil {
		return fmt.Errorf("audit: archive: prune calls: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != p.info.Calls {
		return fmt.Errorf("%w (%d of %d calls rows finished: %v)", ErrArchiveRace, n, p.info.Calls, err)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM review_approvals WHERE call_id IN (`+archivedCalls+`)`, from, to); err != nil {
		return fmt.Errorf("audit: archive: prune approvals: %w", err)
	}
	// chain_base first: the trigger lets DELETE remove only events at or
	// before it.
	if _, err := q.ExecContext(ctx, `INSERT INTO chain_base (id, seq, hash) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, to, p.info.Head.Hash); err != nil {
		return fmt.Errorf("audit: archive: record the cut: %w", err)
	}
	w.base = to // later writes of this transaction name no context at or below it
	keep := make([]string, 0, len(cut.Kept)+1)
	for _, k := range cut.Kept {
		keep = append(keep, strconv.FormatInt(k.Seq, 10))
	}
	keep = append(keep, "0") // NOT IN () is not SQL
	if _, err := q.ExecContext(ctx, `DELETE FROM events WHERE seq <= ? AND seq NOT IN (`+strings.Join(keep, ",")+`)`, to); err != nil {
		return fmt.Errorf("audit: archive: prune events: %w", err)
	}
	return nil
}

// keptContexts lists the context events at or before the cut's head that
// decisions after it name: the prune leaves them in the log. One an
// earlier cut kept (at or before base) has the predecessor that cut
// listed; the predecessor of any other is the event before it.
func (w *wtx) keptContexts(p *archivePlan, base ChainPoint) ([]KeptEvent, error) {
	q, ctx, head := w.s.conn, w.ctx, p.info.Head.Seq
	need := map[int64]bool{}
	// A decision's cx leads its body (withCx): the first bytes hold it.
	if err := queryEach(ctx, q, `SELECT substr(body, 1, 40) FROM events WHERE seq > ? AND kind = 'decision'`, func(b string) bool {
		if cx := leadingCx(b); cx > 0 && cx <= head {
			need[cx] = true
		}
		return true
	}, head); err != nil {
		return nil, err
	}
	if len(need) == 0 {
		return nil, nil
	}
	earlier := map[int64]KeptEvent{}
	if base.Seq > 0 {
		cuts, err := readCuts(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, k := range cuts[base.Seq].Kept {
			earlier[k.Seq] = k
		}
	}
	out := make([]KeptEvent, 0, len(need))
	for seq := range need {
		k := KeptEvent{Seq: seq}
		if err := q.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ? AND kind = ?`, seq, kindContext).Scan(hexScan{&k.Hash}); err != nil {
			return nil, fmt.Errorf("audit: archive: context event %d that a kept decision names: %w", seq, err)
		}
		if seq <= base.Seq {
			e, ok := earlier[seq]
			if !ok || e.Hash != k.Hash {
				return nil, fmt.Errorf("audit: archive: context event %d is before the chain's base, and the last cut did not keep it", seq)
			}
			k.Prev = e.Prev
		} else {
			k.Prev = base.Hash
			err := q.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq > ? AND seq < ? ORDER BY seq DESC LIMIT 1`, base.Seq, seq).Scan(hexScan{&k.Prev})
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("audit: archive: %w", err)
			}
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b KeptEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// queryEach runs a one-column query and passes each value to f until f
// returns false.
func queryEach(ctx context.Context, q querier, query string, f func(string) bool, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("audit: archive: %w", err)
		}
		if !f(v) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: archive: %w", err)
	}
	return nil
}

// chainBase returns where the events kept in the DB begin: the zero
// ChainPoint if nothing was archived.
func chainBase(ctx context.Context, q querier) (ChainPoint, error) {
	var b ChainPoint
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM chain_base WHERE id = 1`).Scan(&b.Seq, &b.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("audit: read chain base: %w", err)
	}
	return b, nil
}

// verifyBase checks, for a log that was archived, that its chain_base is
// the head recorded by a chained cut event: the latest cut's event is
// appended after every event there was, so it stays in the log until the
// next archive, which sets a new base. A chain_base set by hand to hide
// removed events has none. q may be an archive (which starts at a cut
// recorded in the one after it) only if mayBeArchive.
func verifyBase(ctx context.Context, q querier, rep *VerifyReport, base ChainPoint, mayBeArchive bool) error {
	if base.Seq == 0 {
		return nil
	}
	cuts, err := readCuts(ctx, q)
	if err != nil {
		return err
	}
	c, ok := cuts[base.Seq]
	switch {
	case !ok && mayBeArchive && isArchiveStart(ctx, q, base):
		// An archive starts where the one before it ends; that cut's
		// event is later in the chain (VerifyArchives links the two).
	case !ok:
		rep.add(Problem{CallID: fmt.Sprintf("archive:%d", base.Seq), What: fmt.Sprintf("the log starts after event %d, but no chained cut event records an archive ending there (events removed?)", base.Seq)})
	case c.Head != base:
		rep.add(Problem{CallID: c.ID, What: fmt.Sprintf("the log's chain base %.12s… differs from the archived head %.12s… its cut event recorded", base.Hash, c.Head.Hash)})
	}
	return nil
}

// verifyKept checks the events at or before the chain's base that the log
// keeps: each must be one the cut at the base kept (Cut.Kept), hash as
// that cut recorded, and each it kept must be there. An archive holds
// copies of them; when the cut at its start is in the archive before it,
// VerifyArchives checks them against that one instead.
func verifyKept(ctx context.Context, q querier, rep *VerifyReport, base ChainPoint) error {
	if base.Seq == 0 {
		return nil
	}
	cuts, err := readCuts(ctx, q)
	if err != nil {
		return err
	}
	cut, ok := cuts[base.Seq]
	if !ok {
		return nil // an archive's start (VerifyArchives), or verifyBase's problem
	}
	kept := map[int64]KeptEvent{}
	for _, k := range cut.Kept {
		kept[k.Seq] = k
	}
	rows, err := q.QueryContext(ctx, `SELECT `+chainCols+` FROM events WHERE seq <= ? ORDER BY seq`, base.Seq)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var e evItem
	for rows.Next() {
		if err := e.scan(rows); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		k, ok := kept[e.seq]
		delete(kept, e.seq)
		switch {
		case !ok:
			rep.add(Problem{Seq: e.seq, CallID: e.callID, What: fmt.Sprintf("event is at or before the chain's base (event %d), and the cut there did not keep it", base.Seq)})
		case e.kind != kindContext || !isFormat2(e.body) || e.prevHash != "" ||
			hashHex(e.hash) != k.Hash || hex.EncodeToString(eventHash(hashRaw(k.Prev), e.callID, e.kind, e.at, e.body)) != k.Hash:
			rep.add(Problem{Seq: e.seq, CallID: e.callID, What: "kept context event differs from what the cut recorded (event altered)"})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	for seq := range kept {
		rep.add(Problem{Seq: seq, What: "context event the last cut kept is missing (deleted?)"})
	}
	return nil
}

// isArchiveStart reports whether q is an archive (it has archive_info)
// starting at base.
func isArchiveStart(ctx context.Context, q querier, base ChainPoint) bool {
	var body string
	var info ArchiveInfo
	if err := q.QueryRowContext(ctx, `SELECT body FROM archive_info`).Scan(&body); err != nil {
		return false // no such table: the live log
	}
	return json.Unmarshal([]byte(body), &info) == nil && info.Start == base
}

// readCuts returns the chained cut events in the DB by archived head seq.
func readCuts(ctx context.Context, q querier) (map[int64]Cut, error) {
	// The literal kind lets SQLite use the partial index events_cuts.
	rows, err := q.QueryContext(ctx, `SELECT body FROM events WHERE kind = 'archive_cut'`)
	if err != nil {
		return nil, fmt.Errorf("audit: read cuts: %w", err)
	}
	defer rows.Close()
	out := map[int64]Cut{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("audit: read cuts: %w", err)
		}
		var c Cut
		if json.Unmarshal(body, &c) == nil { // checkStandalone reports a bad body
			out[c.Head.Seq] = c
		}
	}
	return out, rows.Err()
}

// vacuum rebuilds the DB file without its free pages and truncates the WAL.
func (s *Store) vacuum(ctx context.Context) error {
	if s.pg != nil {
		return s.pgVacuum(ctx)
	}
	// On the writer's connection with the write lock held, so no commit
	// of this process waits on VACUUM's lock instead.
	s.wmu.Lock()
	defer s.release()
	for _, q := range []string{`VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("audit: archive: %s: %w", strings.ToLower(q), err)
		}
	}
	return nil
}

// fileBytes is the size of the DB file and its WAL (0 if absent).
func fileBytes(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// removeDB removes a temporary DB copy and everything opening it made
// beside it: SQLite's files and the directory of spools (SpoolSuffix),
// which would otherwise be left behind by every archive run.
func removeDB(path string) {
	for _, suf := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suf)
	}
	os.RemoveAll(path + SpoolSuffix)
}

// Archived is an archive opened for reading: a decompressed copy, migrated
// to this build's schema, opened as a Store. Close removes the copy.
type Archived struct {
	*Store
	// Path is the archive file; SHA256 its hash as read.
	Path   string
	SHA256 string
	Info   ArchiveInfo
	tmp    string
}

// OpenArchive decompresses the archive at path into a file in dir ("" is
// the system's temporary directory) and opens it.
func OpenArchive(ctx context.Context, path, dir string) (*Archived, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	defer in.Close()
	h := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(in, h))
	if err != nil {
		return nil, fmt.Errorf("audit: archive %s: not a toolgate archive: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".toolgate-archive-*.db")
	if err != nil {
		return nil, fmt.Errorf("audit: archive: %w", err)
	}
	_, err = io.Copy(tmp, zr)
	if err == nil {
		// Hash what follows the gzip stream too, so SHA256 is the file's.
		_, err = io.Copy(io.Discard, in)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		removeDB(tmp.Name())
		return nil, fmt.Errorf("audit: archive %s: %w", path, err)
	}
	a := &Archived{Path: path, SHA256: hex.EncodeToString(h.Sum(nil)), tmp: tmp.Name()}
	a.Store, err = Open(ctx, tmp.Name(), Options{})
	if err != nil {
		removeDB(tmp.Name())
		return nil, fmt.Errorf("audit: archive %s: %w", path, err)
	}
	var body string
	if err := a.rdb.QueryRowContext(ctx, `SELECT body FROM archive_info`).Scan(&body); err != nil {
		a.Close()
		return nil, fmt.Errorf("audit: archive %s: not a toolgate archive: %w", path, err)
	}
	if err := json.Unmarshal([]byte(body), &a.Info); err != nil {
		a.Close()
		return nil, fmt.Errorf("audit: archive %s: %w", path, err)
	}
	return a, nil
}

// Close closes the archive and removes its decompressed copy.
func (a *Archived) Close() error {
	err := a.Store.Close()
	removeDB(a.tmp)
	return err
}

// ArchiveReport is the result of VerifyArchives.
type ArchiveReport struct {
	// Archives are the archives' own checks, in chain order.
	Archives []ArchiveCheck `json:"archives"`
	// Live is the live log's.
	Live VerifyReport `json:"live"`
	// Problems are those of the whole: a missing or extra archive, an
	// archive whose hash is not the one its cut recorded.
	Problems []Problem `json:"problems,omitempty"`
}

// ArchiveCheck is one archive's part of an ArchiveReport.
type ArchiveCheck struct {
	File   string       `json:"file"`
	SHA256 string       `json:"sha256"`
	Info   ArchiveInfo  `json:"info"`
	Report VerifyReport `json:"report"`
}

// OK reports whether every archive, the live log and the links between
// them verified.
func (r *ArchiveReport) OK() bool {
	if len(r.Problems) > 0 || !r.Live.OK() {
		return false
	}
	for _, a := range r.Archives {
		if !a.Report.OK() {
			return false
		}
	}
	return true
}

// Events and Calls total what was checked.
func (r *ArchiveReport) Events() (events, calls int64) {
	events, calls = r.Live.Events, r.Live.Calls
	for _, a := range r.Archives {
		events += a.Report.Events
		calls += a.Report.Calls
	}
	return events, calls
}

// VerifyArchives checks the archives and the live log as one chain: each
// archive verifies on its own (Verify: its chain from its start, its rows
// against its events), the first starts at the genesis, each starts at
// the head of the one before, the last ends where the live log starts,
// the live log verifies, and each archive file hashes to the sha256 its
// chained cut event recorded. A missing, extra, altered or reordered
// archive is reported.
func VerifyArchives(ctx context.Context, live *Store, archives []*Archived) (ArchiveReport, error) {
	var rep ArchiveReport
	problem := func(id, format string, args ...any) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, Problem{CallID: id, What: fmt.Sprintf(format, args...)})
		}
	}
	sorted := slices.Clone(archives)
	slices.SortStableFunc(sorted, byStart)
	cuts := map[int64]Cut{}
	at := ChainPoint{}
	for i, a := range sorted {
		name := filepath.Base(a.Path)
		switch {
		case a.Info.Start == at:
		case a.Info.Start.Seq > at.Seq:
			problem(name, "archive missing: events %d to %d are in none of the archives given", at.Seq+1, a.Info.Start.Seq)
		default:
			problem(name, "starts at event %d (%.12s…), but the chain before it ends at event %d (%.12s…): archive overlaps another or is from another log", a.Info.Start.Seq, a.Info.Start.Hash, at.Seq, at.Hash)
		}
		if err := checkCopies(ctx, a, sorted[:i], problem); err != nil {
			return rep, err
		}
		r, err := a.Verify(ctx)
		if err != nil {
			return rep, fmt.Errorf("audit: verify archive %s: %w", a.Path, err)
		}
		if r.Head != a.Info.Head.Hash {
			problem(name, "chain ends at %.12s…, its info says %.12s…", r.Head, a.Info.Head.Hash)
		}
		c, err := readCuts(ctx, a.rdb)
		if err != nil {
			return rep, err
		}
		maps.Copy(cuts, c)
		rep.Archives = append(rep.Archives, ArchiveCheck{File: a.Path, SHA256: a.SHA256, Info: a.Info, Report: r})
		at = a.Info.Head
	}
	base, err := chainBase(ctx, live.rdb)
	if err != nil {
		return rep, err
	}
	switch {
	case base == at:
	case base.Seq > at.Seq:
		problem("", "archive missing: events %d to %d were archived, and are in none of the archives given", at.Seq+1, base.Seq)
	default:
		problem("", "the live log starts after event %d (%.12s…), but the archives end at event %d (%.12s…)", base.Seq, base.Hash, at.Seq, at.Hash)
	}
	if rep.Live, err = live.Verify(ctx); err != nil {
		return rep, err
	}
	c, err := readCuts(ctx, live.rdb)
	if err != nil {
		return rep, err
	}
	maps.Copy(cuts, c)
	for _, a := range rep.Archives {
		name := filepath.Base(a.File)
		c, ok := cuts[a.Info.Head.Seq]
		switch {
		case !ok:
			problem(name, "no chained cut event records this archive (ending at event %d)", a.Info.Head.Seq)
		case c.SHA256 != a.SHA256:
			problem(name, "file hashes to %.12s…, its cut event recorded %.12s… (archive file altered or replaced)", a.SHA256, c.SHA256)
		case c.Start != a.Info.Start || c.Head != a.Info.Head:
			problem(name, "its info differs from what its cut event recorded")
		}
	}
	return rep, nil
}

// checkCopies checks a's copies of the events before its start (the
// context events a cut kept for its decisions): each must be the event the
// archives before it hold.
func checkCopies(ctx context.Context, a *Archived, before []*Archived, problem func(id, format string, args ...any)) error {
	rows, err := a.rdb.QueryContext(ctx, `SELECT seq, hash FROM events WHERE seq <= ?`, a.Info.Start.Seq)
	if err != nil {
		return fmt.Errorf("audit: verify archive %s: %w", a.Path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq  int64
			hash string
		)
		if err := rows.Scan(&seq, hexScan{&hash}); err != nil {
			return fmt.Errorf("audit: verify archive %s: %w", a.Path, err)
		}
		h, found, err := archivedHash(ctx, before, seq)
		if err != nil {
			return err
		}
		switch {
		case !found:
			problem(filepath.Base(a.Path), "archive missing: its copy of event %d, from before its start, is in none of the archives before it", seq)
		case h != hash:
			problem(filepath.Base(a.Path), "its copy of event %d differs from the event the archive before it holds (altered)", seq)
		}
	}
	return rows.Err()
}

// byStart orders archives along the chain.
func byStart(a, b *Archived) int { return cmp.Compare(a.Info.Start.Seq, b.Info.Start.Seq) }

// archivedHash returns the hash of event seq from whichever archive holds
// it (found false if none does).
func archivedHash(ctx context.Context, archives []*Archived, seq int64) (hash string, found bool, err error) {
	for _, a := range archives {
		if seq <= a.Info.Start.Seq || seq > a.Info.Head.Seq {
			continue
		}
		err := a.rdb.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, seq).Scan(hexScan{&hash})
		if errors.Is(err, sql.ErrNoRows) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("audit: archive %s: %w", a.Path, err)
		}
		return hash, true, nil
	}
	return "", false, nil
}

// OpenCombined opens one read view of archives and the live log, for
// queries that span them (replay, stats): the archives are decompressed
// into dir ("" is the system's temporary directory) and the later ones'
// rows and the live log's (as of one snapshot) are copied into the first,
// in chain order. The live log's grants come along (replay reports the
// grants of the calls it replays). Close removes the copies.
func OpenCombined(ctx context.Context, live *Store, paths []string, dir string) (*Archived, error) {
	if len(paths) == 0 {
		return nil, errors.New("audit: no archives to combine")
	}
	var archives []*Archived
	closeAll := func() {
		for _, a := range archives {
			a.Close()
		}
	}
	for _, p := range paths {
		a, err := OpenArchive(ctx, p, dir)
		if err != nil {
			closeAll()
			return nil, err
		}
		archives = append(archives, a)
	}
	slices.SortStableFunc(archives, byStart)
	first, rest := archives[0], archives[1:]
	defer func() {
		for _, a := range rest {
			a.Close()
		}
	}()
	var srcs []attached
	for i, a := range rest {
		srcs = append(srcs, attached{a.tmp, fmt.Sprintf("a%d", i)})
	}
	if live.pg == nil {
		srcs = append(srcs, attached{live.path, "live"})
	}
	// The copy's rows must reflect every event it copies.
	if err := live.catchUp(ctx); err != nil {
		closeAll()
		return nil, err
	}
	var pgLive *sql.Tx
	if live.pg != nil {
		// A log on PostgreSQL is read in one snapshot (repeatable read).
		tx, err := live.rdb.BeginTx(ctx, nil)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("audit: combine archives: %w", err)
		}
		defer tx.Rollback()
		pgLive = tx
	}
	if err := first.appendFrom(ctx, srcs, pgLive); err != nil {
		first.Close()
		return nil, err
	}
	return first, nil
}

// attached is a DB file and the schema name it is attached as.
type attached struct{ path, alias string }

// appendFrom copies the rows of srcs, then those pgLive reads (a log on
// PostgreSQL; nil for none), into a's copy, in order, in one transaction
// (so the last, the live log, is read in one snapshot). Rows
// the copy already has (a rule set) are kept; grants come from the last
// source only. Calls rows keep their seqs, their decision events'.
func (a *Archived) appendFrom(ctx context.Context, srcs []attached, pgLive *sql.Tx) error {
	db, err := sql.Open("sqlite3", snapshotDSN(a.tmp, a.o))
	if err != nil {
		return fmt.Errorf("audit: combine archives: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: combine archives: %w", err)
	}
	defer conn.Close()
	for _, s := range srcs {
		if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+s.alias, s.path); err != nil {
			return fmt.Errorf("audit: combine archives: attach %s: %w", s.path, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE `+s.alias)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: combine archives: %w", err)
	}
	defer tx.Rollback()
	for _, table := range []string{"events", "names", "calls", "review_approvals", "rulesets", "grants"} {
		cols, err := tableColumns(ctx, tx, table)
		if err != nil {
			return err
		}
		list := strings.Join(cols, ", ")
		for i, s := range srcs {
			if table == "grants" && (i < len(srcs)-1 || pgLive != nil) {
				continue
			}
			q := `INSERT INTO main.` + table + ` (` + list + `) SELECT ` + list + ` FROM ` + s.alias + `.` + table + ` WHERE true ON CONFLICT DO NOTHING`
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("audit: combine archives: copy %s.%s: %w", s.alias, table, err)
			}
		}
		if pgLive != nil {
			if _, err := copyRows(ctx, pgLive, tx, "main."+table, " ON CONFLICT DO NOTHING", `SELECT `+list+` FROM `+table); err != nil {
				return fmt.Errorf("audit: combine archives: copy live %s: %w", table, err)
			}
		}
	}
	// The sources' rows reflect their events (archives are cut whole,
	// the live log was caught up), so the copy's reflect all of its own.
	if _, err := tx.ExecContext(ctx, `UPDATE main.projection SET seq = (SELECT coalesce(max(seq), 0) FROM main.events) WHERE name = 'calls'`); err != nil {
		return fmt.Errorf("audit: combine archives: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: combine archives: %w", err)
	}
	return nil
}
