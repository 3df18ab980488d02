-- The operator's trunk statistics with resellers (issues 22 and 23): re-creates 154's
-- trunk_daily_stats and route_destination_daily_stats so revenue and margin are the
-- OPERATOR's. For a call of a client of master that is calls.cost (what the client pays
-- the operator). For a call under resellers, calls.cost is the retail price the end client
-- pays its reseller; the operator is paid by the top reseller (the client of master above
-- it) its own charge, call_charges.cost at depth = calls.reseller_levels. So:
--   revenue = IF(reseller_levels > 0, top charge's cost, calls.cost)
--   margin  = revenue - calls.buy_cost  (NULL when either is unknown, left out of the sum)
-- calls.margin stays the retail margin (cost - buy_cost); docs/admin-sql.md says which is
-- which. Everything else is 154's, unchanged: attempts read by day through
-- ix_call_attempts_day_trunk, each call by its primary key, and the top charge by
-- call_charges' primary key (call_id, client_id) prefix: a few rows per call, and none
-- for a client of master (the join condition tests reseller_levels first).
-- In the 15x range because it re-creates views 154 defines.

DROP VIEW IF EXISTS route_destination_daily_stats;
DROP VIEW IF EXISTS trunk_daily_stats;

-- Per trunk, destination (the carrier's prefix the attempt was rated by) and UTC day.
CREATE VIEW route_destination_daily_stats AS
SELECT a.started_day AS day,
       MAX(t.name) AS trunk,
       a.trunk_id,
       a.buy_prefix AS destination,
       COUNT(*) AS attempts,
       SUM(a.state = 'answered') AS answered,
       ROUND(100 * SUM(a.state = 'answered') / COUNT(*), 1) AS asr_percent,
       ROUND(AVG(IF(a.state = 'answered', c.answered_ms, NULL)) / 1000, 1) AS acd_seconds,
       ROUND(SUM(IF(a.trunk_id = c.trunk_id, c.billable_seconds, 0)) / 60, 2) AS minutes,
       ROUND(SUM(IF(a.trunk_id = c.trunk_id, c.buy_billable_seconds, 0)) / 60, 2) AS carrier_minutes,
       SUM(IF(a.trunk_id = c.trunk_id, c.buy_cost, 0)) AS cost,
       SUM(IF(a.trunk_id = c.trunk_id, IF(c.reseller_levels > 0, g.cost, c.cost), 0)) AS revenue,
       SUM(IF(a.trunk_id = c.trunk_id,
              IF(c.reseller_levels > 0, g.cost, c.cost) - c.buy_cost, 0)) AS margin,
       SUM(a.state = 'answered' AND c.state = 'settled' AND c.buy_cost IS NULL) AS unpriced
FROM call_attempts a
STRAIGHT_JOIN calls c ON c.id = a.call_id
STRAIGHT_JOIN trunks t ON t.id = a.trunk_id
LEFT JOIN call_charges g ON c.reseller_levels > 0 AND g.call_id = c.id
  AND g.depth = c.reseller_levels
GROUP BY a.started_day, a.trunk_id, a.buy_prefix;

-- The same per trunk and UTC day.
CREATE VIEW trunk_daily_stats AS
SELECT a.started_day AS day,
       MAX(t.name) AS trunk,
       a.trunk_id,
       COUNT(*) AS attempts,
       SUM(a.state = 'answered') AS answered,
       ROUND(100 * SUM(a.state = 'answered') / COUNT(*), 1) AS asr_percent,
       ROUND(AVG(IF(a.state = 'answered', c.answered_ms, NULL)) / 1000, 1) AS acd_seconds,
       ROUND(SUM(IF(a.trunk_id = c.trunk_id, c.billable_seconds, 0)) / 60, 2) AS minutes,
       ROUND(SUM(IF(a.trunk_id = c.trunk_id, c.buy_billable_seconds, 0)) / 60, 2) AS carrier_minutes,
       SUM(IF(a.trunk_id = c.trunk_id, c.buy_cost, 0)) AS cost,
       SUM(IF(a.trunk_id = c.trunk_id, IF(c.reseller_levels > 0, g.cost, c.cost), 0)) AS revenue,
       SUM(IF(a.trunk_id = c.trunk_id,
              IF(c.reseller_levels > 0, g.cost, c.cost) - c.buy_cost, 0)) AS margin,
       SUM(a.state = 'answered' AND c.state = 'settled' AND c.buy_cost IS NULL) AS unpriced
FROM call_attempts a
STRAIGHT_JOIN calls c ON c.id = a.call_id
STRAIGHT_JOIN trunks t ON t.id = a.trunk_id
LEFT JOIN call_charges g ON c.reseller_levels > 0 AND g.call_id = c.id
  AND g.depth = c.reseller_levels
GROUP BY a.started_day, a.trunk_id;
