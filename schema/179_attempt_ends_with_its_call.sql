-- Issue 22: a call leaving 'live' ends its live attempt, in calls' AFTER UPDATE trigger
-- (177 made the database take the trunk; this file follows it).
--
-- settle's attempt is 'answered' or 'ended' with its dial status, and a trunk that carried
-- the call to the far end's final answer starts its failures-in-a-row count again; the
-- stale sweep's, AMI enforcement's or a hand edit's is 'ended'. So a live attempt is always
-- one of a live call: the take (call_attempts' BEFORE INSERT trigger, 177) counts
-- call_attempts alone, without the join to calls, and settle runs two statements fewer
-- (it used to end the attempt and reset the count itself). A call closed by hand gives
-- its trunk unit back at once.
--
-- Ends the live attempts of calls already closed (their unit was counted free through the
-- call's state until now). Re-creates the call_attempts BEFORE INSERT slot (177) and the
-- calls AFTER UPDATE slot (156) with their bodies kept: a 17x file, the same result
-- whichever order it runs in with every other file. CREATE OR REPLACE: no call escapes a
-- trigger in between.

UPDATE call_attempts a JOIN calls c ON c.id = a.call_id
  SET a.state = 'ended', a.ended_at = COALESCE(c.settled_at, UTC_TIMESTAMP(3))
  WHERE a.state = 'live' AND c.state <> 'live';

DELIMITER //

CREATE OR REPLACE TRIGGER call_attempts_before_insert BEFORE INSERT ON call_attempts FOR EACH ROW
BEGIN
  DECLARE missing TINYINT DEFAULT 0;
  DECLARE cooled DATETIME(3);
  DECLARE live INT;
  DECLARE trunk_name VARCHAR(64);
  DECLARE trunk_status VARCHAR(16);
  DECLARE trunk_capacity INT;
  DECLARE cps DECIMAL(6,2);
  DECLARE hundredths INT;
  DECLARE window_ms INT;
  DECLARE recent INT;
  DECLARE last_take DATETIME(3);
  DECLARE refusal VARCHAR(255);
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET missing = 1;
  IF NEW.state = 'live' THEN
    -- One statement: the lock, then (read after it, in a read view made after it) the
    -- trunk's live attempts (each one of a live call: see the top of this file) and its
    -- settings (subqueries, not joins: FOR UPDATE would lock the trunks row admins edit).
    SELECT s.cooled_until,
           (SELECT COUNT(*) FROM call_attempts a
             WHERE a.trunk_id = s.trunk_id AND a.state = 'live'),
           (SELECT t.status FROM trunks t WHERE t.id = s.trunk_id)
      INTO cooled, live, trunk_status
      FROM trunk_states s WHERE s.trunk_id = NEW.trunk_id FOR UPDATE;
    IF missing THEN
      -- trunks' AFTER INSERT trigger makes the row; someone deleted it: make it again and
      -- take the lock (an unknown trunk makes nothing: the attempt's foreign key refuses it)
      SET missing = 0;
      INSERT IGNORE INTO trunk_states (trunk_id) VALUES (NEW.trunk_id);
      SELECT s.cooled_until,
             (SELECT COUNT(*) FROM call_attempts a
               WHERE a.trunk_id = s.trunk_id AND a.state = 'live'),
             (SELECT t.status FROM trunks t WHERE t.id = s.trunk_id)
        INTO cooled, live, trunk_status
        FROM trunk_states s WHERE s.trunk_id = NEW.trunk_id FOR UPDATE;
    END IF;
    IF NOT missing THEN
      SELECT name, capacity, calls_per_second INTO trunk_name, trunk_capacity, cps
        FROM trunks WHERE id = NEW.trunk_id;
      -- calls_per_second is DECIMAL(6,2): in hundredths an exact integer. At most
      -- floor(cps) takes in any second from 1 call a second up; below, one take in any
      -- 1/cps s, in whole milliseconds rounded up (never faster than the limit: 0.33 is
      -- one take in any 3,031 ms). The window (at - window, at] is open at its start: a
      -- take exactly one window after another is in a window of its own. The takes are
      -- counted of any state (the carrier saw each INVITE), on
      -- ix_call_attempts_trunk_started (118): a range, or a single index dive.
      SET hundredths = cps * 100;
      IF hundredths >= 100 THEN
        SELECT COUNT(*) INTO recent FROM call_attempts
          WHERE trunk_id = NEW.trunk_id AND started_at > NEW.started_at - INTERVAL 1 SECOND;
      ELSEIF hundredths > 0 THEN
        SET window_ms = (100000 + hundredths - 1) DIV hundredths;
        SELECT MAX(started_at) INTO last_take FROM call_attempts WHERE trunk_id = NEW.trunk_id;
      END IF;
      IF trunk_status <> 'active' THEN
        SET refusal = CONCAT('trunk ', trunk_name, ' is disabled: trunks.status is ', trunk_status);
      ELSEIF live >= trunk_capacity THEN
        SET refusal = CONCAT('trunk ', trunk_name, ' is full: ', live, ' live calls, capacity ',
                             trunk_capacity);
      ELSEIF cooled > NEW.started_at THEN
        SET refusal = CONCAT('trunk ', trunk_name, ' is cooling down until ', cooled,
                             ' UTC after failing too often in a row');
      ELSEIF recent >= hundredths DIV 100 THEN
        SET refusal = CONCAT('trunk ', trunk_name, ' took ', recent,
                             ' calls in the last second: its limit is ', cps, ' calls a second');
      ELSEIF last_take > NEW.started_at - INTERVAL window_ms * 1000 MICROSECOND THEN
        SET refusal = CONCAT('trunk ', trunk_name, ' took a call at ', last_take,
                             ' UTC: its limit of ', cps, ' calls a second allows one in any ',
                             window_ms, ' ms');
      END IF;
      IF refusal IS NOT NULL THEN
        SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 32022, MESSAGE_TEXT = refusal;
      END IF;
    END IF;
  END IF;
END//

CREATE OR REPLACE TRIGGER calls_after_update AFTER UPDATE ON calls FOR EACH ROW
BEGIN
  IF COALESCE(NEW.cost, 0) <> COALESCE(OLD.cost, 0) THEN
    CALL ledger_move_balance(NEW.client_id, COALESCE(OLD.cost, 0) - COALESCE(NEW.cost, 0));
  END IF;
  -- settle (or the stale sweep) closed a dialer call: that is how its attempt ended.
  IF NEW.uniqueid LIKE 'ictc-%' AND OLD.state = 'live' AND NEW.state <> 'live' THEN
    UPDATE campaign_attempts
      SET outcome = CASE
            WHEN NEW.state = 'stale' THEN 'failed'
            WHEN NEW.dial_status = 'ANSWER' OR COALESCE(NEW.answered_seconds, 0) > 0 THEN 'answered'
            WHEN NEW.dial_status = 'BUSY' THEN 'busy'
            WHEN NEW.dial_status IN ('NOANSWER', 'CANCEL') THEN 'no-answer'
            ELSE 'failed' END,
          reason = IF(NEW.state = 'stale', 'stale: never settled', NEW.dial_status),
          answered_seconds = NEW.answered_seconds,
          cost = NEW.cost,
          ended_at = COALESCE(NEW.settled_at, UTC_TIMESTAMP(3))
      WHERE uniqueid = NEW.uniqueid AND outcome IS NULL;
  END IF;
  -- Resellers (120): settle or the stale sweep ended the call, so its channel and credit
  -- are released at every reseller level too (only calls of a reseller's client have any).
  IF NEW.reseller_levels > 0 AND OLD.state = 'live' AND NEW.state <> 'live' THEN
    UPDATE call_charges SET live = 0 WHERE call_id = NEW.id;
  END IF;
  -- 179: its live attempt ends with it (see the top of this file). The trunk's failures
  -- in a row start again after a final answer of the far end: anything settle reports but
  -- what fails over (routing.FAILOVER_STATUSES).
  IF NEW.trunk_id IS NOT NULL AND OLD.state = 'live' AND NEW.state <> 'live' THEN
    UPDATE call_attempts
      SET state = IF(NEW.state = 'settled' AND NEW.answered_ms IS NOT NULL, 'answered', 'ended'),
          ended_at = COALESCE(NEW.settled_at, UTC_TIMESTAMP(3)),
          dial_status = IF(NEW.state = 'settled', NEW.dial_status, dial_status)
      WHERE call_id = NEW.id AND state = 'live';
    IF ROW_COUNT() > 0 AND NEW.state = 'settled'
       AND COALESCE(NEW.dial_status, '') NOT IN ('CHANUNAVAIL', 'CONGESTION') THEN
      -- no write (so no Galera write-set) unless there is a count to reset
      UPDATE trunk_states SET consecutive_failures = 0
        WHERE trunk_id = NEW.trunk_id AND consecutive_failures > 0;
    END IF;
  END IF;
END//

DELIMITER ;
