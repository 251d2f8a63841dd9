package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/toolgate/toolgate/toolgatetest"
)

// TestDefaultPackFollowsLinks: server-filesystem runs unsandboxed and
// follows links inside its directory, here the workspace. Under the
// embedded default rules an agent's sandboxed command may make a link
// (ln -s .git/hooks hk, one to .env by a computed name), but writing a hook through the
// first with server-filesystem is refused as the write of .git/hooks it
// is, and reading .env through the second as the read of .env: nothing is
// written, nothing secret comes back, and each refusal names its link.
func TestDefaultPackFollowsLinks(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, allowAll)
	mustMkdir(t, filepath.Join(fx.wsDir, ".git", "hooks"))
	writeFSConfig(t, fx, fx.wsDir, filepath.Join(fx.dir, "audit.db"))
	c := goStdio(t, fx)
	linkRace(t, fx, c)
	// Naming .env is denied; computing the name is allowed in the sandbox.
	mustMkdir(t, filepath.Join(fx.wsDir, "sub"))
	for _, cmd := range []string{"ln -s .git/hooks hk", `ln -s "$(printf .e)nv" notes`, "ln -s .git/hooks caf\u00e9",
		"ln -s sub d", `cd sub && ln -s "$(printf ../.e)nv" n`,
		// Names in mixed normalization, and with the Kelvin sign: the
		// server finds each by its NFC form.
		`ln -s .git/hooks "$(printf 'e\314\201\303\251')"`, `ln -s "$(printf .e)nv" "$(printf 'n\303\251e\314\201')"`,
		`ln -s .git/hooks "$(printf '\342\204\252ey')"`} {
		if text, isErr := goCall(t, c, toolWSRun, map[string]any{"command": cmd}); isErr {
			t.Fatalf("%s: %q", cmd, text)
		}
	}
	// The link by name, by its name in another normalization or in NFC
	// (server-filesystem finds both), and paths the server cleans before
	// it opens them: one with a newline in a name .. takes away, one past
	// PATH_MAX until ./ are taken away.
	for _, p := range []string{"hk/pre-commit", "cafe\u0301/pre-commit", "\u00e9\u00e9/pre-commit", "Key/pre-commit",
		"x\n/../hk/pre-commit", strings.Repeat("./", 2100) + "hk/pre-commit"} {
		text, isErr := goCall(t, c, "fs__write_file", map[string]any{"path": fx.wsDir + "/" + p, "content": "#!/bin/sh\necho pwned\n"})
		if !isErr || !strings.Contains(text, "is a link to") || !strings.Contains(text, "deny-persistence-writes") {
			t.Errorf("write %.40q: %.300q (isError %v), want the pack's refusal naming the link", p, text, isErr)
		}
		if _, err := os.Stat(filepath.Join(fx.wsDir, ".git", "hooks", "pre-commit")); err == nil {
			t.Fatalf("a git hook was written through %.40q", p)
		}
	}
	// A link, a link reached through another, one named in NFC, and one
	// through a cleaned path.
	for _, p := range []string{"notes", "d/n", "n\u00e9\u00e9", "x\n/../notes"} {
		text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": fx.wsDir + "/" + p})
		if !isErr || strings.Contains(text, "not-for-agents") || !strings.Contains(text, "deny-secret-paths") {
			t.Errorf("read %s: %q (isError %v), want the pack's refusal", p, text, isErr)
		}
	}
	if text, isErr := goCall(t, c, toolFSRead, map[string]any{"path": filepath.Join(fx.wsDir, "note.txt")}); isErr || text != wsText {
		t.Errorf("a plain read: %q (isError %v)", text, isErr)
	}
}

// linkRace: a command swaps hk between links to safe/ and to .git/hooks as
// fast as it can while the agent sends writes of hk/race-N through
// server-filesystem (the command computes the name, as the rules cannot
// read it). Checked when hk led to safe/, a write would land in
// the hooks if hk changed before the server opened it; toolgate holds
// such calls until the command has ended, so every write lands in safe/.
func linkRace(t *testing.T, fx *fixture, c *client.Client) {
	mustMkdir(t, filepath.Join(fx.wsDir, "safe"))
	swap := `python3 -c "
import os, time
open('swapping', 'w').close()
end, i = time.time() + 2, 0
while time.time() < end:
    os.symlink(('safe', '.g' + 'it/hooks')[i % 2], '.t%d' % i)
    os.replace('.t%d' % i, 'hk')
    i += 1
os.symlink('safe', '.t')
os.replace('.t', 'hk')
print(i, 'swaps')"`
	ran := make(chan string, 1)
	go func() {
		text, _, err := goCallErr(context.Background(), c, toolWSRun, map[string]any{"command": swap})
		if err != nil {
			text = err.Error()
		}
		ran <- text
	}()
	toolgatetest.Eventually(t, "the command to start swapping", func() bool {
		_, err := os.Stat(filepath.Join(fx.wsDir, "swapping"))
		return err == nil
	})
	const writes = 40
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			path := filepath.Join(fx.wsDir, "hk", fmt.Sprintf("race-%d", i))
			text, isErr, err := goCallErr(context.Background(), c, "fs__write_file", map[string]any{"path": path, "content": "#!/bin/sh\necho pwned\n"})
			if err != nil || isErr {
				t.Errorf("write %s: %q (isError %v, %v)", path, text, isErr, err)
			}
		})
		time.Sleep(time.Millisecond) // spread over the swaps
	}
	wg.Wait()
	if text := <-ran; !strings.Contains(text, "swaps") {
		t.Fatalf("the swapping command: %q", text)
	}
	hooks, _ := filepath.Glob(filepath.Join(fx.wsDir, ".git", "hooks", "race-*"))
	safe, _ := filepath.Glob(filepath.Join(fx.wsDir, "safe", "race-*"))
	if len(hooks) != 0 || len(safe) != writes {
		t.Errorf("%d writes landed in .git/hooks and %d in safe/, want 0 and %d", len(hooks), len(safe), writes)
	}
	if err := os.Remove(filepath.Join(fx.wsDir, "hk")); err != nil {
		t.Fatal(err)
	}
}

// TestLinksThroughHome: server-filesystem expands a leading ~ to its home,
// which toolgate passes on; with the workspace under the home, a write
// of ~/ws/hk/pre-commit through a link hk to .git/hooks is refused as the
// hook write it is, like the same write by the full path.
func TestLinksThroughHome(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, allowAll)
	mustMkdir(t, filepath.Join(fx.wsDir, ".git", "hooks"))
	if err := os.Symlink(".git/hooks", filepath.Join(fx.wsDir, "hk")); err != nil {
		t.Fatal(err)
	}
	writeFSConfig(t, fx, fx.wsDir, filepath.Join(fx.dir, "audit.db"))
	stderr := &toolgatetest.SyncBuffer{}
	logOnFailure(t, "toolgate serve (HOME above the workspace)", stderr)
	c := goConnect(t, transport.NewStdioWithOptions(harness.bin, []string{"HOME=" + fx.dir}, []string{"serve", "--config", fx.config},
		transport.WithCommandStderrWriter(stderr)))
	rel, err := filepath.Rel(fx.dir, fx.wsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"~/" + rel + "/hk/pre-commit", filepath.Join(fx.wsDir, "hk", "pre-commit")} {
		text, isErr := goCall(t, c, "fs__write_file", map[string]any{"path": p, "content": "#!/bin/sh\necho pwned\n"})
		if !isErr || !strings.Contains(text, "is a link to") {
			t.Errorf("write %s: %q (isError %v), want the refusal naming the link", p, text, isErr)
		}
		if _, err := os.Stat(filepath.Join(fx.wsDir, ".git", "hooks", "pre-commit")); err == nil {
			t.Fatalf("a git hook was written through %s", p)
		}
	}
}

// TestFenceOutlivesAStalledServer (attack round 22): server-filesystem
// does its file work on four threads, and opening a FIFO to read blocks
// one until someone opens it to write. So an agent can stall the server
// with four reads and cancel them, send a write through a link to a plain
// directory, which queues behind them, cancel it too, and have a command
// swap the link to .git/hooks and open the FIFOs: the queued write would
// land in the hooks after toolgate had let the link go (it did). A call
// given up on without the server's answer stops a stdio server before its
// links are let go, so nothing lands there.
func TestFenceOutlivesAStalledServer(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, allowAll)
	mustMkdir(t, filepath.Join(fx.wsDir, ".git", "hooks"))
	db := filepath.Join(fx.dir, "audit.db")
	writeFSConfig(t, fx, fx.wsDir, db)
	c := goStdio(t, fx)
	setup := `mkdir safe && ln -s safe hk && python3 -c "import os; [os.mkfifo(f) for f in ('f1', 'f2', 'f3', 'f4')]"`
	if text, isErr := goCall(t, c, toolWSRun, map[string]any{"command": setup}); isErr {
		t.Fatalf("%s: %s", setup, text)
	}
	var wg sync.WaitGroup
	stall, cancelStall := context.WithCancel(context.Background())
	for _, f := range []string{"f1", "f2", "f3", "f4"} {
		wg.Go(func() { goCallErr(stall, c, toolFSRead, map[string]any{"path": filepath.Join(fx.wsDir, f)}) })
	}
	time.Sleep(time.Second) // the reads reach the server and block its threads
	cancelStall()
	wg.Wait()
	write, cancelWrite := context.WithCancel(context.Background())
	wg.Go(func() {
		goCallErr(write, c, "fs__write_file", map[string]any{"path": filepath.Join(fx.wsDir, "hk", "pre-commit"), "content": "#!/bin/sh\necho pwned\n"})
	})
	time.Sleep(4 * time.Second) // the write is forwarded, and queued behind the reads
	cancelWrite()
	wg.Wait()
	swap := `rm hk && ln -s "$(printf .g)it/hooks" hk && for f in f1 f2 f3 f4; do (timeout 5 sh -c "echo x > $f" &); done; sleep 3`
	if text, isErr := goCall(t, c, toolWSRun, map[string]any{"command": swap}); isErr {
		t.Fatalf("%s: %s", swap, text)
	}
	if b, err := os.ReadFile(filepath.Join(fx.wsDir, ".git", "hooks", "pre-commit")); err == nil {
		t.Fatalf("the write queued on the stalled server landed in .git/hooks: %q", b)
	}
}
