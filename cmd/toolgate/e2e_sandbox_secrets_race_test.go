package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadFileChecksWhatItOpened: a path longer than PATH_MAX cannot be
// resolved ahead (filepath.EvalSymlinks fails), while os.Root opens it one
// name at a time and follows its last link to .env: read_file refuses it
// by the file it opened.
func TestReadFileChecksWhatItOpened(t *testing.T) {
	f := wsSecretsSetup(t, "")
	f.c, _, f.stderr = startStdio(t, f.defaultPackConfig(t), f.env()...)
	const depth = 18
	name := strings.Repeat("d", 250)
	script := "import os\nfor _ in range(" + "18" + "):\n  os.mkdir('" + name + "'); os.chdir('" + name + "')\n" +
		"os.symlink('../'*18+'.e'+'nv','x')\nprint('ok')\n"
	res, err := callTool(t.Context(), f.c, "workspace__write_file", map[string]any{"path": "mk.py", "content": script}, "")
	if err != nil || res.IsError {
		t.Fatalf("write_file: %v %s", err, resultText(res))
	}
	out, _ := f.run(t, "python3 mk.py")
	t.Logf("run: %s", out)
	p := strings.Repeat(name+"/", depth) + "x"
	r, err := callTool(t.Context(), f.c, "workspace__read_file", map[string]any{"path": p}, "")
	if err != nil {
		t.Fatal(err)
	}
	if txt := resultText(r); strings.Contains(txt, "WS-DOTENV-SECRET") || !r.IsError {
		t.Errorf("read_file through a path of %d characters to .env = %q, want it refused", len(p), txt)
	}
}

// TestReadFileSymlinkRace: read_file checks a path, then opens it; a
// command running meanwhile flips a symlink between a harmless file and
// .env. What was opened is checked too, so .env is never returned.
func TestReadFileSymlinkRace(t *testing.T) {
	f := wsSecretsSetup(t, "")
	if err := os.WriteFile(filepath.Join(f.ws, "README"), []byte("harmless\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := f.defaultPackConfig(t)
	f.c, _, f.stderr = startStdio(t, cfg, f.env()...)
	// flipper written by write_file, so no command names .env
	script := "import os,time\nn='.e'+'nv'\nend=time.time()+8\nwhile time.time()<end:\n  for t in ('README',n):\n    try: os.unlink('x.tmp')\n    except OSError: pass\n    os.symlink(t,'x.tmp'); os.rename('x.tmp','x')\n"
	res, err := callTool(t.Context(), f.c, "workspace__write_file", map[string]any{"path": "flip.py", "content": script}, "")
	if err != nil || res.IsError {
		t.Fatalf("write_file: %v %s", err, resultText(res))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r, err := callTool(ctx, f.c, "workspace__run_command", map[string]any{"command": "python3 flip.py"}, "")
		if err != nil {
			t.Logf("run: %v", err)
			return
		}
		t.Logf("run: %s", resultText(r))
	}()
	time.Sleep(2 * time.Second)
	got, refused, other := 0, 0, 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r, err := callTool(t.Context(), f.c, "workspace__read_file", map[string]any{"path": "x"}, "")
		if err != nil {
			t.Fatal(err)
		}
		txt := resultText(r)
		switch {
		case strings.Contains(txt, "WS-DOTENV-SECRET"):
			got++
		case r.IsError:
			refused++
		default:
			other++
		}
	}
	wg.Wait()
	if got > 0 || other == 0 {
		t.Errorf("read_file of a flipping symlink: .env returned %d times, refused %d, the harmless file %d; want never .env", got, refused, other)
	}
}
