-- The operator's trunk statistics (issue 22): ASR, ACD, minutes, cost, revenue and margin
-- per trunk and destination per day, and per trunk per day (docs/admin-sql.md, "Trunks and
-- routes"). New views; in the 15x range only because they read calls.answered_ms (140) and
-- the buy side of 117: a fresh install creates them after both.
--
-- They count attempts (each failover attempt seizes its trunk: ASR is answered attempts
-- over attempts) and put each call's money (and billed minutes) on the attempt that carried
-- it: the call's attempt on calls.trunk_id (one attempt per trunk and call), so a call the
-- stale sweep closed and a late settle billed counts too, though its attempt was ended.
-- They read call_attempts by the UTC day the attempt started (started_day, key
-- ix_call_attempts_day_trunk of 117) and each call by its primary key, so asking for a day
-- costs one range scan of that day's attempts (MariaDB pushes `WHERE day = ...` or
-- `day BETWEEN ...` into the grouped view). STRAIGHT_JOIN keeps call_attempts first: joined
-- from trunks, the optimizer read a week through (trunk_id, state), every attempt of each
-- trunk (1.3 s on 120,000 attempts instead of a range of the week).

-- Per trunk, destination (the carrier's prefix the attempt was rated by) and UTC day.
-- answered: attempts answered (state answered, set at settle); ACD from their calls. Money
-- and minutes from the settled call of the attempt that carried it (NULL until settled: a
-- call still talking counts in attempts only).
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
       SUM(IF(a.trunk_id = c.trunk_id, c.cost, 0)) AS revenue,
       SUM(IF(a.trunk_id = c.trunk_id, c.margin, 0)) AS margin,
       SUM(a.state = 'answered' AND c.state = 'settled' AND c.buy_cost IS NULL) AS unpriced
FROM call_attempts a
STRAIGHT_JOIN calls c ON c.id = a.call_id
STRAIGHT_JOIN trunks t ON t.id = a.trunk_id
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
       SUM(IF(a.trunk_id = c.trunk_id, c.cost, 0)) AS revenue,
       SUM(IF(a.trunk_id = c.trunk_id, c.margin, 0)) AS margin,
       SUM(a.state = 'answered' AND c.state = 'settled' AND c.buy_cost IS NULL) AS unpriced
FROM call_attempts a
STRAIGHT_JOIN calls c ON c.id = a.call_id
STRAIGHT_JOIN trunks t ON t.id = a.trunk_id
GROUP BY a.started_day, a.trunk_id;
