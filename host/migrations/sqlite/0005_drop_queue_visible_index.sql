-- Ready instances are found through `instances.next_visible_at` (0004), so
-- nothing reads the queue by visibility any more; the index only cost every
-- message an insert and a delete.
DROP INDEX orchestrator_queue_by_visible;
