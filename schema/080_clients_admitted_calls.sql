-- Every admission writes its client's row (fastagi/store/calls.py increments this counter
-- in the authorize transaction). On one server the row lock alone serializes admissions;
-- on a Galera cluster row locks are local to one node, and only transactions that WRITE a
-- common row conflict at certification. With this write, two admissions of one client on
-- different nodes always conflict: one commits, the other fails with error 1213 and is
-- decided again on the new state (docs/galera.md).
ALTER TABLE clients
  ADD COLUMN admitted_calls BIGINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'Calls admitted so far (never reset); each admission increments it, so concurrent admissions of one client conflict on every Galera node'
    AFTER channel_limit;
