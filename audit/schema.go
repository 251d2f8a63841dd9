package audit

// migrations are the schema changes, in order. migrations[i] takes the
// database from schema version i to i+1. Append only: never edit a shipped
// migration, add a new one.
var migrations = []string{
	// 1: calls (one mutable row per call, for querying) and events (append
	// only, hash chained: the tamper-evident history the rows are checked
	// against).
	`
CREATE TABLE calls (
	seq               INTEGER PRIMARY KEY,
	id                TEXT    NOT NULL UNIQUE,
	received_at       INTEGER NOT NULL,
	decided_at        INTEGER NOT NULL,
	client_name       TEXT    NOT NULL DEFAULT '',
	client_version    TEXT    NOT NULL DEFAULT '',
	model_name        TEXT    NOT NULL DEFAULT '',
	model_version     TEXT    NOT NULL DEFAULT '',
	session_id        TEXT    NOT NULL DEFAULT '',
	server            TEXT    NOT NULL DEFAULT '',
	server_version    TEXT    NOT NULL DEFAULT '',
	tool              TEXT    NOT NULL DEFAULT '',
	name              TEXT    NOT NULL DEFAULT '',
	schema_hash       TEXT    NOT NULL DEFAULT '',
	annotations       TEXT    NOT NULL DEFAULT '{}',
	args              TEXT    NOT NULL DEFAULT '{}',
	args_hash         TEXT    NOT NULL DEFAULT '',
	confidence        REAL,
	rules_version     TEXT    NOT NULL DEFAULT '',
	rules_label       TEXT    NOT NULL DEFAULT '',
	rule              TEXT    NOT NULL DEFAULT '',
	action            TEXT    NOT NULL,
	reason            TEXT    NOT NULL DEFAULT '',
	auto_approved     INTEGER NOT NULL DEFAULT 0,
	shadow            TEXT    NOT NULL DEFAULT '',
	eval_error        TEXT    NOT NULL DEFAULT '',
	toolgate_version  TEXT    NOT NULL DEFAULT '',
	status            TEXT    NOT NULL,
	review_approved   INTEGER,
	reviewer          TEXT    NOT NULL DEFAULT '',
	review_channel    TEXT    NOT NULL DEFAULT '',
	review_reason     TEXT    NOT NULL DEFAULT '',
	review_decided_at INTEGER,
	review_ms         INTEGER,
	slack_channel     TEXT    NOT NULL DEFAULT '',
	slack_ts          TEXT    NOT NULL DEFAULT '',
	finished_at       INTEGER,
	outcome_error     TEXT    NOT NULL DEFAULT '',
	duration_ns       INTEGER,
	result_size       INTEGER,
	result_hash       TEXT    NOT NULL DEFAULT ''
);
-- Every index costs a WAL page per commit on the hot path, so only the
-- selective filters get one: time, tool, session, rule. Server, client,
-- model and action have a handful of values each; filtering on them scans
-- the time index (or the table), which an index would barely beat.
CREATE INDEX calls_received ON calls(received_at);
CREATE INDEX calls_tool     ON calls(tool, received_at);
CREATE INDEX calls_session  ON calls(session_id, received_at);
CREATE INDEX calls_rule     ON calls(rule, received_at);
CREATE INDEX calls_pending  ON calls(received_at) WHERE status = 'pending';

CREATE TABLE events (
	seq       INTEGER PRIMARY KEY,
	call_id   TEXT    NOT NULL,
	kind      TEXT    NOT NULL,
	at        INTEGER NOT NULL,
	body      TEXT    NOT NULL,
	prev_hash TEXT    NOT NULL,
	hash      TEXT    NOT NULL
);
-- No index on call_id: it would cost a page write on every Begin, Resolve
-- and Finish, and only Verify groups events by call (it sorts instead).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
`,
	// 2: the sandbox profile a call ran in.
	`ALTER TABLE calls ADD COLUMN sandbox TEXT NOT NULL DEFAULT '';`,
	// 3: review ownership. A pending review belongs to the process holding
	// its call; that process renews its lease in review_owners, and only
	// the reviews of an owner whose lease ran out are expired by others.
	`ALTER TABLE calls ADD COLUMN review_owner TEXT NOT NULL DEFAULT '';
CREATE TABLE review_owners (
	owner        TEXT    PRIMARY KEY,
	pid          INTEGER NOT NULL,
	host         TEXT    NOT NULL DEFAULT '',
	started_at   INTEGER NOT NULL,
	heartbeat_at INTEGER NOT NULL
);`,
	// 4: grants, approvals bound to a call that a retry uses (grants.go).
	`CREATE TABLE grants (
	id            TEXT    PRIMARY KEY,
	review_id     TEXT    NOT NULL,
	server        TEXT    NOT NULL,
	tool          TEXT    NOT NULL,
	args_hash     TEXT    NOT NULL DEFAULT '',
	rules_version TEXT    NOT NULL,
	session       TEXT    NOT NULL,
	scope         TEXT    NOT NULL,
	approver      TEXT    NOT NULL DEFAULT '',
	channel       TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	max_uses      INTEGER NOT NULL,
	uses          INTEGER NOT NULL DEFAULT 0,
	revoked_at    INTEGER,
	revoked_by    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX grants_match ON grants(server, tool, session);`,
	// 5: review policies (two-person rules, channels that may answer) and
	// the approvals counted towards them (approvals.go).
	`ALTER TABLE calls ADD COLUMN review_needs INTEGER NOT NULL DEFAULT 1;
ALTER TABLE calls ADD COLUMN review_channels TEXT NOT NULL DEFAULT '';
CREATE TABLE review_approvals (
	call_id  TEXT    NOT NULL,
	approver TEXT    NOT NULL,
	channel  TEXT    NOT NULL,
	at       INTEGER NOT NULL,
	PRIMARY KEY (call_id, approver)
);`,
	// 6: what binds a grant to a call's arguments: an HMAC of the
	// arguments as the agent sent them (args_hash is of the redacted ones,
	// under which two different secrets look the same).
	`ALTER TABLE calls ADD COLUMN args_mac TEXT NOT NULL DEFAULT '';`,
	// 7: who made each call (the principal the edge authenticated), and
	// the per-user bearer tokens (tokens.go): only each token's sha256 is
	// stored. Token events are chained under the token's id.
	`ALTER TABLE calls ADD COLUMN principal_user TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN principal_groups TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN auth TEXT NOT NULL DEFAULT '';
CREATE INDEX calls_principal ON calls(principal_user, received_at);
CREATE TABLE tokens (
	id           TEXT    PRIMARY KEY,
	hash         TEXT    NOT NULL UNIQUE,
	user         TEXT    NOT NULL,
	groups       TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	created_by   TEXT    NOT NULL DEFAULT '',
	expires_at   INTEGER,
	revoked_at   INTEGER,
	revoked_by   TEXT    NOT NULL DEFAULT '',
	last_used_at INTEGER
);`,
	// 8: what a call did: tool (tools/call), resource (resources/read),
	// prompt (prompts/get) or completion (completion/complete).
	`ALTER TABLE calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'tool';`,
	// 9: tool pins: each upstream tool's approved definition and the one
	// seen last (pins.go). Their changes are chained as events whose
	// call_id is "tool:SERVER/TOOL".
	`CREATE TABLE tool_pins (
	server      TEXT    NOT NULL,
	tool        TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	pinned_hash TEXT    NOT NULL DEFAULT '',
	pinned_def  TEXT    NOT NULL DEFAULT '',
	seen_hash   TEXT    NOT NULL,
	seen_def    TEXT    NOT NULL,
	seen_at     INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL,
	approved_at INTEGER,
	approved_by TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (server, tool)
);`,
	// 10: how the agent's stated confidence changed each decision, and the
	// rule sets loaded (rulesets.go): each version's source, once; its
	// loads and rollbacks are chained events (call_id "rules:VERSION"),
	// found through a partial index that calls' events never touch.
	`ALTER TABLE calls ADD COLUMN confidence_effect TEXT NOT NULL DEFAULT '';
CREATE TABLE rulesets (
	version         TEXT    PRIMARY KEY,
	label           TEXT    NOT NULL DEFAULT '',
	sha256          TEXT    NOT NULL,
	source          BLOB    NOT NULL,
	first_loaded_at INTEGER NOT NULL
);
CREATE INDEX events_rulesets ON events(seq) WHERE kind IN ('rules_load', 'rules_rollback');`,
	// 11: signed checkpoints of the chain head (checkpoint.go). A copy
	// here proves nothing (whoever rewrites the log rewrites this too);
	// the published copies are what verify checks.
	`CREATE TABLE checkpoints (
	id       INTEGER PRIMARY KEY,
	at       INTEGER NOT NULL,
	head_seq INTEGER NOT NULL,
	body     TEXT    NOT NULL,
	hash     TEXT    NOT NULL
);`,
	// 12: archives (archive.go). chain_base is where the events kept here
	// begin: the last event moved out to an archive, whose hash the first
	// kept event chains from (no row: nothing archived). A DELETE may
	// remove only events at or before it, so archiving's prune is the one
	// path that removes events. Cut events are found through a partial
	// index that calls' events never touch.
	`CREATE TABLE chain_base (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT    NOT NULL
);
CREATE INDEX events_cuts ON events(seq) WHERE kind = 'archive_cut';
DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN old.seq > coalesce((SELECT seq FROM chain_base WHERE id = 1), 0)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;`,
	// 13: the calls table becomes a projection of the event log, brought
	// up to date behind it (project.go); seq is the last event it
	// reflects. Until now every event was written with its row.
	`CREATE TABLE projection (
	name TEXT    PRIMARY KEY,
	seq  INTEGER NOT NULL
);
INSERT INTO projection (name, seq) SELECT 'calls', coalesce(max(seq), 0) FROM events;`,
	// 14: format-2 events (chain.go) store their hash as 32 raw bytes.
	// SQLite keeps them in the TEXT column as a BLOB; PostgreSQL needs
	// BYTEA, the hex text of the events before decoded to their bytes.
	// A build that knows only format 1 must not open a log with format-2
	// events: hence a version for SQLite too.
	pgOnly(`ALTER TABLE events ALTER COLUMN hash TYPE BYTEA USING decode(hash, 'hex');`),
	// 15: calls slim. A row keeps what the documented queries filter,
	// group, sort or update on, and finds the rest in its events by
	// primary key: seq is its decision event's seq, verdict_seq and
	// outcome_seq its last verdict and outcome events (NULL: none), so
	// list, show, export, replay and the web UI read the decision, verdict
	// and outcome from their event bodies, the only copy. The *_ref
	// columns hold the id in names of a string (names.go): each distinct
	// server, tool, session, rule, ... is stored once. The columns:
	//   - received_at, server, tool, action, client, model, session, rule,
	//     user, kind: audit list's and the web UI's filters, stats' and
	//     report's groups;
	//   - model_version (stats' by model), rules_version and rules_label
	//     (rules history, PendingFor's match), auto_approved and
	//     eval_failed (stats' counts);
	//   - status: what a call's next event may do, stats' by status;
	//   - review_approved, review_channel, review_ms: stats' and report's
	//     review counts and times (NULL unless reviewed);
	//   - slack_*, review_owner, review_needs, review_channels, args_mac:
	//     a review's state, chained nowhere (defaults unless reviewed);
	//   - args: the arguments of a call whose format-1 decision event
	//     chains only their hash (logs written before the event carried
	//     them); NULL otherwise (a call recorded with audit.store_args:
	//     hash has no arguments anywhere).
	// Indexes, each for the query that needs it, and no other: every index
	// is bytes and a page write per projected batch:
	//   - id (UNIQUE): every read or change of one call by its id (show,
	//     verdicts, outcomes, grants, reviews);
	//   - calls_received: the time range of list, stats, report, replay
	//     and rules history, list's newest N, retention's cut;
	//   - calls_pending (partial, pending rows only): pending reviews,
	//     their expiry and PendingFor.
	// The other filters (tool, session, rule, user, ...) scan the time
	// range: the rows are small, and an index each cost more per call than
	// the row itself.
	`CREATE TABLE names (
	id   INTEGER PRIMARY KEY,
	name TEXT    NOT NULL UNIQUE
);
INSERT INTO names (name)
SELECT client_name FROM calls UNION SELECT model_name FROM calls UNION SELECT model_version FROM calls
UNION SELECT session_id FROM calls UNION SELECT server FROM calls UNION SELECT tool FROM calls
UNION SELECT kind FROM calls UNION SELECT principal_user FROM calls UNION SELECT rules_version FROM calls
UNION SELECT rules_label FROM calls UNION SELECT rule FROM calls;
CREATE TABLE calls_slim (
	seq               INTEGER PRIMARY KEY,
	id                TEXT    NOT NULL UNIQUE,
	received_at       INTEGER NOT NULL,
	server_ref        INTEGER NOT NULL,
	tool_ref          INTEGER NOT NULL,
	kind_ref          INTEGER NOT NULL,
	session_ref       INTEGER NOT NULL,
	user_ref          INTEGER NOT NULL,
	client_ref        INTEGER NOT NULL,
	model_ref         INTEGER NOT NULL,
	model_version_ref INTEGER NOT NULL,
	rules_version_ref INTEGER NOT NULL,
	rules_label_ref   INTEGER NOT NULL,
	rule_ref          INTEGER NOT NULL,
	action            TEXT    NOT NULL,
	auto_approved     INTEGER NOT NULL DEFAULT 0,
	eval_failed       INTEGER NOT NULL DEFAULT 0,
	status            TEXT    NOT NULL,
	outcome_seq       INTEGER,
	verdict_seq       INTEGER,
	review_approved   INTEGER,
	review_channel    TEXT,
	review_ms         INTEGER,
	slack_channel     TEXT    NOT NULL DEFAULT '',
	slack_ts          TEXT    NOT NULL DEFAULT '',
	review_owner      TEXT    NOT NULL DEFAULT '',
	review_needs      INTEGER NOT NULL DEFAULT 1,
	review_channels   TEXT    NOT NULL DEFAULT '',
	args_mac          TEXT    NOT NULL DEFAULT '',
	args              TEXT
);
INSERT INTO calls_slim (seq, id, received_at, server_ref, tool_ref, kind_ref, session_ref, user_ref, client_ref, model_ref,
	model_version_ref, rules_version_ref, rules_label_ref, rule_ref, action, auto_approved, eval_failed, status, outcome_seq,
	verdict_seq, review_approved, review_channel, review_ms, slack_channel, slack_ts, review_owner, review_needs,
	review_channels, args_mac, args)
SELECT d.seq, c.id, c.received_at,
	(SELECT id FROM names WHERE name = c.server), (SELECT id FROM names WHERE name = c.tool),
	(SELECT id FROM names WHERE name = c.kind), (SELECT id FROM names WHERE name = c.session_id),
	(SELECT id FROM names WHERE name = c.principal_user), (SELECT id FROM names WHERE name = c.client_name),
	(SELECT id FROM names WHERE name = c.model_name), (SELECT id FROM names WHERE name = c.model_version),
	(SELECT id FROM names WHERE name = c.rules_version), (SELECT id FROM names WHERE name = c.rules_label),
	(SELECT id FROM names WHERE name = c.rule),
	c.action, c.auto_approved, CASE WHEN c.eval_error != '' THEN 1 ELSE 0 END, c.status, o.seq, v.seq,
	c.review_approved, CASE WHEN c.review_approved IS NULL THEN NULL ELSE c.review_channel END,
	CASE WHEN c.review_approved IS NULL THEN NULL ELSE c.review_ms END,
	c.slack_channel, c.slack_ts, c.review_owner, c.review_needs, c.review_channels, c.args_mac,
	CASE WHEN d.body LIKE '%"args":null%' THEN c.args END
FROM calls c
JOIN (SELECT call_id, min(seq) AS seq FROM events WHERE kind = 'decision' GROUP BY call_id) AS dm ON dm.call_id = c.id
JOIN events d ON d.seq = dm.seq
LEFT JOIN (SELECT call_id, max(seq) AS seq FROM events WHERE kind = 'verdict' GROUP BY call_id) AS v ON v.call_id = c.id
LEFT JOIN (SELECT call_id, max(seq) AS seq FROM events WHERE kind = 'outcome' GROUP BY call_id) AS o ON o.call_id = c.id;
DROP TABLE calls;
ALTER TABLE calls_slim RENAME TO calls;
CREATE INDEX calls_received ON calls(received_at);
CREATE INDEX calls_pending  ON calls(received_at) WHERE status = 'pending';`,
	// 16: calls_started (partial, started rows only): the calls left
	// started that CloseInterrupted looks for once a minute, without
	// scanning every row. It holds the calls running now (and any a crash
	// left), so it stays a few pages whatever the log's size.
	`CREATE INDEX calls_started ON calls(seq) WHERE status = 'started';`,
	// 17: spools: how far each process's spool (spool.go) is imported
	// into the log, in bytes.
	`CREATE TABLE spools (name TEXT PRIMARY KEY, imported BIGINT NOT NULL);`,
	// 18: what a token opens (tokens.go): "agent", the MCP edge, or
	// "review", the web UI; never both, since agents hold theirs.
	`ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'agent';`,
	// 19: the principal user behind each counted approval (Verdict.
	// ReviewerUser), so that one person approving through two channels
	// (a mapped Slack user and the web UI) counts once.
	`ALTER TABLE review_approvals ADD COLUMN approver_user TEXT NOT NULL DEFAULT '';`,
	// 20: the kind of call a grant covers (tool, prompt, resource,
	// completion): a prompt and a tool may share a server and name, and an
	// approval of one must not run the other. A grant issued before has
	// kind '', which no call's kind equals: it matches nothing.
	`ALTER TABLE grants ADD COLUMN kind TEXT NOT NULL DEFAULT '';`,
	// 21: pins of prompts, resources and resource templates beside the
	// tools' (pins.go): one table whose key leads with the kind, so that a
	// prompt and a tool of one server and name are two pins. A resource's
	// tool column holds its URI, a template's its URI template. The tool
	// pins carry over as kind 'tool'; their chained events keep their
	// call_id ("tool:SERVER/TOOL").
	`CREATE TABLE pins (
	kind        TEXT    NOT NULL,
	server      TEXT    NOT NULL,
	tool        TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	pinned_hash TEXT    NOT NULL DEFAULT '',
	pinned_def  TEXT    NOT NULL DEFAULT '',
	seen_hash   TEXT    NOT NULL,
	seen_def    TEXT    NOT NULL,
	seen_at     INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL,
	approved_at INTEGER,
	approved_by TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (kind, server, tool)
);
INSERT INTO pins (kind, server, tool, name, pinned_hash, pinned_def, seen_hash, seen_def, seen_at, first_seen, approved_at, approved_by)
SELECT 'tool', server, tool, name, pinned_hash, pinned_def, seen_hash, seen_def, seen_at, first_seen, approved_at, approved_by FROM tool_pins;
DROP TABLE tool_pins;`,
}

// SchemaVersion is the schema version this build writes and understands
// (len(migrations); a test keeps the two in step).
const SchemaVersion = 21
