-- The schema of the SQLite history store. Timestamps are INTEGER
-- milliseconds since the Unix epoch; events and messages are JSON text.

-- One row per instance, kept current by every turn commit so management
-- queries never read histories. The row also carries the instance lock.
CREATE TABLE instances (
    -- The store key: the bare id in the default tenant, `@{tenant}/{id}`
    -- in any other (see the `tenant` module).
    instance_id           TEXT    NOT NULL PRIMARY KEY,
    -- The tenant owning the instance, as its key names it (a bare key is
    -- the default tenant's); management queries and the fair fetch filter
    -- by it.
    tenant                TEXT    NOT NULL DEFAULT 'default',
    orchestration_name    TEXT    NOT NULL,
    orchestration_version TEXT,
    status                TEXT    NOT NULL,
    output                TEXT,
    execution_id          INTEGER NOT NULL,
    history_len           INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    parent_instance       TEXT,
    parent_id             INTEGER,
    lock_token            TEXT,
    locked_until          INTEGER,
    -- The status text an orchestration publishes for clients while it runs.
    custom_status         TEXT,
    -- The parent execution a child reports to: a parent that continued as
    -- new must not receive the results of its earlier execution's children.
    parent_execution_id   INTEGER,
    -- When the instance's earliest queued message becomes visible (NULL when
    -- it has none), so a fetch finds ready instances through one small index
    -- instead of walking every queued message, most of which belong to
    -- instances that are locked already. Every statement that queues a
    -- message keeps it current, and a turn commit, which deletes what it
    -- consumed, recomputes it. (Not a trigger: that made each insert run as
    -- a trigger program with a statement journal, about twice the cost.)
    next_visible_at       INTEGER,
    -- When the instance finished (its status became terminal); NULL while
    -- it runs. Set only by the turn commit that changes the status, so the
    -- common same-status commit writes nothing more.
    finished_at           INTEGER,
    -- The digest of the deployed component (see `artifacts`) the current
    -- execution started on, set by its first turn: it replays on that
    -- component. NULL until then, and for components loaded from files.
    component_digest      TEXT
);

-- Management queries (list, health, retention) are answered through these
-- indexes, never by reading histories. Listing: within a tenant, newest or
-- oldest first, optionally by status or name, with (created_at,
-- instance_id) as the keyset cursor, so a page deep into a large result
-- starts with a seek.
CREATE INDEX instances_by_created ON instances (tenant, created_at, instance_id);
CREATE INDEX instances_by_status_created ON instances (tenant, status, created_at, instance_id);
CREATE INDEX instances_by_name_created ON instances (tenant, orchestration_name, created_at, instance_id);
CREATE INDEX instances_by_parent ON instances (parent_instance)
    WHERE parent_instance IS NOT NULL;
-- Retention and recent failures: only finished rows, by status and end time.
CREATE INDEX instances_finished ON instances (status, finished_at)
    WHERE finished_at IS NOT NULL;
-- Which unfinished instances are pinned to a component (removing one is
-- refused while any is).
CREATE INDEX instances_by_component ON instances (component_digest)
    WHERE component_digest IS NOT NULL AND finished_at IS NULL;
-- Only locked rows matter to the wake-up query; keep the index small.
CREATE INDEX instances_by_locked_until ON instances (locked_until)
    WHERE locked_until IS NOT NULL;
-- By tenant, so a fetch finds the tenants with queued work by a few seeks
-- and takes each one's earliest ready instances in turn (fair dispatch);
-- with the lock deadline, so locked instances are skipped within the index.
CREATE INDEX instances_by_next_visible ON instances (tenant, next_visible_at, locked_until)
    WHERE next_visible_at IS NOT NULL;

-- Append-only; the key is the replay order. A row holds one turn's events
-- as a JSON array, keyed by the seq of its first event.
CREATE TABLE history (
    instance_id  TEXT    NOT NULL,
    execution_id INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    PRIMARY KEY (instance_id, execution_id, seq)
) WITHOUT ROWID;

-- AUTOINCREMENT so an id is never reused: a turn deletes consumed messages by id.
-- Ready instances are found through `instances.next_visible_at`, so nothing
-- reads this queue by visibility: no index on `visible_at`.
CREATE TABLE orchestrator_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    visible_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);

-- Collecting every message of the instance a fetch locked.
CREATE INDEX orchestrator_queue_by_instance ON orchestrator_queue (instance_id, id);

-- `message` is a serialized ActivityWork.
CREATE TABLE activity_queue (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    visible_at   INTEGER NOT NULL,
    lock_token   TEXT,
    locked_until INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX activity_queue_by_visible ON activity_queue (visible_at, id);
CREATE INDEX activity_queue_by_locked_until ON activity_queue (locked_until)
    WHERE locked_until IS NOT NULL;

-- Settings every client and runtime of the store shares, one row each.
-- `text_limits`: the size limits of texts (JSON), written by a runtime
-- configured with its own limits when it starts, or by
-- `HistoryStore::set_text_limits`; absent, everyone uses the defaults.
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- Deployed components, by tenant and the SHA-256 of their bytes
-- (lower-case hex): names resolve within the tenant that deployed them.
-- The manifest (what the component provides) is JSON, recorded when it was
-- deployed; runtimes load every row and poll for new ones.
CREATE TABLE artifacts (
    tenant      TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    bytes       BLOB    NOT NULL,
    size_bytes  INTEGER NOT NULL,
    manifest    TEXT    NOT NULL,
    label       TEXT,
    deployed_at INTEGER NOT NULL,
    -- The policy it runs under (JSON, see `ArtifactPolicy`); NULL runs it
    -- under each runtime's default policy.
    policy      TEXT,
    PRIMARY KEY (tenant, digest)
);
