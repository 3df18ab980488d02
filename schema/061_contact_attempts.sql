-- Dialling state of campaign contacts and one row per dial attempt. A contact is claimed
-- atomically by one dialer (claimed_by/claimed_until); its attempt's outcome is written by
-- the same transaction that authorizes or settles the call (triggers on calls, matched by
-- the channel uniqueid the dialer gave the originated call), so it is exact even if the
-- dialer that started the call has died.

ALTER TABLE contacts
  MODIFY COLUMN status ENUM('new','dialing','answered','failed','done','do-not-call','retry','invalid')
    NOT NULL DEFAULT 'new'
    COMMENT 'new: not dialled yet; dialing: an attempt in flight; retry: waits for next_attempt_at; answered: reached; failed: attempts used up or number refused; done: closed by hand; do-not-call: on a do-not-call list; invalid: cannot be dialled (see last_reason)',
  ADD COLUMN time_zone VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'IANA time zone of the contact for the calling window; NULL: the campaign''s' AFTER email,
  ADD COLUMN next_attempt_at DATETIME(3) NULL
    COMMENT 'new/retry: not dialled before this time (UTC); NULL: at once' AFTER last_attempt_at,
  ADD COLUMN claimed_by VARCHAR(64) NULL COMMENT 'Dialer holding the contact while an attempt is in flight' AFTER next_attempt_at,
  ADD COLUMN claimed_until DATETIME(3) NULL
    COMMENT 'The claim lapses then unless its dialer renews it; another dialer then finishes the attempt (UTC)'
    AFTER claimed_by,
  ADD COLUMN current_attempt_id BIGINT UNSIGNED NULL COMMENT 'The attempt of the present or last claim' AFTER claimed_until,
  ADD COLUMN last_outcome ENUM('answered','busy','no-answer','failed','rejected') NULL
    COMMENT 'Outcome of the last attempt' AFTER current_attempt_id,
  ADD COLUMN last_reason VARCHAR(128) NULL
    COMMENT 'Detail of the last outcome (authorize reason, dial status) or why the contact was skipped' AFTER last_outcome,
  ADD KEY ix_contacts_due (campaign_id, status, next_attempt_at),
  ADD KEY ix_contacts_claims (status, claimed_until),
  ADD KEY ix_contacts_campaign_phone (campaign_id, phone),
  ADD CONSTRAINT ck_contacts_time_zone CHECK (time_zone IS NULL OR time_zone REGEXP '^[A-Za-z0-9_+/-]{1,64}$');

CREATE TABLE campaign_attempts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Attempt id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client of the campaign (billed for the call)',
  campaign_id INT UNSIGNED NOT NULL COMMENT 'Campaign dialled for (same client)',
  contact_id BIGINT UNSIGNED NOT NULL COMMENT 'Contact dialled',
  attempt_no INT NOT NULL COMMENT 'Which attempt of the contact this is (1 = first)',
  phone VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Number dialled',
  dialer VARCHAR(64) NOT NULL COMMENT 'Dialer that originated the call',
  uniqueid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Channel uniqueid the dialer gave the originated call (AMI OtherChannelId); links it to calls.uniqueid',
  started_at DATETIME(3) NOT NULL COMMENT 'When the dialer claimed the contact and originated (UTC)',
  ended_at DATETIME(3) NULL COMMENT 'When the outcome was known (UTC)',
  outcome ENUM('answered','busy','no-answer','failed','rejected') NULL
    COMMENT 'NULL: in flight (counts against the caps); rejected: authorize refused the call (see reason)',
  reason VARCHAR(128) NULL COMMENT 'authorize reason, DIALSTATUS, or why the originate failed',
  call_id BIGINT UNSIGNED NULL COMMENT 'The call record authorize made for this attempt',
  answered_seconds INT NULL COMMENT 'Talk time billed from (ANSWEREDTIME)',
  cost DECIMAL(14,4) NULL COMMENT 'USD charged for the call',
  PRIMARY KEY (id),
  UNIQUE KEY uq_campaign_attempts_uniqueid (uniqueid),
  KEY ix_campaign_attempts_campaign (campaign_id, outcome),
  KEY ix_campaign_attempts_client (client_id, outcome),
  KEY ix_campaign_attempts_open (outcome, started_at),
  KEY ix_campaign_attempts_contact (contact_id),
  KEY ix_campaign_attempts_call (call_id),
  CONSTRAINT fk_campaign_attempts_campaign FOREIGN KEY (campaign_id, client_id) REFERENCES campaigns (id, client_id),
  CONSTRAINT fk_campaign_attempts_contact FOREIGN KEY (contact_id) REFERENCES contacts (id),
  CONSTRAINT fk_campaign_attempts_call FOREIGN KEY (call_id) REFERENCES calls (id),
  CONSTRAINT ck_campaign_attempts_no CHECK (attempt_no >= 1),
  CONSTRAINT ck_campaign_attempts_uniqueid CHECK (uniqueid LIKE 'ictc-%')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Every dial attempt of a campaign: who was dialled, when, by which dialer, and how it ended';

DELIMITER //

-- authorize inserted the call: link it; a refusal is the attempt's outcome.
CREATE TRIGGER calls_after_insert_attempt AFTER INSERT ON calls FOR EACH ROW
  FOLLOWS calls_after_insert
BEGIN
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

-- settle (or the stale sweep) closed the call: that is how the attempt ended.
CREATE TRIGGER calls_after_update_attempt AFTER UPDATE ON calls FOR EACH ROW
  FOLLOWS calls_after_update
BEGIN
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
END//

DELIMITER ;
