-- Issue 22: the database takes a trunk. Every live call_attempts row inserted, by
-- authorize, by failover or by hand, is checked under its trunk's trunk_states row lock by
-- call_attempts' BEFORE INSERT trigger: the trunk must be active, below its capacity (live
-- attempts of live calls), not cooling down and within its calls per second; otherwise the
-- INSERT is refused in words with error 32022 (TRUNK_REFUSED), and the caller tries its
-- next trunk.
--
-- A calls row inserted live with a trunk_id takes that trunk: calls' AFTER INSERT trigger
-- inserts the call's first attempt, with the buy rate authorize copied onto the call (the
-- new calls.buy_* columns, beside the sell rate it copies). Authorize names the trunk in
-- its calls INSERT, so a routed call costs no statement more than an unrouted one (it used
-- to cost two: the lock and count, then the attempt's INSERT), and a refused take refuses
-- that INSERT, which authorize then makes again with the next trunk. A failover's attempt
-- copies its trunk's buy rate back onto the call, with its trunk_id.
--
-- The count is right across servers because the lock comes first: InnoDB gives a READ
-- COMMITTED statement its read view at its first consistent read, and the lock is the
-- trigger's first read, so the counts read after it see every take committed before it
-- was granted (tests/routing: test_a_take_waiting_on_the_lock_counts_the_take_committed
-- _meanwhile). Nothing before it in authorize's or failover's statement makes a
-- consistent read: an INSERT ... VALUES checks its foreign keys with locking reads, and
-- the attempt is the first thing calls' AFTER INSERT trigger does. (An INSERT ... SELECT
-- by hand makes its read view at its SELECT: its count sees what was committed when the
-- statement began.)
--
-- Re-creates the calls AFTER INSERT slot (147) and the call_attempts AFTER INSERT slot
-- (167) with their bodies kept: a 17x file, the same result whichever order it runs in
-- with every other file.

ALTER TABLE calls
  ADD COLUMN IF NOT EXISTS buy_prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Buy rate of the trunk the call names (trunk_id), copied when taken: the carrier''s longest prefix for the number; NULL: no trunk, or no buy rate for the number' AFTER trunk_id,
  ADD COLUMN IF NOT EXISTS buy_rate_per_min DECIMAL(12,6) NULL
    COMMENT 'USD per minute the carrier of trunk_id charges, copied when taken' AFTER buy_prefix,
  ADD COLUMN IF NOT EXISTS buy_connection_fee DECIMAL(12,6) NULL
    COMMENT 'USD the carrier of trunk_id charges once if answered, copied when taken' AFTER buy_rate_per_min,
  ADD COLUMN IF NOT EXISTS buy_initial_increment INT NULL
    COMMENT 'Seconds the carrier of trunk_id bills first, copied when taken' AFTER buy_connection_fee,
  ADD COLUMN IF NOT EXISTS buy_subsequent_increment INT NULL
    COMMENT 'Seconds of each further billing step of the carrier of trunk_id, copied when taken' AFTER buy_initial_increment;

-- Calls routed before this file: the buy rate of the attempt on the trunk they name.
UPDATE calls c JOIN call_attempts a ON a.call_id = c.id AND a.trunk_id = c.trunk_id
  SET c.buy_prefix = a.buy_prefix, c.buy_rate_per_min = a.buy_rate_per_min,
      c.buy_connection_fee = a.buy_connection_fee,
      c.buy_initial_increment = a.buy_initial_increment,
      c.buy_subsequent_increment = a.buy_subsequent_increment
  WHERE c.buy_prefix IS NULL AND a.buy_prefix IS NOT NULL;

DROP TRIGGER IF EXISTS call_attempts_before_insert;
DROP TRIGGER IF EXISTS call_attempts_after_insert;
DROP TRIGGER IF EXISTS calls_after_insert;

DELIMITER //

CREATE TRIGGER call_attempts_before_insert BEFORE INSERT ON call_attempts FOR EACH ROW
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
    -- trunk's live attempts of live calls and its settings (subqueries, not joins: FOR
    -- UPDATE would lock the trunks row admins edit).
    SELECT s.cooled_until,
           (SELECT COUNT(*) FROM call_attempts a JOIN calls c ON c.id = a.call_id
             WHERE a.trunk_id = s.trunk_id AND a.state = 'live' AND c.state = 'live'),
           (SELECT t.status FROM trunks t WHERE t.id = s.trunk_id)
      INTO cooled, live, trunk_status
      FROM trunk_states s WHERE s.trunk_id = NEW.trunk_id FOR UPDATE;
    IF missing THEN
      -- trunks' AFTER INSERT trigger makes the row; someone deleted it: make it again and
      -- take the lock (an unknown trunk makes nothing: the attempt's foreign key refuses it)
      SET missing = 0;
      INSERT IGNORE INTO trunk_states (trunk_id) VALUES (NEW.trunk_id);
      SELECT s.cooled_until,
             (SELECT COUNT(*) FROM call_attempts a JOIN calls c ON c.id = a.call_id
               WHERE a.trunk_id = s.trunk_id AND a.state = 'live' AND c.state = 'live'),
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

CREATE TRIGGER call_attempts_after_insert AFTER INSERT ON call_attempts FOR EACH ROW
BEGIN
  DECLARE call_trunk INT UNSIGNED;
  UPDATE trunk_states SET admitted_attempts = admitted_attempts + 1 WHERE trunk_id = NEW.trunk_id;
  -- 167: only when the call does not name this trunk yet; 177: with its buy rate. Read
  -- first: inside a calls INSERT (whose trigger inserts the first attempt of a call that
  -- names its trunk already) the UPDATE may not run at all, MariaDB refusing a trigger's
  -- write to the table of the statement that fired it (error 1442).
  SELECT trunk_id INTO call_trunk FROM calls WHERE id = NEW.call_id;
  IF NOT (call_trunk <=> NEW.trunk_id) THEN
    UPDATE calls SET trunk_id = NEW.trunk_id, buy_prefix = NEW.buy_prefix,
                     buy_rate_per_min = NEW.buy_rate_per_min,
                     buy_connection_fee = NEW.buy_connection_fee,
                     buy_initial_increment = NEW.buy_initial_increment,
                     buy_subsequent_increment = NEW.buy_subsequent_increment
      WHERE id = NEW.call_id;
  END IF;
END//

CREATE TRIGGER calls_after_insert AFTER INSERT ON calls FOR EACH ROW
BEGIN
  -- 177: a live call naming a trunk takes it, with the buy rate copied onto the call
  -- (first: see the top of this file). A refused take refuses this INSERT in words
  -- (error 32022).
  IF NEW.trunk_id IS NOT NULL AND NEW.state = 'live' THEN
    INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at, buy_prefix,
                               buy_rate_per_min, buy_connection_fee, buy_initial_increment,
                               buy_subsequent_increment)
      VALUES (NEW.id, 1, NEW.trunk_id, 'live', NEW.authorized_at, NEW.buy_prefix,
              NEW.buy_rate_per_min, NEW.buy_connection_fee, NEW.buy_initial_increment,
              NEW.buy_subsequent_increment);
  END IF;
  -- The call-charge side of the ledger: the balance moves by every change of calls.cost.
  IF COALESCE(NEW.cost, 0) <> 0 THEN
    CALL ledger_move_balance(NEW.client_id, -NEW.cost);
  END IF;
  -- A dialer call (uniqueid ictc-...): its campaign attempt learns the call, or that it
  -- was rejected.
  IF NEW.uniqueid LIKE 'ictc-%' THEN
    IF NEW.state = 'rejected' THEN
      UPDATE campaign_attempts
        SET call_id = NEW.id, outcome = 'rejected', reason = NEW.reason, ended_at = NEW.authorized_at
        WHERE uniqueid = NEW.uniqueid AND outcome IS NULL;
    ELSE
      UPDATE campaign_attempts SET call_id = NEW.id WHERE uniqueid = NEW.uniqueid AND outcome IS NULL;
    END IF;
  END IF;
END//

DELIMITER ;
