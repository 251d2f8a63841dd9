package sandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// A mask holds a name, not a file: a secret file with another name (a hard
// link) is readable by that name, wherever it is. A run can make one to a
// file it creates (printf 'API_KEY=x\n' > .env; ln .env notes.txt) before
// the user puts the real secret in it in place (shell >, vim), and then
// read the secret as notes.txt. It cannot link a secret that is masked
// (link(2) from the /dev/null mount into the workspace fails with EXDEV).
// Where the other names are is not known without stat'ing every file of
// every filesystem a run mounts, so, as for a held file (linkedError), a
// masked secret file, or a file in a masked secret directory, with more
// names than the masks cover refuses every run that sees the workspace
// until the user acts, and the file tools refuse the other names by
// identity (LinkedSecret). The check costs an Lstat per masked file, and a walk of
// the masked directories (a few files each), at each run.

// ErrSecretLinked is returned by Command when a secret file of the
// workspace that the run would mask has other names (hard links): the
// run is refused rather than run with the secret readable by another name.
var ErrSecretLinked = errors.New("sandbox: a secret file of the workspace has another name (a hard link), " +
	"which would show its content to the command, so the command was not run")

// linkedSecret is a masked secret file with other names: its
// workspace-relative slash path and its number of names.
type linkedSecret struct {
	rel string
	n   uint64
}

// linkedSecrets returns, by identity, the regular files among files and
// under dirs (workspace-relative slash paths the walk found: secret files
// and directories to mask) that have a name they do not mask. It looks at no
// more than budget entries under dirs, and fails past them (the run is
// then refused), or when it cannot read one. No link is followed.
func (s *Sandbox) linkedSecrets(ctx context.Context, files, dirs []string, budget int) (map[fileID]linkedSecret, error) {
	if len(files) == 0 && len(dirs) == 0 {
		return nil, nil
	}
	root, err := os.OpenRoot(s.o.Workspace)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	out := map[fileID]linkedSecret{}
	masks := map[fileID]uint64{} // how many masked names each file has
	note := func(rel string, fi fs.FileInfo) {
		if !fi.Mode().IsRegular() || links(fi) < 2 {
			return
		}
		if id, ok := idOf(fi); ok {
			if _, dup := out[id]; !dup {
				out[id] = linkedSecret{rel: rel, n: links(fi)}
			}
			masks[id]++
		}
	}
	for _, rel := range files {
		fi, err := root.Lstat(filepath.FromSlash(rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed since the walk: nothing to mask, nothing to read
		case err != nil:
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		note(rel, fi)
	}
	left := budget
	for _, dir := range dirs {
		err := fs.WalkDir(root.FS(), dir, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if left--; left < 0 {
				return fmt.Errorf("its secret directories hold more files than toolgate looks at (%s is where it stopped) "+
					"to check them for other names (hard links)", name)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			note(name, fi)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// A file whose every name is masked (.env linked to env.key) shows
	// nothing by another name.
	maps.DeleteFunc(out, func(id fileID, l linkedSecret) bool { return masks[id] >= l.n })
	return out, nil
}

// linkedSecretError is ErrSecretLinked for linked (not empty), naming the
// first of its files and saying how the user gives it a name of its own.
func (s *Sandbox) linkedSecretError(linked map[fileID]linkedSecret) error {
	all := make([]linkedSecret, 0, len(linked))
	for _, l := range linked {
		all = append(all, l)
	}
	slices.SortFunc(all, func(a, b linkedSecret) int { return cmp.Compare(a.rel, b.rel) })
	first := all[0]
	p := filepath.Join(s.o.Workspace, filepath.FromSlash(first.rel))
	more := ""
	if len(all) > 1 {
		more = fmt.Sprintf(" (and %d more secret files)", len(all)-1)
	}
	return fmt.Errorf("%w: %s%s has %d hard links. The sandbox masks it by its name; another name for the same file "+
		"would show its content to the command (a command can link a file it created, before the user put a secret in it), "+
		"so no command that sees the workspace runs until the secret has one name. The other names hold the secret: the "+
		"user should find them (find %s -samefile %s lists those in the workspace) and remove the ones they did not make; "+
		"to keep one outside the workspace, give the secret a file of its own first (cp %s %s.new && mv %s.new %s)",
		ErrSecretLinked, first.rel, more, first.n, s.o.Workspace, p, p, p, p, p)
}

// LinkedSecret reports whether fi (of an open file, say) is, by identity,
// a secret file of the workspace that runs mask (Options.Secret), or a
// file in a masked secret directory, reached by another name (a hard
// link), and returns that secret's workspace-relative slash path. Only a
// regular file with more than one name is looked up, with a walk for the
// secrets as a run makes; when the walk fails, the error says why and the
// file should be refused.
func (s *Sandbox) LinkedSecret(ctx context.Context, fi fs.FileInfo) (string, error) {
	if s.o.Secret == nil || s.o.Workspace == "" || !fi.Mode().IsRegular() || links(fi) < 2 {
		return "", nil
	}
	id, ok := idOf(fi)
	if !ok {
		return "", nil
	}
	_, _, linked, err := s.secretsAndLinks(ctx)
	if err != nil {
		return "", err
	}
	if l, ok := linked[id]; ok {
		return l.rel, nil
	}
	return "", nil
}
