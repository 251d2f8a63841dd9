package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/web"
)

const uiUsage = `usage: toolgate ui [--db PATH] [--listen ADDR]

Serves the web UI (dashboard, audit browser, rule versions and the review
queue, without any way to act) read-only over an audit log, at
the address it prints. Nobody signs in: it listens on loopback only, and
the address carries a key made for this run, without which it shows
nothing (another local account, or a sandboxed command with the host's
network, can reach loopback too). To let a team review from a browser,
serve the UI with 'toolgate serve --http'.

--db defaults to $TOOLGATE_AUDIT_DB, else $XDG_STATE_HOME/toolgate/audit.db,
else ~/.local/state/toolgate/audit.db.`

// runUI is `toolgate ui`.
func runUI(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, uiUsage) }
	fs.String("db", "", "audit DB `path`")
	listen := fs.String("listen", "127.0.0.1:8766", "`ADDR` to listen on (loopback only)")
	pos, path, err := parseWithDB(fs, args, "ui", env)
	if path == "" {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: ui takes no arguments", errUsage)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	defer ln.Close()
	// The read-only UI shows the whole audit log to whoever connects.
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		return fmt.Errorf("%w: ui: --listen %s is not a loopback address; the read-only UI has no sign-in", errUsage, *listen)
	}
	st, err := audit.Open(ctx, path, audit.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	defer st.Close()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	key := make([]byte, 24)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	viewKey := base64.RawURLEncoding.EncodeToString(key)
	h, err := web.New(web.Options{Store: st, ReadOnly: true, ViewKey: viewKey, Logger: logger})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(web.Prefix, h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "toolgate ui: http://%s%sreviews?key=%s (read-only, %s)\n", ln.Addr(), web.Prefix, viewKey, path)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ui: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return nil
}
