-- Calls: one row per authorization attempt. A live call holds a channel and a credit
-- reservation; settling it fixes its cost, which the ledger trigger debits from the balance.

CREATE TABLE calls (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Call id (ICT_CALL_ID), handed back by the dialplan to settle',
  client_id INT UNSIGNED NULL COMMENT 'Client billed; NULL only for an attempt by an unknown client code',
  client_code VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'Client code as the dialplan passed it',
  direction ENUM('out','in') NOT NULL DEFAULT 'out' COMMENT 'out: the client calls out; in: a call to the client''s numbers',
  number VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'Dialled number as received (digits for a valid request)',
  state ENUM('live','settled','stale','rejected') NOT NULL
    COMMENT 'live: holds a channel and credit; settled: rated and billed; stale: never settled, released for review; rejected: refused attempt',
  reason VARCHAR(32) NULL COMMENT 'Why an attempt was rejected (ICT_REASON); NULL otherwise',
  emergency TINYINT(1) NOT NULL DEFAULT 0 COMMENT '1: an emergency number, always allowed, never billed',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'Rate prefix applied (longest match)',
  rate_per_min DECIMAL(12,6) NULL COMMENT 'USD per minute applied, copied from the rate at authorization',
  connection_fee DECIMAL(12,6) NULL COMMENT 'Connection fee applied (USD, charged if answered)',
  initial_increment INT NULL COMMENT 'Initial billing increment applied (s)',
  subsequent_increment INT NULL COMMENT 'Subsequent billing increment applied (s)',
  max_seconds INT NULL COMMENT 'Longest talk time allowed (what the reservation pays for)',
  reserved DECIMAL(14,4) NOT NULL DEFAULT 0 COMMENT 'USD held from the available credit while the call is live',
  uniqueid VARCHAR(64) NULL COMMENT 'Asterisk channel uniqueid at authorization',
  channel VARCHAR(128) NULL COMMENT 'Asterisk channel name at authorization',
  server VARCHAR(64) NULL COMMENT 'FastAGI server that authorized the call',
  authorized_at DATETIME(3) NOT NULL COMMENT 'When the attempt was decided (UTC)',
  expires_at DATETIME(3) NULL COMMENT 'A live call not settled by then is closed as stale (max duration + grace)',
  settled_at DATETIME(3) NULL COMMENT 'When the call was settled or closed as stale (UTC)',
  answered_seconds INT NULL COMMENT 'Talk time reported at hangup (ANSWEREDTIME); NULL if never answered or never settled',
  dial_status VARCHAR(16) NULL COMMENT 'DIALSTATUS reported at hangup (ANSWER, BUSY, NOANSWER, ...)',
  billable_seconds INT NULL COMMENT 'Seconds billed after increments',
  cost DECIMAL(14,4) NULL COMMENT 'USD charged; changing it moves the client balance by the difference',
  review_note VARCHAR(255) NULL COMMENT 'Why the call needs review (stale calls, late settles)',
  PRIMARY KEY (id),
  KEY ix_calls_client_state (client_id, state),
  KEY ix_calls_state_expires (state, expires_at),
  KEY ix_calls_authorized (authorized_at),
  CONSTRAINT fk_calls_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_calls_reserved CHECK (reserved >= 0),
  CONSTRAINT ck_calls_cost CHECK (cost IS NULL OR cost >= 0),
  CONSTRAINT ck_calls_answered CHECK (answered_seconds IS NULL OR answered_seconds >= 0),
  CONSTRAINT ck_calls_client_unless_rejected CHECK (state = 'rejected' OR client_id IS NOT NULL),
  CONSTRAINT ck_calls_cost_only_when_settled CHECK (cost IS NULL OR state = 'settled'),
  CONSTRAINT ck_calls_rejected_has_reason CHECK (state <> 'rejected' OR reason IS NOT NULL),
  CONSTRAINT ck_calls_emergency CHECK (emergency IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Call records: live calls (channels and credit held), finished calls with their cost, refused attempts';

DELIMITER //

-- The call-charge side of the ledger: balance moves by every change of calls.cost.
CREATE TRIGGER calls_after_insert AFTER INSERT ON calls FOR EACH ROW
BEGIN
  IF COALESCE(NEW.cost, 0) <> 0 THEN
    CALL ledger_move_balance(NEW.client_id, -NEW.cost);
  END IF;
END//

CREATE TRIGGER calls_before_update BEFORE UPDATE ON calls FOR EACH ROW
BEGIN
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a call cannot move to another client';
  END IF;
END//

CREATE TRIGGER calls_after_update AFTER UPDATE ON calls FOR EACH ROW
BEGIN
  IF COALESCE(NEW.cost, 0) <> COALESCE(OLD.cost, 0) THEN
    CALL ledger_move_balance(NEW.client_id, COALESCE(OLD.cost, 0) - COALESCE(NEW.cost, 0));
  END IF;
END//

CREATE TRIGGER calls_before_delete BEFORE DELETE ON calls FOR EACH ROW
BEGIN
  IF COALESCE(OLD.cost, 0) <> 0 OR OLD.state = 'live' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a charged or live call cannot be deleted: it is part of the ledger';
  END IF;
END//

DELIMITER ;
