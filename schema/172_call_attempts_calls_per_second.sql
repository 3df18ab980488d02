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
-- A limit the server would round (0.335 -> 0.34: faster than the carrier allows) or clip
-- (10000 in a non-strict session -> 9999.99) is refused in words, as money is (090's
-- input_changed_by_server): trunks' BEFORE INSERT / UPDATE triggers (151) are re-created
-- with their bodies kept and that check first.
--
-- Re-creates the call_attempts_after_insert slot (115, 167) and the trunks BEFORE slots
-- (151) with their bodies kept: a 17x file. Reads only 118's column besides the objects
-- of 090/110/113/115/151/167: the same result whichever order it runs in with every file
-- but 118, which it needs (118 < 172 on every database).

DROP FUNCTION IF EXISTS trunk_cps_interval_us;
DROP FUNCTION IF EXISTS trunk_cps_refusal;
DROP TRIGGER IF EXISTS call_attempts_after_insert;
DROP TRIGGER IF EXISTS trunks_before_insert;
DROP TRIGGER IF EXISTS trunks_before_update;

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

CREATE FUNCTION trunk_cps_refusal(p_problem VARCHAR(9), p_changed TINYINT) RETURNS VARCHAR(255)
  DETERMINISTIC NO SQL
  COMMENT 'The refusal in words of a trunks.calls_per_second the server rounded or clipped (p_problem: input_changed_by_server), or NULL'
BEGIN
  IF p_problem = 'rounded' THEN
    RETURN 'trunks.calls_per_second is 0.01-9999.99 calls a second with at most 2 decimals, never rounded: e.g. 0.33 for a call every 3.03 s, or NULL for no limit';
  END IF;
  RETURN inexact_money_refusal(p_problem, p_changed, 'trunks.calls_per_second', 2);
END//

CREATE TRIGGER trunks_before_insert BEFORE INSERT ON trunks FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    -- 172: a limit the server rounded or clipped
    trunk_cps_refusal(input_changed_by_server('calls_per_second'), 1),
    trunk_refusal(NEW.name, NEW.endpoint, NEW.capacity, NEW.calls_per_second),
    -- issue 22 routing: cool-down settings
    trunk_cooldown_refusal(NEW.failures_before_cooldown, NEW.cooldown_seconds));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER trunks_before_update BEFORE UPDATE ON trunks FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    -- 172: a limit the server rounded or clipped (a form saving the old value back is not)
    trunk_cps_refusal(input_changed_by_server('calls_per_second'),
                      NOT (NEW.calls_per_second <=> OLD.calls_per_second)),
    trunk_refusal(NEW.name, NEW.endpoint, NEW.capacity, NEW.calls_per_second),
    -- issue 22 routing: cool-down settings
    trunk_cooldown_refusal(NEW.failures_before_cooldown, NEW.cooldown_seconds));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

DELIMITER ;
