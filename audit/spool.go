package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/toolgate/toolgate"
)

// The spool makes a call's decision and outcome durable on SQLite with one
// store into a shared file mapping each, instead of a transaction each (or
// a write(2) each, which cost a call more than the rest of the spool). A
// serving process appends them to a file of its own in a directory beside
// the log (SpoolSuffix); the writer imports the spooled events into the
// hash-chained log behind, in one transaction per batch (spoolImportBatch
// records, or behindDelay after the first), which also projects them into
// calls. The spools table holds
// how far each spool was imported, in the importing transaction, so an
// event is imported exactly once whoever imports it.
//
// A spool is durable as the log is at Synchronous NORMAL: an append
// survives a kill of toolgate (its bytes are in the page cache, the
// mapping's backing). At FULL a process spools nothing (see Open).
//
// The file is allocated ahead (spoolGrow at a time) and mapped: records
// follow each other from its start, then zeros to its end. A record's
// header (length, checksum) is stored after its body, so a reader or a
// kill sees a record whole or not at all; a zero length is the end (no
// record is empty).
//
// Its owner holds an exclusive flock on it while it runs. Opening the log
// for writing imports every other spool's complete records (a read-only
// open that finds some opens it for writing just long enough), and deletes
// a spool once it is imported and its owner is gone (the flock is free):
// a killed toolgate's last decisions reach the log before anything else
// reads it. A record is length-prefixed and CRC-checked: a torn last
// record (power loss mid-write) is not a record; its call never ran.
//
// Fail closed: a decision is refused while the log's files are not at
// their path (liveness.go) or the spool was deleted, and after a failed
// import (the log gone, the disk full) every append is refused with its
// error until an import succeeds (another process holding the log's lock
// counts once it has held it for WriteTimeout): no call runs whose
// decision could not reach the log.

const (
	// SpoolSuffix names the directory of the spools beside the log (the
	// sandbox hides it with the log); a spool in it is named by 16 hex
	// digits.
	SpoolSuffix = ".spool"
	// spoolImportBatch is how many spooled records make the writer import
	// at once rather than behindDelay after the first.
	spoolImportBatch = 256
	// maxSpoolRecord bounds a record's length when reading one back.
	maxSpoolRecord = 64 << 20
	// spoolRotate is the size from which a spool whose every record is
	// imported is deleted and the next append starts a new one.
	spoolRotate = 16 << 20
	// spoolGrow is how much of a spool's file is allocated and mapped at
	// a time (more when a record needs it).
	spoolGrow = 4 << 20
	// spoolRelease is the step in which appended pages are let go of by
	// the mapping (they stay in the page cache and the file): the process
	// keeps at most this much of its spool resident.
	spoolRelease = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn: a spool ends inside a record (its writer stopped mid-write).
var errTorn = errors.New("torn record")

// errNotSpooled: a second outcome of a call whose first this process
// spooled: it goes the way of any other write, whose check reports it.
var errNotSpooled = errors.New("audit: call not spooled here")

// spool is this process's spool file, created on the first append.
type spool struct {
	mu      sync.Mutex
	off     bool // hot writes commit as before (SyncFull)
	f       *os.File
	watch   *dirWatch // the spools' directory (nil: each append checks f)
	m       []byte    // f, mapped: the records, then zeros to its end
	held    int64     // m's pages from here on may be resident (spoolRelease)
	closed  bool      // the store is closing: no more appends
	name    string    // base name: the spools table's key
	size    int64     // bytes appended
	pending []spooled
	// live holds the calls this process spooled a record of that is
	// pending, or a decision of whose outcome is to come, by id: their
	// status.
	live map[string]string
	// failed is the last import's error (nil once one succeeds).
	failed atomic.Pointer[error]
	// queued says an import is queued (the flag is cleared by the import
	// before it takes the pending records).
	queued atomic.Bool
	// scanWant is raised to ask the next transaction to import the other
	// processes' spools; scanDone is the last value a committed one
	// answered (guarded by wmu).
	scanWant atomic.Int64
	scanDone int64
	// busySince is when imports started to find the log locked by another
	// process (zero: they do not); guarded by wmu.
	busySince time.Time
	// retry is how long after a failed import the next one is queued
	// (doubling up to maxImportRetry; zero once one succeeds), guarded by
	// wmu; retryArmed says one is waiting to be queued.
	retry      time.Duration
	retryArmed atomic.Bool
}

// maxImportRetry bounds the wait before a failed import is tried again. A
// log that stays unwritable (deleted, its disk full) must not turn the
// retries into a loop that burns a core and floods the log with failures;
// calls are refused meanwhile, so the wait delays nothing but the import.
const maxImportRetry = 2 * time.Second

// spooled is one appended record: its end offset and how the writer
// applies it.
type spooled struct {
	end   int64
	id    string
	out   bool   // an outcome (else a decision)
	state string // the call's status after it
	apply func(w *wtx) error
}

// spoolRecord is a record as stored: a decision (ctx set) or an outcome.
type spoolRecord struct {
	kind, id, status string
	at               int64
	body, ctx        []byte
}

func (r *spoolRecord) encode() []byte {
	b := make([]byte, 8, 8+len(r.body)+len(r.ctx)+len(r.id)+48)
	for _, f := range [][]byte{[]byte(r.kind), []byte(r.id), []byte(r.status), r.body, r.ctx} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendVarint(b, r.at)
	binary.LittleEndian.PutUint32(b, uint32(len(b)-8))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], crcTable))
	return b
}

func decodeSpoolRecord(p []byte) (spoolRecord, error) {
	var fs [5][]byte
	for i := range fs {
		n, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < n {
			return spoolRecord{}, errors.New("truncated field")
		}
		fs[i], p = p[k:k+int(n)], p[k+int(n):]
	}
	at, k := binary.Varint(p)
	if k <= 0 || k != len(p) {
		return spoolRecord{}, errors.New("bad time")
	}
	r := spoolRecord{kind: string(fs[0]), id: string(fs[1]), status: string(fs[2]), body: fs[3], ctx: fs[4], at: at}
	if r.kind != kindDecision && r.kind != kindOutcome || r.id == "" {
		return spoolRecord{}, fmt.Errorf("bad record %q of %q", r.kind, r.id)
	}
	return r, nil
}

// readSpool reads the complete records of f from offset from: their
// decodings and end offsets. It stops at a torn or corrupt record (err
// says which, for the log).
func readSpool(f *os.File, from int64) (recs []spoolRecord, ends []int64, err error) {
	br := bufio.NewReader(io.NewSectionReader(f, from, 1<<62))
	var hdr [8]byte
	at := from
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return recs, ends, nil
			}
			return recs, ends, fmt.Errorf("%w at offset %d", errTorn, at)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 {
			return recs, ends, nil // the zeros after the last record
		}
		if n > maxSpoolRecord {
			return recs, ends, fmt.Errorf("bad record length %d at offset %d", n, at)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return recs, ends, fmt.Errorf("%w at offset %d", errTorn, at)
		}
		if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return recs, ends, fmt.Errorf("record at offset %d fails its checksum", at)
		}
		r, err := decodeSpoolRecord(p)
		if err != nil {
			return recs, ends, fmt.Errorf("record at offset %d: %w", at, err)
		}
		at += 8 + int64(n)
		recs, ends = append(recs, r), append(ends, at)
	}
}

// spoolAppend makes rec durable in this process's spool and queues its
// import, apply being how the writer imports it.
func (s *Store) spoolAppend(rec *spoolRecord, state string, apply func(w *wtx) error) error {
	sp := s.spool
	if e := sp.failed.Load(); e != nil {
		return fmt.Errorf("audit: the spooled calls could not be imported into the log, so no call is recorded: %w", *e)
	}
	b := rec.encode()
	if len(b)-8 > maxSpoolRecord {
		return fmt.Errorf("audit: %s of %s is %d bytes, more than a spool record holds (%d)", rec.kind, rec.id, len(b), maxSpoolRecord)
	}
	// No decision goes in while the log is gone (each commit's check,
	// liveness.go); checked off the lock, so a closed store says so first.
	if rec.kind == kindDecision {
		sp.mu.Lock()
		closed := sp.closed
		sp.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if err := s.files.check(s.path); err != nil {
			return err
		}
	}
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return ErrClosed
	}
	if sp.f == nil {
		if err := s.createSpool(); err != nil {
			sp.mu.Unlock()
			return err
		}
	}
	switch cur, ok := sp.live[rec.id]; {
	case rec.kind == kindDecision && ok:
		sp.mu.Unlock()
		return fmt.Errorf("%w: begin %s: the call is already recorded (%s)", ErrState, rec.id, cur)
	case rec.kind == kindOutcome && ok && cur != toolgate.StatusStarted:
		sp.mu.Unlock()
		return errNotSpooled
	}
	// No record into a spool deleted meanwhile: it would be lost with
	// this process.
	err := sp.watch.check(func() error {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(sp.f.Fd()), &st); err != nil {
			return err
		}
		if st.Nlink == 0 {
			return &goneError{path: s.path, detail: "its spool " + sp.f.Name() + " was deleted"}
		}
		return nil
	})
	if err == nil {
		err = sp.put(b)
	}
	if err != nil {
		sp.mu.Unlock()
		return err
	}
	sp.size += int64(len(b))
	sp.pending = append(sp.pending, spooled{end: sp.size, id: rec.id, out: rec.kind == kindOutcome, state: state, apply: apply})
	sp.live[rec.id] = state
	n := len(sp.pending)
	sp.mu.Unlock()
	if !sp.queued.Swap(true) {
		s.queueImport()
	}
	if n == s.o.importBatch {
		s.wake()
	}
	return nil
}

// createSpool creates this process's spool, 0600, and takes its flock.
// Called with sp.mu held.
func (s *Store) createSpool() error {
	var id [8]byte
	_, _ = rand.Read(id[:])
	dir := s.path + SpoolSuffix
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit: create spool directory: %w", err)
	}
	if s.spool.watch == nil {
		s.spool.watch = watchDir(dir)
	}
	path := filepath.Join(dir, hex.EncodeToString(id[:]))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("audit: lock spool %s: %w", path, err)
	}
	s.spool.f, s.spool.name = f, filepath.Base(path)
	if err := s.spool.grow(spoolGrow); err != nil {
		s.spool.unmap()
		f.Close()
		os.Remove(path)
		return err
	}
	return nil
}

// grow allocates and maps at least n bytes of the spool's file. Called
// with sp.mu held.
func (sp *spool) grow(n int64) error {
	page := int64(os.Getpagesize())
	n = (n + page - 1) / page * page
	if err := allocate(sp.f, n); err != nil {
		return fmt.Errorf("audit: allocate spool %s: %w", sp.f.Name(), err)
	}
	m, err := syscall.Mmap(int(sp.f.Fd()), 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("audit: map spool %s: %w", sp.f.Name(), err)
	}
	sp.unmap()
	sp.m, sp.held = m, sp.size/page*page
	return nil
}

// put stores record b after the last one, its header last (see the top of
// this file), and lets go of the pages appended before the last
// spoolRelease step. A fault (the file cut short under the mapping, no
// space for a page) is an error, not a crash: nothing is appended. Called
// with sp.mu held.
func (sp *spool) put(b []byte) (err error) {
	if need := sp.size + int64(len(b)); need > int64(len(sp.m)) {
		if err := sp.grow(max(need, int64(len(sp.m))+spoolGrow)); err != nil {
			return err
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("audit: append to spool %s: %v", sp.f.Name(), r)
		}
	}()
	at := sp.size
	copy(sp.m[at+8:], b[8:])
	copy(sp.m[at:at+8], b[:8])
	if rel := (at + int64(len(b))) / spoolRelease * spoolRelease; rel > sp.held {
		_ = syscall.Madvise(sp.m[sp.held:rel], syscall.MADV_DONTNEED)
		sp.held = rel
	}
	return nil
}

// unmap drops the spool's mapping. Called with sp.mu held.
func (sp *spool) unmap() {
	if sp.m != nil {
		_ = syscall.Munmap(sp.m)
		sp.m = nil
	}
}

// importSpool chains this process's pending spooled records into the log,
// each staged for the projection, and records how far the spool is
// imported. An outcome of a call closed meanwhile (CloseInterrupted) is
// logged and skipped, as Finish refuses it (recover.go).
func (w *wtx) importSpool() error {
	sp := w.s.spool
	sp.queued.Store(false) // records appended from now on queue another import
	sp.mu.Lock()
	recs, name := sp.pending, sp.name
	sp.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	done, err := spoolOffset(w.ctx, w.s.conn, name)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.end <= done {
			continue // imported by another process (a reader catching up)
		}
		if err := r.apply(w); err != nil {
			if err := w.unfit(err, name, r.id); err != nil {
				return err
			}
			if w.skipped == nil {
				w.skipped = map[int64]error{}
			}
			w.skipped[r.end] = err
		}
	}
	w.spoolEnd = recs[len(recs)-1].end
	return w.setSpoolOffset(name, w.spoolEnd)
}

// unfit returns err, the error of importing call id's record from spool,
// unless the record does not fit the log (ErrState: an outcome of a call
// closed meanwhile, or not started; ErrNotFound: of no call), which it
// logs: the record is skipped, as Finish refuses such an outcome
// (recover.go).
func (w *wtx) unfit(err error, spool, id string) error {
	if !errors.Is(err, ErrState) && !errors.Is(err, ErrNotFound) {
		return err
	}
	w.s.o.Logger.Error("audit: spooled event does not fit the log; not recorded", "spool", spool, "call_id", id, "err", err)
	return nil
}

// spoolCommitted updates the spool's state after w committed: drops the
// records it imported, clears the failure, deletes the spools it emptied.
// Called with wmu held.
func (s *Store) spoolCommitted(w *wtx) {
	sp := s.spool
	for _, p := range w.removeSpools {
		s.removeSpool(p)
	}
	sp.scanDone = max(sp.scanDone, w.scanned)
	if w.spoolEnd == 0 {
		return
	}
	end := w.spoolEnd
	sp.failed.Store(nil)
	sp.busySince = time.Time{}
	sp.retry = 0
	sp.mu.Lock()
	defer sp.mu.Unlock()
	i := 0
	for ; i < len(sp.pending) && sp.pending[i].end <= end; i++ {
		r := sp.pending[i]
		if r.out || r.state != toolgate.StatusStarted {
			delete(sp.live, r.id) // nothing more comes for this call
		}
		if r.out {
			s.outcomeWritten(0, w.skipped[r.end]) // durable since its append
		}
	}
	sp.pending = append(sp.pending[:0], sp.pending[i:]...)
	if len(sp.pending) == 0 && sp.f != nil && sp.size >= s.o.spoolRotate {
		// Everything in it is in the log: the next append starts a new
		// spool rather than let this one grow with the process's life.
		s.removeSpool(sp.f.Name())
		sp.unmap()
		sp.f.Close()
		sp.f, sp.size = nil, 0
	}
}

// spoolFailed queues another import after a failed one, later after each
// failure in a row (see maxImportRetry). Until one
// succeeds, appends fail with err; when another process holds the log's
// lock, only once it has held it for WriteTimeout (the records are safe in
// the spool meanwhile; a write that needs the lock waits that long too).
// Called with wmu held, after the transaction rolled back.
func (s *Store) spoolFailed(err error) {
	sp := s.spool
	sp.mu.Lock()
	n := len(sp.pending)
	sp.mu.Unlock()
	if n == 0 {
		return
	}
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		now := time.Now()
		if sp.busySince.IsZero() {
			sp.busySince = now
		}
		if d := now.Sub(sp.busySince); d >= s.o.WriteTimeout {
			err = fmt.Errorf("%w (another process has held the log's lock for %v)", err, d.Truncate(time.Millisecond))
			sp.failed.Store(&err)
		}
	} else {
		sp.failed.Store(&err)
	}
	sp.queued.Store(true)
	sp.retry = min(max(2*sp.retry, s.o.importDelay), maxImportRetry)
	if sp.retryArmed.CompareAndSwap(false, true) {
		time.AfterFunc(sp.retry, func() {
			sp.retryArmed.Store(false)
			s.queueImport()
		})
	}
}

// queueImport queues a write whose transaction imports the spool (as every
// one does first), committed with the next waited-for write or importDelay
// later. The caller has set spool.queued.
func (s *Store) queueImport() {
	if _, arm, err := s.enqueue(newProjectionOp()); err == nil && arm {
		s.flush.Reset(s.o.importDelay)
	}
}

// spoolOffset is how far spool name is imported (0: not at all).
func spoolOffset(ctx context.Context, q querier, name string) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(imported), 0) FROM spools WHERE name = ?`, name).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: read spool offset: %w", err)
	}
	return n, nil
}

func (w *wtx) setSpoolOffset(name string, end int64) error {
	_, err := w.s.conn.ExecContext(w.ctx, `INSERT INTO spools (name, imported) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET imported = excluded.imported`, name, end)
	if err != nil {
		return fmt.Errorf("audit: record spool offset: %w", err)
	}
	return nil
}

// foreignSpools lists the spools of the log at path other than own.
func foreignSpools(path, own string) ([]string, error) {
	ents, err := os.ReadDir(path + SpoolSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: list spools: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if _, herr := hex.DecodeString(n); herr == nil && len(n) == 16 && n != own && e.Type().IsRegular() {
			out = append(out, n)
		}
	}
	return out, nil
}

// importForeign imports the complete records of every other process's
// spool, and marks for deletion (after the commit) each one fully imported
// whose owner is gone. Rows of spools whose file is gone are dropped.
func (w *wtx) importForeign() error {
	w.s.spool.mu.Lock()
	own := w.s.spool.name
	w.s.spool.mu.Unlock()
	names, err := foreignSpools(w.s.path, own)
	if err != nil {
		return err
	}
	dir := w.s.path + SpoolSuffix
	for _, name := range names {
		if err := w.importFile(filepath.Join(dir, name), name); err != nil {
			return err
		}
	}
	rows, err := w.s.conn.QueryContext(w.ctx, `SELECT name FROM spools`)
	if err != nil {
		return fmt.Errorf("audit: list spool offsets: %w", err)
	}
	var gone []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("audit: list spool offsets: %w", err)
		}
		if _, err := os.Lstat(filepath.Join(dir, n)); errors.Is(err, fs.ErrNotExist) && n != own {
			gone = append(gone, n)
		}
	}
	rows.Close()
	for _, n := range gone {
		if _, err := w.s.conn.ExecContext(w.ctx, `DELETE FROM spools WHERE name = ?`, n); err != nil {
			return fmt.Errorf("audit: drop spool offset: %w", err)
		}
	}
	return nil
}

// importFile imports the records of the spool at path after its recorded
// offset, decoded from the file: the decision's row is projected from the
// event as another process's would be.
func (w *wtx) importFile(path, name string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted by whoever imported it last
	}
	if err != nil {
		return fmt.Errorf("audit: open spool: %w", err)
	}
	defer f.Close()
	done, err := spoolOffset(w.ctx, w.s.conn, name)
	if err != nil {
		return err
	}
	recs, ends, rerr := readSpool(f, done)
	look := newCtxReader(w.ctx, w.s.conn).get
	for i := range recs {
		if err := w.unfit(w.applyRecord(&recs[i], look), name, recs[i].id); err != nil {
			return err
		}
	}
	if len(ends) > 0 {
		done = ends[len(ends)-1]
		if err := w.setSpoolOffset(name, done); err != nil {
			return err
		}
	}
	// The owner holds the flock while it runs: a record it is writing
	// may be incomplete, and more may come.
	ownerGone := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	switch {
	case !ownerGone:
	case rerr != nil && !errors.Is(rerr, errTorn):
		w.s.o.Logger.Error("audit: spool has an unreadable record; it and what follows are not imported, the file is kept", "spool", path, "err", rerr)
	default:
		if rerr != nil {
			// Its Begin or Finish never returned: nothing ran on it.
			w.s.o.Logger.Warn("audit: a dead process's spool ends in a torn record, dropped", "spool", path, "err", rerr)
		}
		w.removeSpools = append(w.removeSpools, path)
	}
	return nil
}

// applyRecord chains a spooled record read back from its file.
func (w *wtx) applyRecord(r *spoolRecord, look ctxLookup) error {
	if r.kind == kindDecision {
		e := &entryRow{e: Entry{ID: r.id}, body: r.body, ctxBody: r.ctx, at: r.at, status: r.status}
		if err := w.appendDecision(e, false); err != nil { // kept: see beginSpooled
			return err
		}
	} else {
		status, err := w.status(r.id)
		if err != nil {
			return err
		}
		if status != toolgate.StatusStarted {
			return fmt.Errorf("%w: finish %s: status is %s, not started", ErrState, r.id, status)
		}
		if err := w.appendBody(r.id, kindOutcome, r.at, r.body); err != nil {
			return err
		}
	}
	it, err := w.loadItem(w.head, look)
	if err != nil {
		return err
	}
	w.stage(it)
	return nil
}

// spoolsBehind reports whether a spool beside the log at path holds records
// the log lacks (by size: a torn tail counts until it is imported).
func spoolsBehind(ctx context.Context, db *sql.DB, path string) (bool, error) {
	names, err := foreignSpools(path, "")
	if err != nil || len(names) == 0 {
		return false, err
	}
	for _, n := range names {
		done, err := spoolOffset(ctx, db, n)
		if err != nil {
			return false, err
		}
		if recordAt(filepath.Join(path+SpoolSuffix, n), done) {
			return true, nil
		}
	}
	return false, nil
}

// recordAt reports whether the spool at path has a record (whole or torn)
// at offset off: a length there, not the zeros after the last one.
func recordAt(path string, off int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var n [4]byte
	k, _ := f.ReadAt(n[:], off)
	return k == len(n) && binary.LittleEndian.Uint32(n[:]) != 0 || k > 0 && k < len(n)
}

// removeSpool deletes a spool whose records are all in the log.
func (s *Store) removeSpool(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.o.Logger.Warn("audit: cannot delete an imported spool", "spool", path, "err", err)
	}
}

// on reports whether hot writes go to the spool (see Open).
func (sp *spool) on() bool { return sp != nil && !sp.off }

// hasPending reports whether records wait for their import; false for a
// store without a spool.
func (sp *spool) hasPending() bool {
	if sp == nil {
		return false
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.pending) > 0
}

// closeSpool removes this process's spool once everything in it is
// imported (Close, with wmu held after the last commit).
func (s *Store) closeSpool() {
	sp := s.spool
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.closed = true
	if sp.watch != nil {
		sp.watch.close()
	}
	if sp.f == nil {
		return
	}
	if len(sp.pending) == 0 {
		s.removeSpool(sp.f.Name())
	} else {
		s.o.Logger.Error("audit: spooled calls not imported at close; the next toolgate to open the log imports them", "spool", sp.f.Name(), "records", len(sp.pending))
	}
	sp.unmap()
	sp.f.Close()
	sp.f = nil
}
