-- Trunks' BEFORE triggers (from 110 and 111), re-created with the rules of issue 22's
-- routing: the cool-down settings (113) are refused in words like the other columns, and a
-- trunk that carried calls (call_attempts, 115) is disabled rather than deleted.
-- Numbered after 150 so it runs after 110/111 on every database (fresh or upgraded); the
-- old bodies are kept as they were, the new parts are marked "issue 22 routing".

DROP TRIGGER IF EXISTS trunks_before_insert;
DROP TRIGGER IF EXISTS trunks_before_update;
DROP TRIGGER IF EXISTS trunks_before_delete;

DELIMITER //

CREATE TRIGGER trunks_before_insert BEFORE INSERT ON trunks FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
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
    trunk_refusal(NEW.name, NEW.endpoint, NEW.capacity, NEW.calls_per_second),
    -- issue 22 routing: cool-down settings
    trunk_cooldown_refusal(NEW.failures_before_cooldown, NEW.cooldown_seconds));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

-- A trunk that routes still use is disabled, not deleted: the FK would name a constraint.
CREATE TRIGGER trunks_before_delete BEFORE DELETE ON trunks FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM routes WHERE trunk_id = OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this trunk is used by routes: set trunks.status = ''disabled'' to stop using it, or delete its routes first';
  END IF;
  -- issue 22 routing: the call records name the trunk (call_attempts, calls.trunk_id)
  IF EXISTS (SELECT 1 FROM call_attempts WHERE trunk_id = OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this trunk carried calls, whose records name it: set trunks.status = ''disabled'' to stop using it';
  END IF;
END//

DELIMITER ;
