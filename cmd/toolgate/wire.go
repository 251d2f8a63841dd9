package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate"
	"github.com/toolgate/toolgate/audit"
	"github.com/toolgate/toolgate/config"
	"github.com/toolgate/toolgate/gate"
	"github.com/toolgate/toolgate/metrics"
	"github.com/toolgate/toolgate/redact"
	"github.com/toolgate/toolgate/review"
	"github.com/toolgate/toolgate/rules"
	"github.com/toolgate/toolgate/tools"
)

// policy is everything serve plugs into the gate besides the forwarder:
// what decides, who reviews, what records.
type policy struct {
	Decider  gate.Decider
	Recorder gate.Recorder
	Reviewer gate.Reviewer // nil denies every review
	Granter  gate.Granter  // grants from held reviews
	Observer gate.Observer // nil: no metrics
	// metrics is fed by the gate (Observer, wrapped Recorder) and, once the
	// catalog exists, by the upstreams' health.
	metrics *metrics.Metrics
	// store is the audit log, for toolgate's own review_status tool.
	store *audit.Store
	// routes are extra HTTP handlers for the HTTP listener (the Slack
	// interactivity endpoint), by path. They are served outside the MCP
	// bearer-token guard: Slack signs its own requests. (/metrics is
	// served as planMetrics says.)
	routes map[string]http.Handler
	// close stops the background work and releases what buildPolicy opened.
	close func() error
}

// pathMetrics is where Prometheus metrics are served on the HTTP listener.
const pathMetrics = "/metrics"

// buildPolicy constructs the gate's Decider (rules, hot-reloaded), Recorder
// (the SQLite audit log at dbPath), Reviewer (Slack, CLI, elicitation) and
// Granter from cfg, and starts their background work (rule file polling,
// Socket Mode, CLI verdict polling, expiring the reviews of ended
// processes). Reviews whose process is gone (its lease ran out, or it had
// none) are expired first; another live process's are left alone.
func buildPolicy(ctx context.Context, cfg *config.Config, env environ, dbPath string, ws rules.Workspace, checkRules func(*rules.Set) error, overHTTP bool, logger *slog.Logger) (_ *policy, err error) {
	red := redact.New(cfg.Audit.RedactKeys)
	m := metrics.New(prometheus.NewRegistry())
	st, err := audit.Open(ctx, dbPath, audit.Options{
		Logger: logger.With("component", "audit"),
		// Arguments are stored with the reviewers' marks: the web UI and
		// `toolgate review` show the stored ones, and a mask must say
		// what it hides there too (its length, words, shell characters;
		// never the text).
		Redact:          redactArgs(red.ForReviewers()),
		RedactText:      red.String,
		ToolgateVersion: version,
		ArgsHashOnly:    cfg.Audit.StoreArgs == config.StoreArgsHash,
		OnBehind:        m.OutcomeWritten,
		// Each serve owns the reviews it records, so that sessions sharing
		// the log never expire each other's (see expireOrphans).
		Owner:    gate.NewID(time.Now()),
		LeaseTTL: cfg.Audit.LeaseTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	logger.Info("audit log open", "path", st.Path())

	// Every rule set put in force is kept in the audit log with its source
	// (`toolgate rules history`, `rules rollback`). A failed write is
	// logged, not fatal: refusing a valid reload would keep older rules in
	// force, and each call still records the version that decided it.
	recordRules := func(set *rules.Set) {
		err := st.RecordRulesetLoad(context.WithoutCancel(ctx), audit.RulesetLoad{
			Version: set.Version(), Label: set.Label(), File: set.Name(), Source: set.Source()})
		if err != nil {
			logger.Error("recording the rule set in the audit log failed", "version", set.Version(), "err", err)
		}
	}
	live, err := rules.NewLive(cfg.Rules.File, rules.LiveOptions{Logger: logger.With("component", "rules"), Check: checkRules, OnLoad: recordRules, Workspace: ws})
	if err != nil {
		return nil, err
	}
	cur := live.Current()
	logger.Info("rules loaded", "file", rulesFileName(cfg.Rules.File), "version", cur.Version(), "label", cur.Label(), "rules", cur.Len())

	slackOpts, err := slackOptions(cfg.Review, env)
	if err != nil {
		return nil, err
	}
	if slackOpts != nil {
		slackOpts.Requester = requester(cfg)
		slackOpts.OnRefusedClick = func(callID, user, why string) {
			if err := st.RecordRefusedClick(context.Background(), callID, user, toolgate.ChannelSlack, why); err != nil {
				logger.Warn("recording a refused slack click failed", "call_id", callID, "slack_user", user, "err", err)
			}
		}
	}
	// The store carries reviews across replicas (review.AdoptStore):
	// asserted here, where the two meet, since audit does not import review.
	var _ review.AdoptStore = st
	svc, err := review.New(review.Options{
		Store:       st,
		Slack:       slackOpts,
		Channels:    cfg.Review.Channels,
		Timeout:     cfg.Review.Timeout,
		Hold:        cfg.Review.Hold,
		OnHeldEnd:   m.ReviewEnded,
		GrantTTL:    cfg.Review.GrantTTL,
		MaxPending:  cfg.Review.MaxPending,
		Elicitation: elicitReviews(cfg.Review.Channels, overHTTP, logger),
		Decide:      live.Decide,
		// The account `toolgate review approve` records too: over stdio
		// the agent's user and the terminal's are one person.
		Account:  reviewAccount(os.Getuid()),
		Redactor: red,
		Logger:   logger.With("component", "review"),
	})
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	if err := svc.CheckSlack(ctx); errors.Is(err, review.ErrSlackAuth) {
		return nil, fmt.Errorf("%w (check %s)", err, secretSource(cfg.Review.Slack.BotTokenEnv, cfg.Review.Slack.BotTokenFile))
	} else if err != nil {
		logger.Error("slack is not ready: reviews go to the other channels until it is", "err", err)
	}
	if err := svc.Recover(ctx); err != nil {
		logger.Warn("recovering reviews left pending by a previous run", "err", err)
	}
	logger.Info("review channels", "channels", svc.Channels(), "timeout", cfg.Review.Timeout.String())

	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { live.Run(bg) })
	sweep := orphanSweep
	if ttl := cfg.Audit.LeaseTTL; ttl > 0 && ttl/3 < sweep {
		sweep = ttl / 3 // a dead process's reviews are taken over soon after its lease ends
	}
	wg.Go(func() { expireOrphans(bg, svc, sweep, logger) })
	wg.Go(func() { closeInterrupted(bg, st, callHorizon(cfg), logger) })
	// On PostgreSQL a verdict recorded by another replica wakes the review
	// waiting here at once (on SQLite Listen returns; reviews poll).
	wg.Go(func() { _ = st.Listen(bg, svc.Wake) })
	wg.Go(func() {
		if err := svc.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("review channel stopped", "err", err)
		}
	})

	p := &policy{
		Decider:  live,
		Recorder: m.WrapRecorder(st),
		Reviewer: svc,
		Granter:  st,
		store:    st,
		Observer: m,
		metrics:  m,
		routes:   map[string]http.Handler{},
		close: func() error {
			stop()
			wg.Wait()
			return st.Close()
		},
	}
	if slackOpts != nil && slackOpts.Mode == review.SlackModeHTTP {
		p.routes[cfg.Review.Slack.HTTPPath] = svc.InteractionHandler()
	}
	return p, nil
}

// elicitReviews reports whether reviews may ask the agent's own user
// (MCP elicitation). Over stdio the client that answers is the one that
// started toolgate for its user, so it is a default channel. Over HTTP
// anyone holding an agent's credential can open a session that answers,
// the agent included when it can read its token: there it is used only
// when review.channels lists it, and then with a warning.
func elicitReviews(channels []string, overHTTP bool, logger *slog.Logger) bool {
	listed := slices.Contains(channels, toolgate.ChannelElicitation)
	if overHTTP && listed {
		logger.Warn("review.channels lists elicitation while serving HTTP: whoever holds an agent's shared or no-token credential can answer its reviews, " +
			"an agent that reads its own token included (callers with per-user tokens or OIDC cannot approve their own calls)")
	}
	return listed || (len(channels) == 0 && !overHTTP)
}

func rulesFileName(f string) string {
	if f == "" {
		return rules.DefaultName
	}
	return f
}

// redactArgs adapts a Redactor to the audit log's argument hook.
func redactArgs(r *redact.Redactor) func(map[string]any) map[string]any {
	return func(args map[string]any) map[string]any {
		out, _ := r.Value(args).(map[string]any)
		return out
	}
}

// slackOptions builds the Slack channel's options from the config and the
// files or environment variables it names; nil when Slack is not configured.
func slackOptions(rc config.Review, env environ) (*review.SlackOptions, error) {
	sc := rc.Slack
	if sc.Channel == "" {
		return nil, nil
	}
	var errs []error
	get := func(envKey, file string, needed bool, what string) string {
		v, err := secret(env, envKey, file)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("review.slack: %s: %w", what, err))
		case v == "" && needed:
			errs = append(errs, fmt.Errorf("review.slack: %s (%s) is not set", secretSource(envKey, file), what))
		}
		return v
	}
	o := &review.SlackOptions{
		BotToken: get(sc.BotTokenEnv, sc.BotTokenFile, true, "the bot token, xoxb-..."),
		AppToken: get(sc.AppTokenEnv, sc.AppTokenFile, sc.Mode != review.SlackModeHTTP,
			"the app-level token for Socket Mode, xapp-..."),
		SigningSecret: get(sc.SigningSecretEnv, sc.SigningSecretFile, sc.Mode == review.SlackModeHTTP,
			"the signing secret for the interactivity endpoint"),
		Mode:           sc.Mode,
		Channel:        sc.Channel,
		Approvers:      sc.Approvers,
		ApproverGroups: sc.ApproverGroups,
		Users:          sc.Users,
		APIURL:         sc.APIURL,
	}
	return o, errors.Join(errs...)
}

// orphanSweep is how often serve expires the reviews of processes that died
// (their lease ran out) while it runs; at start it does so at once.
const orphanSweep = 10 * time.Second

// expireOrphans expires, every interval until ctx ends, the pending reviews
// whose owning process is gone, and updates their Slack messages.
func expireOrphans(ctx context.Context, svc *review.Service, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := svc.Recover(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("expiring the reviews of ended processes failed", "err", err)
		}
	}
}

// rulesWorkspace is what rules resolve the paths calls name against: the
// workspace root as configured (made absolute), the home directory, and
// toolgate's own files, which no call may read or write, and the
// directories the stdio servers ups run in.
func rulesWorkspace(cfg *config.Config, env environ, own []ownFile, ups []tools.Upstream) rules.Workspace {
	ws := rules.Workspace{Home: env.Getenv("HOME")}
	if root, err := filepath.Abs(cfg.Workspace.Root); err == nil {
		ws.Root = root
	}
	for _, o := range own {
		ws.Own = append(ws.Own, o.path)
	}
	// The sandbox hides sandbox.hide from commands; the rules treat it as
	// secret, by the name given and the one it resolves to, for the servers
	// and resources outside the sandbox.
	for _, h := range cfg.Sandbox.Hide {
		if h = expandHome(h, ws.Home); filepath.IsAbs(h) {
			ws.Hidden = append(ws.Hidden, filepath.Clean(h))
			if real, err := filepath.EvalSymlinks(h); err == nil && real != filepath.Clean(h) {
				ws.Hidden = append(ws.Hidden, real)
			}
		}
	}
	// A stdio server opens a relative path in the directory it runs in
	// (its cwd, else toolgate's), which need not be the workspace root.
	for _, u := range ups {
		if u.Command == "" {
			continue
		}
		if d, err := filepath.Abs(u.Dir); err == nil && d != ws.Root {
			if ws.Dirs == nil {
				ws.Dirs = map[string]string{}
			}
			ws.Dirs[u.Name] = d
		}
	}
	return ws
}

// requester says, for reviewers, who asks: the OS account toolgate runs as
// (from its uid), the host, and the workspace.
func requester(cfg *config.Config) string {
	host, _ := os.Hostname()
	s := reviewAccount(os.Getuid()) + "@" + host
	if cfg.Workspace.Enabled {
		if ws, err := filepath.Abs(cfg.Workspace.Root); err == nil {
			s += " in " + ws
		}
	}
	return s
}
