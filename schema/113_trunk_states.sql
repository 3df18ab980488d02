-- Trunk state the system keeps (issue 22): capacity is taken under its row lock, failures
-- in a row and the cool-down they start are shared by every FastAGI server through it.
--
-- People edit `trunks` in whole-row forms (Adminer): the system never writes that row (a
-- form saved later would write an old counter back, the lesson of issue 19). Everything
-- the system counts lives in trunk_states, one row per trunk, made by trunks' AFTER
-- INSERT trigger (and below for trunks that exist already).
--
-- The cool-down settings are the operator's, so they are columns of trunks:
-- failures_before_cooldown attempts failing in a row (CHANUNAVAIL / CONGESTION, see
-- docs/contract.md "Failover") skip the trunk for cooldown_seconds; then it is tried again.
-- Their refusals in words are in trunks' BEFORE INSERT / UPDATE triggers (151).
-- Adds columns at the end of trunks and a new table only: the same result before or after
-- every later file.

ALTER TABLE trunks
  ADD COLUMN failures_before_cooldown INT NOT NULL DEFAULT 3
    COMMENT 'Attempts failing in a row (CHANUNAVAIL/CONGESTION) before the trunk cools down, 1-100'
    AFTER calls_per_second,
  ADD COLUMN cooldown_seconds INT NOT NULL DEFAULT 60
    COMMENT 'Seconds a trunk that failed failures_before_cooldown times in a row is skipped, 1-86400'
    AFTER failures_before_cooldown,
  ADD CONSTRAINT ck_trunks_failures_before_cooldown CHECK (failures_before_cooldown BETWEEN 1 AND 100),
  ADD CONSTRAINT ck_trunks_cooldown_seconds CHECK (cooldown_seconds BETWEEN 1 AND 86400);

CREATE TABLE trunk_states (
  trunk_id INT UNSIGNED NOT NULL COMMENT 'Trunk this state is of',
  consecutive_failures INT NOT NULL DEFAULT 0
    COMMENT 'Attempts that failed in a row since the last success or cool-down (system-kept)',
  cooled_until DATETIME(3) NULL COMMENT 'The trunk is skipped until then (UTC); NULL: not cooling down',
  admitted_attempts BIGINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'Attempts ever placed on the trunk: written by every take, so concurrent takes on Galera nodes conflict at certification',
  last_failure_at DATETIME(3) NULL COMMENT 'When an attempt last failed on this trunk (UTC)',
  PRIMARY KEY (trunk_id),
  CONSTRAINT fk_trunk_states_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='System-kept state of each trunk (lock for capacity, failures in a row, cool-down): never edit by hand';

INSERT IGNORE INTO trunk_states (trunk_id) SELECT id FROM trunks;

DELIMITER //

CREATE FUNCTION trunk_cooldown_refusal(p_failures INT, p_seconds INT) RETURNS VARCHAR(255)
  DETERMINISTIC NO SQL
  COMMENT 'The refusal in words of cool-down settings that break a rule, or NULL'
BEGIN
  IF p_failures IS NULL OR p_failures NOT BETWEEN 1 AND 100 THEN
    RETURN 'trunks.failures_before_cooldown is how many attempts failing in a row start a cool-down, 1-100: e.g. 3';
  ELSEIF p_seconds IS NULL OR p_seconds NOT BETWEEN 1 AND 86400 THEN
    RETURN 'trunks.cooldown_seconds is how long a failing trunk is skipped, 1-86400 seconds: e.g. 60';
  END IF;
  RETURN NULL;
END//

-- Every trunk has its state row from the start: authorize locks it to take capacity.
CREATE TRIGGER trunks_after_insert AFTER INSERT ON trunks FOR EACH ROW
BEGIN
  INSERT IGNORE INTO trunk_states (trunk_id) VALUES (NEW.id);
END//

DELIMITER ;
