package sandbox

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"
)

// A secret-named file whose exact content the workspace's git already
// holds, as a blob in .git/objects, is not masked: a run can read that
// content through .git anyway (git show HEAD:path, git cat-file), which
// it sees whole, so masking the working copy would protect nothing and
// only break what reads it (tests that load testdata/server.key, git
// add -A). The file's blob id is computed here, in toolgate's process,
// and looked up in the object store directly, not by running git: git
// would also look in the stores that objects/info/alternates names, and
// follow a symlink put in place of objects/pack or objects/ab, and both
// are writable in workspace-write, so its answer could come from a store
// outside the workspace that no run can read. The lookup goes through
// .git/objects opened without following a link on the way, and an
// os.Root on it, so every object it finds is one a run can read.
//
// A run cannot make toolgate unmask the real content of a secret: inside,
// the secret reads as empty, so no run can store its content as an
// object, nor (masks pin it) move it to another name. It can store a
// guessed content and see whether the file is then unmasked, which tells
// it only a content it already had in full. The store is trusted as git
// trusts it: a blob id no run knows cannot be planted.

// maxKnownBytes is the largest secret-named file whose content is
// hashed to look it up in git: a larger one stays masked. Fixtures are
// a few kilobytes; this bounds what a run can make toolgate read.
const maxKnownBytes = 1 << 20

// maxPacks bounds the pack indexes looked in; past it, objects in the
// others are not found (the files stay masked). git repacks at 50.
const maxPacks = 256

// blobSum is the blob id of a workspace file's content, and the file it
// was computed from: a later run reuses it while its stamp holds (seen is
// when it was hashed) and the file has the same size and modification
// time.
type blobSum struct {
	stamp
	size  int64
	mtime time.Time
	long  bool // a SHA-256 id
	sum   []byte
}

// fresh reports whether b still holds for fi, the file at its path now,
// in a repository whose ids are long (SHA-256) or not.
func (b blobSum) fresh(fi fs.FileInfo, long bool) bool {
	return b.long == long && fi.Size() == b.size && fi.ModTime().Equal(b.mtime) && b.holds(fi)
}

// objectStore is the workspace's .git/objects, open for lookups.
type objectStore struct {
	objects *os.Root
	long    bool // SHA-256 ids
	packs   []packIndex
}

// packIndex is one pack's index (version 2): its fan-out table and the
// sorted ids after it.
type packIndex struct {
	f      *os.File
	fanout [256]uint32
}

// openObjects opens the object store of the repository whose git
// directory is .git in the workspace ws. It returns nil when there is
// none (no .git directory, or a .git file naming a git directory
// elsewhere, which no run may be able to read) or it cannot be read: then
// nothing is found, and every secret stays masked.
func openObjects(ws *os.Root) *objectStore {
	cfg, err := readFile(ws, ".git/config", 1<<20)
	if err != nil {
		return nil
	}
	long, ok := objectFormat(cfg)
	if !ok {
		return nil
	}
	at, err := walk(ws, ".git/objects", false)
	if err != nil {
		return nil
	}
	defer at.dir.Close()
	if at.fi == nil || at.rel != ".git/objects" || !at.fi.IsDir() {
		return nil
	}
	objects, err := openDir(at.dir, at.name, at.fi)
	if err != nil {
		return nil
	}
	s := &objectStore{objects: objects, long: long}
	s.openPacks()
	return s
}

// openPacks opens the pack indexes in objects/pack whose pack exists and
// that read as version 2 indexes of the store's id length.
func (s *objectStore) openPacks() {
	d, err := s.objects.Open("pack")
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		stem, ok := strings.CutSuffix(name, ".idx")
		if !ok || !strings.HasPrefix(stem, "pack-") || len(s.packs) == maxPacks {
			continue
		}
		if fi, err := s.objects.Lstat("pack/" + stem + ".pack"); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if p, ok := s.openIndex("pack/" + name); ok {
			s.packs = append(s.packs, p)
		}
	}
}

func (s *objectStore) openIndex(name string) (packIndex, bool) {
	f, err := s.objects.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return packIndex{}, false
	}
	p := packIndex{f: f}
	var head [8 + 256*4]byte
	fi, err := f.Stat()
	if err == nil && fi.Mode().IsRegular() {
		_, err = f.ReadAt(head[:], 0)
	}
	if err != nil || !bytes.Equal(head[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		f.Close()
		return packIndex{}, false
	}
	for i := range p.fanout {
		p.fanout[i] = binary.BigEndian.Uint32(head[8+4*i:])
		if i > 0 && p.fanout[i] < p.fanout[i-1] {
			f.Close()
			return packIndex{}, false
		}
	}
	// Ids, CRCs and offsets, then 8-byte offsets (at most one per
	// object), then two checksums: an index of another size is not one.
	n, h := int64(p.fanout[255]), int64(s.idLen())
	rest := fi.Size() - int64(len(head)) - n*(h+8) - 2*h
	if rest < 0 || rest%8 != 0 || rest/8 > n {
		f.Close()
		return packIndex{}, false
	}
	return p, true
}

func (s *objectStore) idLen() int {
	if s.long {
		return sha256.Size
	}
	return sha1.Size
}

// has reports whether the store holds an object with id sum: a loose
// object file, or an entry in one of the pack indexes.
func (s *objectStore) has(sum []byte) bool {
	if len(sum) != s.idLen() {
		return false
	}
	x := hex.EncodeToString(sum)
	if fi, err := s.objects.Lstat(x[:2] + "/" + x[2:]); err == nil && fi.Mode().IsRegular() {
		return true
	}
	for _, p := range s.packs {
		if p.has(sum) {
			return true
		}
	}
	return false
}

// has binary-searches the index's ids that start with sum's first byte.
func (p packIndex) has(sum []byte) bool {
	lo, hi := uint32(0), p.fanout[sum[0]]
	if sum[0] > 0 {
		lo = p.fanout[sum[0]-1]
	}
	id := make([]byte, len(sum))
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := p.f.ReadAt(id, int64(8+256*4)+int64(mid)*int64(len(sum))); err != nil {
			return false
		}
		switch c := bytes.Compare(id, sum); {
		case c == 0:
			return true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

func (s *objectStore) Close() {
	for _, p := range s.packs {
		p.f.Close()
	}
	s.objects.Close()
}

// objectFormat reads extensions.objectFormat from a repository's config
// and reports whether its ids are SHA-256 (long); ok is false for a
// format it does not know.
func objectFormat(cfg []byte) (long, ok bool) {
	section, format := "", "sha1"
	for line := range strings.Lines(string(cfg)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return false, false
			}
			section = strings.ToLower(strings.TrimSpace(line[1:end]))
			line = strings.TrimSpace(line[end+1:])
		}
		if section != "extensions" {
			continue
		}
		key, value, _ := strings.Cut(line, "=")
		if strings.ToLower(strings.TrimSpace(key)) != "objectformat" {
			continue
		}
		value, _, _ = strings.Cut(value, "#")
		value, _, _ = strings.Cut(value, ";")
		format = strings.ToLower(strings.Trim(strings.TrimSpace(value), `"`))
	}
	switch format {
	case "sha1":
		return false, true
	case "sha256":
		return true, true
	}
	return false, false
}

// blobID returns the blob id of the content of regular file name in dir,
// which Lstat saw as fi: git's hash of "blob SIZE\0" and the content. It
// fails for a file over maxKnownBytes, and for one that is not the file
// Lstat saw, or that changed while it was read.
func blobID(dir *os.Root, name string, fi fs.FileInfo, long bool) ([]byte, error) {
	if fi.Size() > maxKnownBytes {
		return nil, fmt.Errorf("over %d bytes", maxKnownBytes)
	}
	f, err := dir.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if got, err := f.Stat(); err != nil || !os.SameFile(fi, got) || !sameContent(fi, got) {
		return nil, errChanged
	}
	var h hash.Hash = sha1.New()
	if long {
		h = sha256.New()
	}
	fmt.Fprintf(h, "blob %d\x00", fi.Size())
	n, err := io.Copy(h, io.LimitReader(f, fi.Size()+1))
	if err != nil {
		return nil, err
	}
	if got, err := f.Stat(); err != nil || n != fi.Size() || !sameContent(fi, got) {
		return nil, errChanged
	}
	return h.Sum(nil), nil
}

// sameContent reports whether two stats of one regular file show the
// same size and modification and change times: no write in between.
func sameContent(a, b fs.FileInfo) bool {
	ca, okA := changeTime(a)
	cb, okB := changeTime(b)
	return okA && okB && a.Mode().IsRegular() && b.Mode().IsRegular() && a.Size() == b.Size() &&
		a.ModTime().Equal(b.ModTime()) && ca.Equal(cb)
}

// readFile reads the regular workspace file rel (not through a symlink),
// up to max bytes.
func readFile(ws *os.Root, rel string, max int64) ([]byte, error) {
	at, err := walk(ws, rel, false)
	if err != nil {
		return nil, err
	}
	defer at.dir.Close()
	if at.fi == nil || at.rel != rel || !at.fi.Mode().IsRegular() || at.fi.Size() > max {
		return nil, errors.New("not a regular file of at most the size allowed")
	}
	f, err := at.dir.OpenFile(at.name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if got, err := f.Stat(); err != nil || !os.SameFile(at.fi, got) {
		return nil, errChanged
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// unheld returns those of files (the workspace-relative secret files the
// walk found) whose content the workspace's git does not hold: the ones
// to mask. All of them when there is no object store to look in.
func (s *Sandbox) unheld(files []string) []string {
	out, _ := s.unheldIn(files)
	return out
}

// unheldIn is unheld, and says how many files it hashed: the others'
// blob ids were the last walk's, which it keeps for the next.
func (s *Sandbox) unheldIn(files []string) (out []string, hashed int) {
	if len(files) == 0 {
		return files, 0
	}
	root, err := os.OpenRoot(s.o.Workspace)
	if err != nil {
		return files, 0
	}
	defer root.Close()
	store := openObjects(root)
	if store == nil {
		return files, 0
	}
	defer store.Close()
	s.walkMu.Lock()
	prev := s.sums
	s.walkMu.Unlock()
	next := make(map[string]blobSum, len(files))
	now := s.now()
	for _, rel := range files {
		b, ok := sumOf(root, rel, store.long, prev, now)
		if ok {
			next[rel] = b
			if b.seen.Equal(now) {
				hashed++
			}
		}
		if !ok || !store.has(b.sum) {
			out = append(out, rel)
		}
	}
	s.walkMu.Lock()
	s.sums = next
	s.walkMu.Unlock()
	return out, hashed
}

// held reports whether the content of secret file rel is in the
// workspace's git, for the file tools.
func (s *Sandbox) held(root *os.Root, rel string) bool {
	store := openObjects(root)
	if store == nil {
		return false
	}
	defer store.Close()
	s.walkMu.Lock()
	prev := s.sums
	s.walkMu.Unlock()
	b, ok := sumOf(root, rel, store.long, prev, s.now())
	return ok && store.has(b.sum)
}

// sumOf returns the blob id of the regular workspace file rel (the name
// itself no symlink), from prev while it holds; ok is false for a file
// that cannot be hashed (see blobID). A directory on the way may have
// become a symlink since the walk: the file it leads to, in the
// workspace, is the one hashed, and the one a run finds there.
func sumOf(root *os.Root, rel string, long bool, prev map[string]blobSum, now time.Time) (blobSum, bool) {
	fi, err := root.Lstat(rel)
	if err != nil || !fi.Mode().IsRegular() {
		return blobSum{}, false
	}
	if b, ok := prev[rel]; ok && b.fresh(fi, long) {
		return b, true
	}
	st, ok := stampOf(fi, now)
	if !ok {
		return blobSum{}, false
	}
	sum, err := blobID(root, rel, fi, long)
	if err != nil {
		return blobSum{}, false
	}
	return blobSum{stamp: st, size: fi.Size(), mtime: fi.ModTime(), long: long, sum: sum}, true
}
