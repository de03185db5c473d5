-- The status text an orchestration publishes for clients while it runs.
ALTER TABLE instances ADD COLUMN custom_status TEXT;
