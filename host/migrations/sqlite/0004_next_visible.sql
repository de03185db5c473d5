-- When an instance's earliest queued message becomes visible (NULL when it
-- has none), so a fetch finds ready instances through one small index instead
-- of walking every queued message, most of which belong to instances that are
-- locked already. Inserts keep it current through the trigger; a turn commit,
-- which deletes what it consumed, recomputes it.
ALTER TABLE instances ADD COLUMN next_visible_at INTEGER;

UPDATE instances SET next_visible_at = (
    SELECT MIN(q.visible_at) FROM orchestrator_queue AS q
    WHERE q.instance_id = instances.instance_id);

-- With the lock deadline, so locked instances are skipped within the index.
CREATE INDEX instances_by_next_visible ON instances (next_visible_at, locked_until)
    WHERE next_visible_at IS NOT NULL;

CREATE TRIGGER orchestrator_queue_sets_next_visible
AFTER INSERT ON orchestrator_queue
BEGIN
    UPDATE instances
    SET next_visible_at = MIN(COALESCE(next_visible_at, NEW.visible_at), NEW.visible_at)
    WHERE instance_id = NEW.instance_id;
END;
