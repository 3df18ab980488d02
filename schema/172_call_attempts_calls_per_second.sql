-- trunks.calls_per_second is enforced (issue 22): each take of a trunk moves its
-- calls-per-second schedule, trunk_states.cps_next_at (118), in the UPDATE of
-- call_attempts' AFTER INSERT trigger that already counts the take (admitted_attempts), so
-- authorize and failover run no extra statement, and the move happens under the
-- trunk_states row lock the take holds (on Galera: in the write-set that makes concurrent
-- takes conflict at certification). The check (fastagi/billing/routing.py, rate_allows)
-- reads cps_next_at under that same lock before the take.
--
-- The schedule starts at the attempt's started_at: the clock of the FastAGI server that
-- took the trunk, at the column's precision (milliseconds).
-- T = 1/calls_per_second seconds, in whole microseconds rounded up (never faster than the
-- limit): integer arithmetic, CEILING(10^8 / hundredths of a call per second), the same in
-- Python (routing.cps_interval_us), so both agree to the microsecond for every
-- DECIMAL(6,2) value (a decimal division would be cut to 4 decimals first).
--
-- Re-creates the call_attempts_after_insert slot (115, 167) with its body kept: a 17x
-- file. Reads only 118's column besides 113/115/167's objects: the same result whichever
-- order it runs in with every file but 118, which it needs (118 < 172 on every database).

DROP FUNCTION IF EXISTS trunk_cps_interval_us;
DROP TRIGGER IF EXISTS call_attempts_after_insert;

DELIMITER //

CREATE FUNCTION trunk_cps_interval_us(p_cps DECIMAL(6,2)) RETURNS BIGINT UNSIGNED
  DETERMINISTIC NO SQL
  COMMENT 'Microseconds between takes of a trunk at p_cps calls a second, rounded up; NULL for no limit'
BEGIN
  DECLARE hundredths BIGINT UNSIGNED;
  IF p_cps IS NULL OR p_cps <= 0 THEN
    RETURN NULL;
  END IF;
  SET hundredths = CAST(p_cps * 100 AS UNSIGNED);
  RETURN (100000000 + hundredths - 1) DIV hundredths;
END//

CREATE TRIGGER call_attempts_after_insert AFTER INSERT ON call_attempts FOR EACH ROW
BEGIN
  -- 172: the trunk's calls-per-second schedule moves with the take (NULL: no limit)
  DECLARE interval_us BIGINT UNSIGNED DEFAULT trunk_cps_interval_us(
    (SELECT calls_per_second FROM trunks WHERE id = NEW.trunk_id));
  UPDATE trunk_states SET admitted_attempts = admitted_attempts + 1,
    cps_next_at = IF(interval_us IS NULL, NULL,
                     GREATEST(COALESCE(cps_next_at, NEW.started_at), NEW.started_at)
                       + INTERVAL interval_us MICROSECOND)
    WHERE trunk_id = NEW.trunk_id;
  -- 167: only when the call does not name this trunk yet (authorize's INSERT already does)
  UPDATE calls SET trunk_id = NEW.trunk_id
    WHERE id = NEW.call_id AND NOT (trunk_id <=> NEW.trunk_id);
END//

DELIMITER ;
