-- trunks.calls_per_second (110) is enforced (issue 22): at most floor(calls_per_second)
-- takes of the trunk with started_at in any one second (a window open at its start:
-- (now - 1 s, now]); below 1 call a second, at most one take in any 1/calls_per_second s.
-- Nothing is scheduled or stored: each take counts the trunk's attempts already made, under
-- the trunk_states row lock (fastagi/store/trunks.py, _LOCK_AND_COUNT; the rule in
-- fastagi/billing/routing.py and docs/admin-sql.md "Trunks and routes"). So an admin's
-- stale whole-row save of trunks (Adminer) has nothing to write back.
--
-- The index makes that count a range on the trunk's last second of attempts (and the
-- latest take, below 1 call a second, a single index dive) instead of a scan of every
-- attempt the trunk ever carried (ix_call_attempts_trunk_state has them all, by state).
--
-- Adds one index: the same result before or after every other file.

ALTER TABLE call_attempts
  ADD INDEX ix_call_attempts_trunk_started (trunk_id, started_at)
    COMMENT 'Calls per second: the trunk''s takes in the last window, counted under its trunk_states lock';
