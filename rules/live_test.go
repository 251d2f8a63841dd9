package rules

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/toolgatetest"
)

func TestLiveReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("version: 1\ndefault: allow\n")
	var logs toolgatetest.SyncBuffer
	l, err := NewLive(path, LiveOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	call := toolgate.Call{Tool: "x"}
	if d := l.Decide(context.Background(), call); d.Action != toolgate.Allow {
		t.Fatalf("initial: %+v", d)
	}
	v1 := l.Current().Version()

	write("version: 1\ndefault: deny\n")
	toolgatetest.Eventually(t, "reload to deny", func() bool { return l.Decide(context.Background(), call).Action == toolgate.Deny })
	v2 := l.Current().Version()
	if v2 == v1 {
		t.Fatal("version did not change")
	}

	write("version: 1\ndefault: allow\nrules:\n  - {name: broken, match: 'nope', action: allow}\n")
	toolgatetest.Eventually(t, "broken edit logged", func() bool { return strings.Contains(logs.String(), "undeclared reference to 'nope'") })
	if d := l.Decide(context.Background(), call); d.Action != toolgate.Deny || d.Version != v2 {
		t.Fatalf("broken edit replaced the rules: %+v", d)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	toolgatetest.Eventually(t, "missing file logged", func() bool { return strings.Contains(logs.String(), "unreadable") })
	if d := l.Decide(context.Background(), call); d.Action != toolgate.Deny {
		t.Fatalf("missing file replaced the rules: %+v", d)
	}
	write("version: 1\ndefault: review\n")
	toolgatetest.Eventually(t, "recovery", func() bool { return l.Decide(context.Background(), call).Action == toolgate.Review })
}

func TestLiveConcurrentDecisionsDuringReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	files := []string{"version: 1\ndefault: allow\n", "version: 1\ndefault: deny\n"}
	if err := os.WriteFile(path, []byte(files[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := NewLive(path, LiveOptions{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.Run(ctx) }()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if d := l.Decide(context.Background(), toolgate.Call{Tool: "x"}); d.Action != toolgate.Allow && d.Action != toolgate.Deny {
					t.Errorf("decision during reload: %+v", d)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if err := os.WriteFile(path, []byte(files[i%2]), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	wg.Wait()
}

func TestNewLive(t *testing.T) {
	if _, err := NewLive(filepath.Join(t.TempDir(), "missing.yaml"), LiveOptions{}); err == nil {
		t.Error("missing file: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLive(bad, LiveOptions{}); err == nil || !strings.Contains(err.Error(), "bad.yaml:1:10") {
		t.Errorf("broken file: %v", err)
	}
	l, err := NewLive("", LiveOptions{})
	if err != nil || l.Current() != Default() {
		t.Fatalf("no path: %v, %v", l, err)
	}
	own := mustParse(t, "version: 1\ndefault: deny\n")
	l, err = NewLive("", LiveOptions{Default: own})
	if err != nil || l.Current() != own {
		t.Fatalf("no path with Default: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Run(ctx) // returns at once
}

// OnLoad hears of every set put in force, with its source, and of no
// refused one.
func TestLiveOnLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	srcs := []string{"version: 1\ndefault: allow\n", "version: 1\nrules:\n  - {name: broken, match: 'nope', action: allow}\n", "version: 1\ndefault: deny\n"}
	if err := os.WriteFile(path, []byte(srcs[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		loaded []string
	)
	onLoad := func(s *Set) {
		mu.Lock()
		defer mu.Unlock()
		loaded = append(loaded, string(s.Source()))
	}
	got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(loaded) }
	var logs toolgatetest.SyncBuffer
	l, err := NewLive(path, LiveOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Interval: 5 * time.Millisecond, OnLoad: onLoad})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(path, []byte(srcs[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	toolgatetest.Eventually(t, "broken edit refused", func() bool { return strings.Contains(logs.String(), "rules file refused") })
	if err := os.WriteFile(path, []byte(srcs[2]), 0o600); err != nil {
		t.Fatal(err)
	}
	toolgatetest.Eventually(t, "reload to deny", func() bool { return len(got()) == 2 })
	if g := got(); g[0] != srcs[0] || g[1] != srcs[2] {
		t.Fatalf("OnLoad heard %q", g)
	}

	def, err := NewLive(DefaultName, LiveOptions{OnLoad: onLoad})
	if err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 3 || g[2] != string(DefaultSource()) || def.Current().Version() != Default().Version() {
		t.Fatalf("the embedded pack's load: %d loads", len(g))
	}
}
