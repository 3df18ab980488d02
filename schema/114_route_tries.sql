-- How many trunks a call may try (issue 22): route_groups.max_tries bounds the dialplan's
-- failover loop per route group (docs/contract.md, "Failover"); the shipped dialplan also
-- stops at 10 Dial()s whatever the server says. Its refusal in words is in route_groups'
-- BEFORE INSERT / UPDATE triggers (152).
-- Adds a column at the end of route_groups: the same result before or after every later file.

ALTER TABLE route_groups
  ADD COLUMN max_tries TINYINT UNSIGNED NOT NULL DEFAULT 3
    COMMENT 'Most trunks one call tries (the first and its failovers), 1-10'
    AFTER ordering,
  ADD CONSTRAINT ck_route_groups_max_tries CHECK (max_tries BETWEEN 1 AND 10);
