-- The schema of the PostgreSQL history store: the tables of the SQLite
-- store (see ../sqlite/0001_initial.sql for what each column means), and the
-- functions that run each hot write as ONE statement, so a turn commit, a
-- fetch or an activity completion costs one round trip to the server.
-- Timestamps are BIGINT milliseconds since the Unix epoch read from the
-- store's clock (never the server's); events and messages are JSON text.
-- Ids and names sort as bytes (COLLATE "C"), as SQLite sorts them, so
-- listings page the same way on both stores.

CREATE TABLE instances (
    -- The store key: the bare id in the default tenant, `@{tenant}/{id}`
    -- in any other (see the `tenant` module).
    instance_id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- The tenant owning the instance, as its key names it.
    tenant                TEXT COLLATE "C" NOT NULL DEFAULT 'default',
    orchestration_name    TEXT COLLATE "C" NOT NULL,
    orchestration_version TEXT,
    status                TEXT   NOT NULL,
    output                TEXT,
    execution_id          BIGINT NOT NULL,
    history_len           BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    parent_instance       TEXT COLLATE "C",
    parent_id             BIGINT,
    lock_token            TEXT,
    locked_until          BIGINT,
    custom_status         TEXT,
    parent_execution_id   BIGINT,
    -- When the earliest queued message becomes visible (NULL when none is
    -- queued): fetches find ready instances through one small index. Every
    -- statement that queues a message keeps it current; a turn commit
    -- recomputes it.
    next_visible_at       BIGINT,
    finished_at           BIGINT,
    component_digest      TEXT
);

CREATE INDEX instances_by_created ON instances (tenant, created_at, instance_id);
CREATE INDEX instances_by_status_created ON instances (tenant, status, created_at, instance_id);
CREATE INDEX instances_by_name_created ON instances (tenant, orchestration_name, created_at, instance_id);
CREATE INDEX instances_by_parent ON instances (parent_instance)
    WHERE parent_instance IS NOT NULL;
CREATE INDEX instances_finished ON instances (status, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX instances_by_component ON instances (component_digest)
    WHERE component_digest IS NOT NULL AND finished_at IS NULL;
CREATE INDEX instances_by_locked_until ON instances (locked_until)
    WHERE locked_until IS NOT NULL;
CREATE INDEX instances_by_next_visible ON instances (tenant, next_visible_at, locked_until)
    WHERE next_visible_at IS NOT NULL;

-- One row per turn: its events as a JSON array, keyed by its first seq.
CREATE TABLE history (
    instance_id  TEXT COLLATE "C" NOT NULL,
    execution_id BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    event        TEXT   NOT NULL,
    PRIMARY KEY (instance_id, execution_id, seq)
);

-- Identity ids are never reused: a turn deletes consumed messages by id.
CREATE TABLE orchestrator_queue (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id TEXT COLLATE "C" NOT NULL,
    message     TEXT   NOT NULL,
    visible_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX orchestrator_queue_by_instance ON orchestrator_queue (instance_id, id);

CREATE TABLE activity_queue (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id  TEXT COLLATE "C" NOT NULL,
    message      TEXT   NOT NULL,
    visible_at   BIGINT NOT NULL,
    lock_token   TEXT,
    locked_until BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX activity_queue_by_visible ON activity_queue (visible_at, id);
CREATE INDEX activity_queue_by_locked_until ON activity_queue (locked_until)
    WHERE locked_until IS NOT NULL;
-- Purges delete an instance's work by instance. (SQLite goes without, to
-- keep its single writer's enqueue cheap; here writers run in parallel.)
CREATE INDEX activity_queue_by_instance ON activity_queue (instance_id);

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- By tenant and digest: each tenant has its own artifacts.
CREATE TABLE artifacts (
    tenant      TEXT COLLATE "C" NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,
    bytes       BYTEA  NOT NULL,
    size_bytes  BIGINT NOT NULL,
    manifest    TEXT   NOT NULL,
    label       TEXT,
    deployed_at BIGINT NOT NULL,
    -- The policy it runs under (JSON, see `ArtifactPolicy`); NULL runs it
    -- under each runtime's default policy.
    policy      TEXT,
    PRIMARY KEY (tenant, digest)
);

-- Creates an instance with its start message unless the id is taken;
-- returns whether it did. ON CONFLICT waits for a concurrent creator of the
-- same id to finish, so exactly one of them creates it.
CREATE FUNCTION duroxide_insert_instance(
    p_id TEXT, p_tenant TEXT, p_name TEXT, p_parent TEXT, p_parent_id BIGINT, p_parent_execution BIGINT,
    p_visible_at BIGINT, p_start TEXT, p_now BIGINT
) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO instances (instance_id, tenant, orchestration_name, status, execution_id,
        history_len, created_at, updated_at, parent_instance, parent_id,
        parent_execution_id, next_visible_at)
    VALUES (p_id, p_tenant, p_name, 'Pending', 1, 0, p_now, p_now, p_parent, p_parent_id,
        p_parent_execution, p_visible_at)
    ON CONFLICT (instance_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    INSERT INTO orchestrator_queue (instance_id, message, visible_at)
        VALUES (p_id, p_start, p_visible_at);
    RETURN TRUE;
END $$;

-- Queues a message for an existing instance; returns false if there is
-- none. A message for an instance that has not started (a delayed start)
-- becomes visible no earlier than its start message, queued first.
CREATE FUNCTION duroxide_enqueue(p_id TEXT, p_message TEXT, p_visible_at BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    v_status TEXT;
    v_at BIGINT := p_visible_at;
BEGIN
    SELECT status INTO v_status FROM instances WHERE instance_id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    IF v_status = 'Pending' THEN
        v_at := GREATEST(p_visible_at, COALESCE((SELECT visible_at FROM orchestrator_queue
            WHERE instance_id = p_id ORDER BY id LIMIT 1), p_visible_at));
    END IF;
    INSERT INTO orchestrator_queue (instance_id, message, visible_at)
        VALUES (p_id, p_message, v_at);
    UPDATE instances SET next_visible_at = LEAST(COALESCE(next_visible_at, v_at), v_at)
        WHERE instance_id = p_id;
    RETURN TRUE;
END $$;

-- Signal-with-start: creates the instance if its id is free, then queues
-- the event. Returns 'started', 'signalled', or the status of a finished
-- instance (nothing written), or 'missing' if it vanished meanwhile.
CREATE FUNCTION duroxide_signal_with_start(
    p_id TEXT, p_tenant TEXT, p_name TEXT, p_parent TEXT, p_parent_id BIGINT, p_parent_execution BIGINT,
    p_visible_at BIGINT, p_start TEXT, p_now BIGINT, p_event TEXT
) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    v_outcome TEXT := 'started';
    v_status TEXT;
BEGIN
    IF NOT duroxide_insert_instance(p_id, p_tenant, p_name, p_parent, p_parent_id,
            p_parent_execution, p_visible_at, p_start, p_now) THEN
        SELECT status INTO v_status FROM instances WHERE instance_id = p_id
            FOR NO KEY UPDATE;
        IF v_status IN ('Completed', 'Failed', 'Cancelled') THEN
            RETURN v_status;
        END IF;
        v_outcome := 'signalled';
    END IF;
    IF NOT duroxide_enqueue(p_id, p_event, p_now) THEN
        RETURN 'missing';
    END IF;
    RETURN v_outcome;
END $$;

-- A whole turn, or nothing: one statement, so one round trip and one
-- transaction. `code` is 'ok', 'lock_lost' (the instance lock is not held),
-- 'stale' (the turn does not go on from the stored history's end) or
-- 'activity_lock_lost' (the completed activity's lock expired); a refusal
-- writes nothing. `activity_ids` are the queue ids of the first
-- `p_eager` activities, locked for the caller with `p_eager_token` until
-- `p_eager_until`. With `p_hold_until`, the instance stays locked (same
-- token) until then if nothing is queued for it, and `held_row` is its row
-- as committed. `wake_orchestrator` / `wake_activity` say what became
-- fetchable, for the caller to announce once the commit is done: a
-- notice sent inside the transaction would serialize it with every other
-- notifying commit of the server, flush and all.
CREATE FUNCTION duroxide_commit_turn(
    p_instance TEXT, p_token TEXT, p_now BIGINT,
    p_execution BIGINT, p_first_seq BIGINT, p_new_len BIGINT, p_events TEXT,
    p_consumed BIGINT[],
    p_activity_instances TEXT[], p_activity_works TEXT[],
    p_eager INT, p_eager_token TEXT, p_eager_until BIGINT, p_hold_until BIGINT,
    p_message_instances TEXT[], p_messages TEXT[], p_message_visible BIGINT[],
    p_new_instances TEXT,
    p_status TEXT, p_output TEXT, p_version TEXT, p_digest TEXT,
    p_set_custom BOOLEAN, p_custom TEXT,
    p_completed_id BIGINT, p_completed_token TEXT,
    OUT code TEXT, OUT activity_ids BIGINT[], OUT held_row TEXT,
    OUT wake_orchestrator BOOLEAN, OUT wake_activity BOOLEAN
) LANGUAGE plpgsql AS $$
DECLARE
    v_status TEXT;
    v_execution BIGINT;
    v_len BIGINT;
    v_next BIGINT;
    v_held BIGINT;
    v_new RECORD;
    v_created BOOLEAN := FALSE;
    v_total INT := COALESCE(cardinality(p_activity_works), 0);
BEGIN
    -- Row locks on every instance the turn writes, in one order for every
    -- committer: two turns messaging each other's instances take them in
    -- the same order, so they queue instead of deadlocking.
    PERFORM 1 FROM instances
        WHERE instance_id = ANY (array_append(p_message_instances, p_instance))
        ORDER BY instance_id FOR NO KEY UPDATE;
    SELECT status, execution_id, history_len INTO v_status, v_execution, v_len FROM instances
        WHERE instance_id = p_instance AND lock_token = p_token AND locked_until > p_now;
    IF NOT FOUND THEN
        code := 'lock_lost';
        RETURN;
    END IF;
    -- The history length is the instance's turn counter: a turn must go on
    -- from where the stored history ends (or start the next execution), so
    -- a turn computed from a stale history writes nothing, whatever lock it
    -- holds.
    IF NOT ((v_execution = p_execution AND v_len = p_first_seq)
            OR (v_execution + 1 = p_execution AND p_first_seq = 0)) THEN
        code := 'stale';
        RETURN;
    END IF;
    IF p_completed_id IS NOT NULL THEN
        DELETE FROM activity_queue
            WHERE id = p_completed_id AND lock_token = p_completed_token
              AND locked_until > p_now;
        IF NOT FOUND THEN
            code := 'activity_lock_lost';
            RETURN;
        END IF;
    END IF;
    IF p_events IS NOT NULL THEN
        INSERT INTO history (instance_id, execution_id, seq, event)
            VALUES (p_instance, p_execution, p_first_seq, p_events);
    END IF;
    IF cardinality(p_consumed) > 0 THEN
        DELETE FROM orchestrator_queue
            WHERE id = ANY (p_consumed) AND instance_id = p_instance;
    END IF;
    IF p_eager > 0 THEN
        -- Identity values follow the insertion order, which is the turn's.
        WITH locked AS (
            INSERT INTO activity_queue
                (instance_id, message, visible_at, lock_token, locked_until, attempts)
            SELECT a.instance_id, a.work, p_now, p_eager_token, p_eager_until, 1
            FROM unnest(p_activity_instances[1:p_eager], p_activity_works[1:p_eager])
                WITH ORDINALITY AS a(instance_id, work, n)
            ORDER BY a.n
            RETURNING id)
        SELECT array_agg(id ORDER BY id) INTO activity_ids FROM locked;
    ELSE
        activity_ids := '{}';
    END IF;
    IF v_total > p_eager THEN
        INSERT INTO activity_queue (instance_id, message, visible_at)
        SELECT a.instance_id, a.work, p_now
        FROM unnest(p_activity_instances[p_eager + 1:], p_activity_works[p_eager + 1:])
            WITH ORDINALITY AS a(instance_id, work, n)
        ORDER BY a.n;
    END IF;
    IF cardinality(p_messages) > 0 THEN
        INSERT INTO orchestrator_queue (instance_id, message, visible_at)
        SELECT m.instance_id, m.message, m.visible_at
        FROM unnest(p_message_instances, p_messages, p_message_visible)
            WITH ORDINALITY AS m(instance_id, message, visible_at, n)
        ORDER BY m.n;
        UPDATE instances i
            SET next_visible_at = LEAST(COALESCE(i.next_visible_at, m.at), m.at)
            FROM (SELECT u.instance_id, MIN(u.visible_at) AS at
                  FROM unnest(p_message_instances, p_message_visible) AS u(instance_id, visible_at)
                  WHERE u.instance_id <> p_instance
                  GROUP BY u.instance_id) m
            WHERE i.instance_id = m.instance_id;
    END IF;
    -- Children and detached starts: rare, one at a time.
    IF p_new_instances IS NOT NULL THEN
        FOR v_new IN SELECT * FROM json_to_recordset(p_new_instances::json) AS n(
                instance_id TEXT, tenant TEXT, orchestration_name TEXT, parent_instance TEXT,
                parent_id BIGINT, parent_execution_id BIGINT, visible_at BIGINT,
                start TEXT, fallback_instance TEXT, fallback_message TEXT,
                fallback_visible_at BIGINT)
        LOOP
            v_created := TRUE;
            IF NOT duroxide_insert_instance(v_new.instance_id, v_new.tenant,
                    v_new.orchestration_name,
                    v_new.parent_instance, v_new.parent_id, v_new.parent_execution_id,
                    v_new.visible_at, v_new.start, p_now)
                AND v_new.fallback_instance IS NOT NULL THEN
                INSERT INTO orchestrator_queue (instance_id, message, visible_at)
                    VALUES (v_new.fallback_instance, v_new.fallback_message,
                        v_new.fallback_visible_at);
                UPDATE instances SET next_visible_at = LEAST(
                        COALESCE(next_visible_at, v_new.fallback_visible_at),
                        v_new.fallback_visible_at)
                    WHERE instance_id = v_new.fallback_instance;
            END IF;
        END LOOP;
    END IF;
    SELECT MIN(visible_at) INTO v_next FROM orchestrator_queue WHERE instance_id = p_instance;
    IF p_hold_until IS NOT NULL AND v_next IS NULL THEN
        v_held := p_hold_until;
    END IF;
    -- Last, so the lock (checked above and row-locked since) guards every
    -- write; a terminal status stamps finished_at once.
    UPDATE instances SET
        status = p_status,
        finished_at = CASE
            WHEN status = p_status THEN finished_at
            WHEN p_status IN ('Completed', 'Failed', 'Cancelled') THEN p_now
            ELSE NULL END,
        output = p_output,
        orchestration_version = COALESCE(p_version, orchestration_version),
        component_digest = COALESCE(p_digest, component_digest),
        execution_id = p_execution, history_len = p_new_len, updated_at = p_now,
        custom_status = CASE WHEN p_set_custom THEN p_custom ELSE custom_status END,
        next_visible_at = v_next,
        lock_token = CASE WHEN v_held IS NULL THEN NULL ELSE lock_token END,
        locked_until = v_held
    WHERE instance_id = p_instance
    RETURNING CASE WHEN v_held IS NULL THEN NULL ELSE row_to_json(instances.*)::text END
    INTO held_row;
    wake_orchestrator := v_next IS NOT NULL OR cardinality(p_messages) > 0 OR v_created;
    wake_activity := v_total > p_eager;
    code := 'ok';
END $$;

-- Deletes a finished activity's work item (if its lock is held) and queues
-- its completion. With `p_lock_token`, also locks the instance until
-- `p_lock_until` if nobody holds it, taking its visible messages as a
-- fetch would. `code` is 'lock_lost' (nothing written), 'queued' or
-- 'locked' (with the instance row and its messages).
CREATE FUNCTION duroxide_complete_activity(
    p_id BIGINT, p_token TEXT, p_now BIGINT, p_instance TEXT, p_message TEXT,
    p_lock_token TEXT, p_lock_until BIGINT,
    OUT code TEXT, OUT instance_row TEXT, OUT message_ids BIGINT[],
    OUT messages TEXT[], OUT attempts BIGINT[], OUT visible_at BIGINT[]
) LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM activity_queue
        WHERE id = p_id AND lock_token = p_token AND locked_until > p_now;
    IF NOT FOUND THEN
        code := 'lock_lost';
        RETURN;
    END IF;
    INSERT INTO orchestrator_queue (instance_id, message, visible_at)
        VALUES (p_instance, p_message, p_now);
    IF p_lock_token IS NOT NULL THEN
        UPDATE instances SET lock_token = p_lock_token, locked_until = p_lock_until,
                next_visible_at = LEAST(COALESCE(next_visible_at, p_now), p_now)
            WHERE instance_id = p_instance
              AND (locked_until IS NULL OR locked_until <= p_now)
            RETURNING row_to_json(instances.*)::text INTO instance_row;
        IF FOUND THEN
            WITH taken AS (
                UPDATE orchestrator_queue q SET attempts = q.attempts + 1
                WHERE q.instance_id = p_instance AND q.visible_at <= p_now
                RETURNING q.id, q.message, q.attempts, q.visible_at)
            SELECT array_agg(t.id ORDER BY t.id), array_agg(t.message ORDER BY t.id),
                   array_agg(t.attempts ORDER BY t.id), array_agg(t.visible_at ORDER BY t.id)
            INTO message_ids, messages, attempts, visible_at FROM taken t;
            code := 'locked';
            RETURN;
        END IF;
    END IF;
    UPDATE instances SET next_visible_at = LEAST(COALESCE(next_visible_at, p_now), p_now)
        WHERE instance_id = p_instance;
    code := 'queued';
END $$;
