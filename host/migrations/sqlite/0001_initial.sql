-- Initial schema of the SQLite history store. Timestamps are INTEGER
-- milliseconds since the Unix epoch; events and messages are JSON text.

-- One row per instance, kept current by every turn commit so management
-- queries never read histories. The row also carries the instance lock.
CREATE TABLE instances (
    instance_id           TEXT    NOT NULL PRIMARY KEY,
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
    locked_until          INTEGER
);

CREATE INDEX instances_by_status ON instances (status);
CREATE INDEX instances_by_name ON instances (orchestration_name);
-- Only locked rows matter to the wake-up query; keep the index small.
CREATE INDEX instances_by_locked_until ON instances (locked_until)
    WHERE locked_until IS NOT NULL;

-- Append-only; the key is the replay order.
CREATE TABLE history (
    instance_id  TEXT    NOT NULL,
    execution_id INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    PRIMARY KEY (instance_id, execution_id, seq)
) WITHOUT ROWID;

-- AUTOINCREMENT so an id is never reused: a turn deletes consumed messages by id.
CREATE TABLE orchestrator_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    visible_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);

-- Finding the oldest visible message, and the earliest future one.
CREATE INDEX orchestrator_queue_by_visible ON orchestrator_queue (visible_at, id);
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
