-- No query looks instances up by status or by orchestration name, while every
-- instance paid for both indexes as it was created, started and ended.
DROP INDEX instances_by_status;
DROP INDEX instances_by_name;
