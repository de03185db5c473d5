-- The parent execution a child reports to: a parent that continued as new
-- must not receive the results of its earlier execution's children.
ALTER TABLE instances ADD COLUMN parent_execution_id INTEGER;
