-- Call attempts (issue 22): each trunk a call was dialled through, in order, with how the
-- attempt ended and the trunk's buy rate copied when it was taken (the rate in effect when
-- the call was authorized, or when the failover picked the trunk).
--
-- Capacity: an attempt in state 'live' of a call in state 'live' holds one unit of its
-- trunk's capacity. authorize and the failover script take a unit under the trunk's
-- trunk_states row lock (after the client's rows: docs/admin-sql.md, "Trunks and routes");
-- a unit is released by the one change of the attempt out of 'live' (failover: failed;
-- settle: answered or ended) or, at once, when its call leaves 'live' (settled, or closed
-- as stale by the sweep, which then ends the attempt too). So every unit is released
-- exactly once, whatever server or node does it.
-- calls.trunk_id (153: after 132, which adds a key to calls, so the keys come in the same
-- order on every database) names the trunk of the attempt that carried (or last tried)
-- the call. Adds a table and one new trigger slot: the same result before or after every
-- later file.

CREATE TABLE call_attempts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Attempt id',
  call_id BIGINT UNSIGNED NOT NULL COMMENT 'Call this attempt is part of',
  attempt TINYINT UNSIGNED NOT NULL COMMENT '1 for the trunk authorize picked, 2.. for each failover',
  trunk_id INT UNSIGNED NOT NULL COMMENT 'Trunk dialled',
  state ENUM('live','failed','answered','ended') NOT NULL DEFAULT 'live'
    COMMENT 'live: dialling or talking, holds one unit of the trunk''s capacity; failed: CHANUNAVAIL/CONGESTION, failed over; answered: carried the call; ended: over without an answer',
  started_at DATETIME(3) NOT NULL COMMENT 'When the trunk was taken (UTC)',
  ended_at DATETIME(3) NULL COMMENT 'When the attempt ended (UTC)',
  dial_status VARCHAR(16) NULL COMMENT 'DIALSTATUS the attempt ended with',
  hangup_cause SMALLINT NULL COMMENT 'Q.850 HANGUPCAUSE the attempt ended with, when reported (failover)',
  buy_prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'trunk_rates prefix applied (longest match); NULL: the trunk had no rate for the number',
  buy_rate_per_min DECIMAL(12,6) NULL COMMENT 'USD per minute the carrier charges, copied when taken',
  buy_connection_fee DECIMAL(12,6) NULL COMMENT 'USD the carrier charges once if answered, copied when taken',
  buy_initial_increment INT NULL COMMENT 'Seconds the carrier bills first, copied when taken',
  buy_subsequent_increment INT NULL COMMENT 'Seconds of each further carrier billing step, copied when taken',
  PRIMARY KEY (id),
  UNIQUE KEY uq_call_attempts_call_attempt (call_id, attempt),
  UNIQUE KEY uq_call_attempts_call_trunk (call_id, trunk_id),
  KEY ix_call_attempts_trunk_state (trunk_id, state),
  KEY ix_call_attempts_state (state),
  CONSTRAINT fk_call_attempts_call FOREIGN KEY (call_id) REFERENCES calls (id) ON DELETE CASCADE,
  CONSTRAINT fk_call_attempts_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id),
  CONSTRAINT ck_call_attempts_attempt CHECK (attempt BETWEEN 1 AND 10),
  CONSTRAINT ck_call_attempts_ended CHECK (state = 'live' OR ended_at IS NOT NULL)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Each trunk a call was dialled through, its outcome and the buy rate copied (system-kept)';

DELIMITER //

-- A take is an attempt row: it counts on the trunk's state row (the write that makes
-- concurrent takes conflict at Galera certification, as client_accounts.admitted_calls
-- does for clients) and names the trunk on the call, in the same statement's transaction.
CREATE TRIGGER call_attempts_after_insert AFTER INSERT ON call_attempts FOR EACH ROW
BEGIN
  UPDATE trunk_states SET admitted_attempts = admitted_attempts + 1 WHERE trunk_id = NEW.trunk_id;
  UPDATE calls SET trunk_id = NEW.trunk_id WHERE id = NEW.call_id;
END//

DELIMITER ;
