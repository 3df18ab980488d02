-- trunks.calls_per_second is enforced (issue 22; the rule and its index in 118): a limit
-- the server would round (0.335 -> 0.34: faster than the carrier allows) or clip (10000 in
-- a non-strict session -> 9999.99) is refused in words, as money is (090's
-- input_changed_by_server): trunks' BEFORE INSERT / UPDATE triggers (151) are re-created
-- with their bodies kept and that check first.
--
-- Re-creates the trunks BEFORE slots (151) with their bodies kept: a 17x file. Reads only
-- the objects of 090/110/151: the same result whichever order it runs in with every other
-- file.

DROP FUNCTION IF EXISTS trunk_cps_refusal;
DROP TRIGGER IF EXISTS trunks_before_insert;
DROP TRIGGER IF EXISTS trunks_before_update;

DELIMITER //

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
