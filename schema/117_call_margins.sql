-- The buy side of a call and the operator's trunk statistics (issue 22).
--
-- settle records what the carrier charges for the call (fastagi/store/buy_side.py): by the
-- buy rate copied onto the attempt that carried the call (call_attempts, the last
-- attempt), with the carrier's own increments and connection fee, the sell side's rounding
-- (docs/contract.md, "Rating"). The sell side is calls.cost as before; margin is derived
-- from the two, so a re-rated call (an admin changing cost) shows its new margin at once.
-- * A call with no trunk (the dial template, inbound, emergency on the emergency trunk):
--   buy_cost NULL, margin NULL: nothing is known of what the carrier charges.
-- * The trunk had no buy rate for the number (routes with allow_loss may use it): NULL too.
-- * Not answered: 0 (carriers charge answered calls only).
-- * Emergency calls routed through a trunk: the carrier's charge (the operator pays it),
--   sell 0, so the margin is negative.
--
-- The operator's views over them (trunk_daily_stats, route_destination_daily_stats) are in
-- 154: they read calls.answered_ms, which 140 adds.
-- Adds columns and a key only (placed after columns of 010/115): the same result before or
-- after every later file.

ALTER TABLE calls
  ADD COLUMN buy_billable_seconds INT NULL
    COMMENT 'Seconds the carrier bills, by its increments (0: not answered); NULL: no trunk or no buy rate'
    AFTER cost,
  ADD COLUMN buy_cost DECIMAL(14,4) NULL
    COMMENT 'USD the carrier of the attempt that carried the call charges (set at settle); NULL: no trunk or no buy rate'
    AFTER buy_billable_seconds,
  ADD COLUMN margin DECIMAL(14,4) AS (cost - buy_cost) VIRTUAL
    COMMENT 'cost - buy_cost: what the operator keeps (negative: a loss; NULL: buy cost unknown)'
    AFTER buy_cost,
  ADD CONSTRAINT ck_calls_buy_cost CHECK (buy_cost IS NULL OR buy_cost >= 0),
  ADD CONSTRAINT ck_calls_buy_billable_seconds CHECK (buy_billable_seconds IS NULL OR buy_billable_seconds >= 0);

ALTER TABLE call_attempts
  ADD COLUMN started_day DATE AS (DATE(started_at)) VIRTUAL
    COMMENT 'UTC day the attempt started (derived): the day of the trunk statistics views'
    AFTER started_at,
  -- covers what the views read of an attempt (its state, its call): a range of days is
  -- read from the key alone, then each call by its primary key
  ADD KEY ix_call_attempts_day_trunk (started_day, trunk_id, buy_prefix, state, call_id);
