-- trunks.calls_per_second (110) is enforced (issue 22): the trunk's calls-per-second
-- schedule is state the system keeps, so it lives in trunk_states (113), never in trunks,
-- where an admin's stale whole-row save (Adminer) would write an old value back.
--
-- The rule (GCRA, "virtual scheduling"; fastagi/billing/routing.py, docs/admin-sql.md
-- "Trunks and routes"): with T = 1/calls_per_second s (in whole microseconds, rounded up)
-- and a burst of max(1, floor(calls_per_second)) takes, a take at `now` is allowed when
-- now >= cps_next_at - (burst - 1) * T; each take moves cps_next_at to
-- GREATEST(cps_next_at, now) + T. The check runs under the trunk_states row lock (authorize,
-- failover); the move is made by call_attempts' AFTER INSERT trigger (172), in the UPDATE
-- that already counts the take, so it adds no statement and concurrent takes on Galera
-- nodes still conflict at certification.
--
-- Adds one column (and words the table's comment): the same result before or after every
-- other file; 172 is the only file that reads it.

ALTER TABLE trunk_states
  ADD COLUMN cps_next_at DATETIME(6) NULL
    COMMENT 'Calls-per-second schedule (UTC, system-kept): a new call may take the trunk from cps_next_at - (burst - 1) / calls_per_second s on, burst = max(1, floor(calls_per_second)); each take moves it to GREATEST(cps_next_at, the take) + 1 / calls_per_second s. NULL: no limited take yet (set NULL to restart the schedule)'
    AFTER last_failure_at,
  COMMENT = 'System-kept state of each trunk (lock for capacity, failures in a row, cool-down, calls-per-second schedule): never edit by hand';
