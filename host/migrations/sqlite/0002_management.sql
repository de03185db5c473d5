-- Management queries (list, health, retention) answered from the instances
-- table through indexes, never by reading histories.

-- When the instance finished (its status became terminal), ms since the Unix
-- epoch; NULL while it runs. Set only by the turn commit that changes the
-- status, so the common same-status commit writes nothing more.
ALTER TABLE instances ADD COLUMN finished_at INTEGER;

-- Instances that finished before this migration: their last change is when.
UPDATE instances SET finished_at = updated_at
    WHERE status IN ('Completed', 'Failed', 'Cancelled');

-- Listing: newest or oldest first, optionally by status or name, with
-- (created_at, instance_id) as the keyset cursor, so a page deep into a large
-- result starts with an index seek.
CREATE INDEX instances_by_created ON instances (created_at, instance_id);
CREATE INDEX instances_by_status_created ON instances (status, created_at, instance_id);
CREATE INDEX instances_by_name_created ON instances (orchestration_name, created_at, instance_id);
CREATE INDEX instances_by_parent ON instances (parent_instance)
    WHERE parent_instance IS NOT NULL;
-- Retention and recent failures: only finished rows, by status and end time.
CREATE INDEX instances_finished ON instances (status, finished_at)
    WHERE finished_at IS NOT NULL;

-- Superseded by the composite indexes above, whose prefixes serve the same
-- lookups; each index costs every status change an update.
DROP INDEX instances_by_status;
DROP INDEX instances_by_name;
