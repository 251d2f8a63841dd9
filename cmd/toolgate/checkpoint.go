package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/review"
)

// publishTimeout bounds one webhook POST of a checkpoint.
const publishTimeout = 10 * time.Second

// checkpointer signs checkpoints of the audit log's chain head and
// publishes them outside the log.
type checkpointer struct {
	st      *audit.Store
	key     ed25519.PrivateKey
	targets []string
	client  *http.Client
	logger  *slog.Logger
}

// checkpointTargets is where checkpoints are published for c: its Publish
// list, or the file checkpoints.jsonl beside the key.
func checkpointTargets(c config.Checkpoint) []string {
	if len(c.Publish) > 0 {
		return c.Publish
	}
	return []string{filepath.Join(filepath.Dir(c.KeyFile), "checkpoints.jsonl")}
}

// newCheckpointer loads c's key and checks its targets: a key that cannot
// be read, or a target toolgate cannot publish to, stops start-up (fail
// closed: the operator asked for anchoring and would not get it).
func newCheckpointer(st *audit.Store, c config.Checkpoint, logger *slog.Logger) (*checkpointer, error) {
	key, err := audit.LoadPrivateKey(c.KeyFile)
	if err != nil {
		return nil, err
	}
	targets := checkpointTargets(c)
	for _, t := range targets {
		if t == "slack" {
			return nil, errors.New("audit.checkpoint.publish: slack is not supported yet; publish to a file or a webhook")
		}
		if strings.Contains(t, "://") && !strings.HasPrefix(t, "http://") && !strings.HasPrefix(t, "https://") {
			return nil, fmt.Errorf("audit.checkpoint.publish: %s: only http(s) webhooks and file paths are supported", t)
		}
	}
	return &checkpointer{st: st, key: key, targets: targets, client: &http.Client{Timeout: publishTimeout}, logger: logger}, nil
}

// checkpoint signs one checkpoint and publishes it to every target. The
// checkpoint is stored in the log even when publishing fails (the error
// names the targets that failed).
func (c *checkpointer) checkpoint(ctx context.Context) (*audit.Checkpoint, error) {
	cp, err := c.st.Checkpoint(ctx, c.key)
	if err != nil {
		return nil, err
	}
	line, err := json.Marshal(cp)
	if err != nil {
		return cp, err
	}
	var errs []error
	for _, t := range c.targets {
		if err := c.publish(ctx, t, line); err != nil {
			errs = append(errs, fmt.Errorf("publish checkpoint to %s: %w", t, err))
		}
	}
	return cp, errors.Join(errs...)
}

func (c *checkpointer) publish(ctx context.Context, target string, line []byte) error {
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(append(line, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(line))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// start writes a checkpoint every interval until the returned stop is
// called; stop writes a last one (the head at shutdown) and waits.
func (c *checkpointer) start(ctx context.Context, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.logged(ctx)
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*publishTimeout)
		defer cancel()
		c.logged(ctx)
	}
}

func (c *checkpointer) logged(ctx context.Context) {
	cp, err := c.checkpoint(ctx)
	if err != nil {
		c.logger.Error("audit checkpoint", "err", err)
	}
	if cp != nil {
		c.logger.Info("audit checkpoint signed", "seq", cp.Seq, "head", cp.Head, "calls", cp.Calls)
	}
}

const keygenUsage = `usage: toolgate audit keygen --out FILE
writes a new Ed25519 key pair for signing audit checkpoints: the private key
to FILE (mode 0600; keep it where no sandbox profile can write) and the
public key to FILE.pub; prints the public key. Never overwrites a file.`

// runKeygen is `toolgate audit keygen`.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, keygenUsage); fs.PrintDefaults() }
	out := fs.String("out", "", "private key `file` to write")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: audit keygen: %v", errUsage, err)
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: audit keygen takes --out FILE and no arguments", errUsage)
	}
	pub, err := audit.GenerateKey(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (mode 0600)\npublic key:  %s.pub\nkey id:      %s\npublic key (base64): %s\n",
		*out, *out, audit.KeyID(pub), base64.StdEncoding.EncodeToString(pub))
	return nil
}

const checkpointUsage = `usage: toolgate audit checkpoint [--config FILE] [--key FILE] [--publish TARGET] [--db PATH]
signs a checkpoint of the audit log's chain head now, stores it in the log
and publishes it (to the config's audit.checkpoint.publish targets, or
--publish: a file to append to or an http(s) webhook URL; default
checkpoints.jsonl beside the key). Prints the checkpoint as JSON.`

// runCheckpoint is `toolgate audit checkpoint`.
func runCheckpoint(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit checkpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, checkpointUsage); fs.PrintDefaults() }
	configPath := fs.String("config", "", "config `file` (default $"+envConfig+")")
	keyFile := fs.String("key", "", "private key `file` (overrides audit.checkpoint.key_file)")
	publish := fs.String("publish", "", "publish to `TARGET` (overrides audit.checkpoint.publish)")
	db := fs.String("db", "", "audit DB `path` (overrides audit.path)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: audit checkpoint: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: audit checkpoint takes no arguments", errUsage)
	}
	cfg := config.Default()
	if p := *configPath; p != "" || env.Getenv(envConfig) != "" {
		if p == "" {
			p = env.Getenv(envConfig)
		}
		var err error
		if cfg, err = config.Load(p); err != nil {
			return err
		}
	}
	c := cfg.Audit.Checkpoint
	if *keyFile != "" {
		c.KeyFile = *keyFile
	}
	if *publish != "" {
		c.Publish = []string{*publish}
	}
	if c.KeyFile == "" {
		return fmt.Errorf("%w: audit checkpoint: no key: pass --key or set audit.checkpoint.key_file", errUsage)
	}
	if *db == "" {
		*db = configDB(cfg.Audit, env)
	}
	st, err := openExistingDB(ctx, *db, env, 0)
	if err != nil {
		return err
	}
	defer st.Close()
	cp, err := newCheckpointer(st, c, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	got, err := cp.checkpoint(ctx)
	if got != nil {
		line, _ := json.Marshal(got)
		fmt.Fprintln(stdout, string(line))
	}
	return err
}

// verifyCheckpoints is `toolgate audit verify --checkpoints FILE --pubkey FILE`.
func (c *auditCmd) verifyCheckpoints(ctx context.Context) error {
	if c.pubkey == "" {
		return fmt.Errorf("%w: audit verify --checkpoints needs --pubkey FILE (the key the checkpoints must be signed with)", errUsage)
	}
	pub, err := audit.LoadPublicKey(c.pubkey)
	if err != nil {
		return err
	}
	var cps []*audit.Checkpoint
	if c.checkpoints == "" {
		// The log's own copies: signed, so not forgeable, but whoever
		// rewrites the log can delete or trim them with it.
		if cps, err = c.st.Checkpoints(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.stderr, "note: checking the checkpoints stored in the log itself; pass --checkpoints FILE (a published copy) to prove it was not rewritten with them")
	} else {
		f, err := os.Open(c.checkpoints)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		cps, err = audit.ReadCheckpoints(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if len(cps) == 0 {
		return fmt.Errorf("audit verify: no checkpoints to check in %s", cmp.Or(c.checkpoints, "the log"))
	}
	archives, err := c.openArchives(ctx)
	if err != nil {
		return err
	}
	defer closeArchives(archives)
	rep, err := c.st.VerifyCheckpoints(ctx, cps, pub, archives...)
	if err != nil {
		return err
	}
	if c.json() {
		if err := c.writeJSON(map[string]any{"ok": rep.OK(), "report": rep}); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintf(c.stdout, "BROKEN: %s\n", review.Visible(p.What))
		}
		if rep.Archives != nil {
			c.printArchiveReport(rep.Archives)
		} else {
			for _, p := range rep.Log.Problems {
				fmt.Fprintf(c.stdout, "BROKEN: %s\n", review.Visible(p.String()))
			}
		}
		if rep.OK() {
			events, calls, archives := rep.Log.Events, rep.Log.Calls, ""
			if rep.Archives != nil {
				events, calls = rep.Archives.Events()
				archives = fmt.Sprintf(" (with %d archives)", len(rep.Archives.Archives))
			}
			fmt.Fprintf(c.stdout, "OK: %d checkpoints (key %s) verified; the log%s matches the latest, event %d at %s, and its %d events and %d calls verify; chain head %s\n",
				rep.Checkpoints, audit.KeyID(pub), archives, rep.Latest.Seq, rep.Latest.At.Format(time.RFC3339), events, calls, rep.Log.Head)
		}
	}
	if !rep.OK() {
		return errFailed
	}
	return nil
}
