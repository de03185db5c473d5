-- Every statement that queues a message now keeps `instances.next_visible_at`
-- current itself: the trigger made each insert run as a trigger program with
-- a statement journal, which cost SQLite about twice the insert and update.
DROP TRIGGER orchestrator_queue_sets_next_visible;
