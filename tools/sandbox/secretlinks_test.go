package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkspaceSecretLinkedRefusesRun: a masked secret file, or a file in a
// masked secret directory, with another name (in the workspace or outside
// it) refuses every run that sees the workspace, naming the secret, and
// the file tools' check (LinkedSecret) finds the other name by identity;
// a linked file that is no secret, and a secret of one name, do neither.
func TestWorkspaceSecretLinkedRefusesRun(t *testing.T) {
	for _, tc := range []struct {
		name, secret, other string // other is relative to the workspace's parent
	}{
		{"a secret file linked in the workspace", ".env", "ws/notes.txt"},
		{"a secret file linked outside the workspace", "deep/a/b/c/Server.KEY", "elsewhere.txt"},
		{"a file in a secret directory", "sub/.aws/credentials", "ws/sub/creds.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSecretsFixture(t)
			other := filepath.Join(f.base, tc.other)
			if err := os.Link(filepath.Join(f.ws, tc.secret), other); err != nil {
				t.Fatal(err)
			}
			for _, profile := range []string{ReadOnly, WorkspaceWrite, "reads-sub"} {
				_, err := f.sb.Command(t.Context(), profile, "", []string{"/bin/sh", "-c", "touch ran"})
				if !errors.Is(err, ErrSecretLinked) || !strings.Contains(err.Error(), tc.secret+" has 2 hard links") {
					t.Errorf("%s: Command: %v; want ErrSecretLinked naming %s", profile, err, tc.secret)
				}
			}
			fi, err := os.Stat(other)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := f.sb.LinkedSecret(t.Context(), fi); got != tc.secret || err != nil {
				t.Errorf("LinkedSecret(%s) = %q, %v; want %q", tc.other, got, err, tc.secret)
			}
			if err := os.Remove(other); err != nil {
				t.Fatal(err)
			}
			if out, code := f.run(t, ReadOnly, "cat .env; echo ran"); code != 0 || !strings.Contains(out, "ran") || strings.Contains(out, "SECRET-") {
				t.Errorf("with the other name gone (exit %d):\n%s", code, out)
			}
		})
	}
	t.Run("no secret", func(t *testing.T) {
		f := newSecretsFixture(t)
		if err := os.Link(filepath.Join(f.ws, "sub", "notes.txt"), filepath.Join(f.ws, "notes2.txt")); err != nil {
			t.Fatal(err)
		}
		if out, code := f.run(t, ReadOnly, "cat notes2.txt"); code != 0 || !strings.Contains(out, "NOTES-VISIBLE") {
			t.Errorf("a linked file that is no secret (exit %d):\n%s", code, out)
		}
		for _, rel := range []string{"notes2.txt", ".env"} {
			fi, err := os.Stat(filepath.Join(f.ws, rel))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := f.sb.LinkedSecret(t.Context(), fi); got != "" || err != nil {
				t.Errorf("LinkedSecret(%s) = %q, %v; want none", rel, got, err)
			}
		}
	})
}
