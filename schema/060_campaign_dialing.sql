-- What a campaign dials and how: its mode, what an answered contact hears, pacing caps,
-- retry rules and calling window. Operator-named dialplan destinations are the only
-- dialplan places a campaign can send an answered contact to.

CREATE TABLE campaign_destinations (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Destination id',
  name VARCHAR(64) NOT NULL COMMENT 'Name the operator gives the destination (shown in pick lists)',
  context VARCHAR(79) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Dialplan context an answered contact is sent to (must exist in the operator''s dialplan)',
  exten VARCHAR(79) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 's' COMMENT 'Extension in that context',
  priority INT NOT NULL DEFAULT 1 COMMENT 'Priority in that extension',
  description VARCHAR(255) NULL COMMENT 'What the destination does, for admins',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the destination was named (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_campaign_destinations_name (name),
  CONSTRAINT ck_campaign_destinations_context CHECK (context REGEXP '^[A-Za-z0-9_-]{1,79}$'),
  CONSTRAINT ck_campaign_destinations_exten CHECK (exten REGEXP '^[A-Za-z0-9_+*#-]{1,79}$'),
  CONSTRAINT ck_campaign_destinations_priority CHECK (priority >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Dialplan destinations the operator names for campaigns (clients pick one; they cannot name a context)';

ALTER TABLE campaigns
  ADD COLUMN mode ENUM('broadcast') NOT NULL DEFAULT 'broadcast'
    COMMENT 'broadcast: on answer play the recording or go to the destination (progressive needs agent queues: not yet)'
    AFTER status,
  ADD COLUMN recording VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Sound an answered contact hears (Asterisk sound name without extension, e.g. custom/promo)'
    AFTER mode,
  ADD COLUMN destination_id INT UNSIGNED NULL
    COMMENT 'Operator-named dialplan destination for an answered contact (instead of a recording)'
    AFTER recording,
  ADD COLUMN calls_per_second DECIMAL(7,3) NOT NULL DEFAULT 1
    COMMENT 'Most new calls started per second (0.001-1000)' AFTER max_channels,
  ADD COLUMN keep_free_channels INT NOT NULL DEFAULT 1
    COMMENT 'Channels of the client the campaign leaves free for the client''s other calls' AFTER calls_per_second,
  ADD COLUMN max_attempts INT NOT NULL DEFAULT 3
    COMMENT 'Most dial attempts per contact (rejections for the client''s own limits do not count)' AFTER keep_free_channels,
  ADD COLUMN retry_busy_seconds INT NOT NULL DEFAULT 300 COMMENT 'Wait before dialling again after busy' AFTER max_attempts,
  ADD COLUMN retry_no_answer_seconds INT NOT NULL DEFAULT 900
    COMMENT 'Wait before dialling again after no answer' AFTER retry_busy_seconds,
  ADD COLUMN retry_failed_seconds INT NOT NULL DEFAULT 600
    COMMENT 'Wait before dialling again after a failed call (congestion, unavailable, originate failed)'
    AFTER retry_no_answer_seconds,
  ADD COLUMN window_days SET('mon','tue','wed','thu','fri','sat','sun') NOT NULL DEFAULT 'mon,tue,wed,thu,fri'
    COMMENT 'Days calls may be made, in the contact''s time zone' AFTER retry_failed_seconds,
  ADD COLUMN window_start TIME NOT NULL DEFAULT '09:00:00'
    COMMENT 'Earliest local time of a call (contact''s time zone)' AFTER window_days,
  ADD COLUMN window_end TIME NOT NULL DEFAULT '20:00:00'
    COMMENT 'No call starts at or after this local time; before window_start: the window crosses midnight'
    AFTER window_start,
  ADD COLUMN time_zone VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'UTC'
    COMMENT 'IANA time zone of contacts that name none (e.g. Europe/London)' AFTER window_end,
  ADD COLUMN pacing_clock DATETIME(6) NULL
    COMMENT 'Managed by the dialer: calls per second are spent up to this time (UTC)' AFTER time_zone,
  ADD COLUMN dialer_note VARCHAR(255) NULL
    COMMENT 'Why the dialer last skipped this campaign (bad time zone, ...); NULL when it dials' AFTER pacing_clock,
  ADD COLUMN finished_at DATETIME NULL COMMENT 'When the campaign last finished (UTC)' AFTER dialer_note,
  ADD KEY ix_campaigns_status (status),
  ADD CONSTRAINT fk_campaigns_destination FOREIGN KEY (destination_id) REFERENCES campaign_destinations (id),
  ADD CONSTRAINT ck_campaigns_recording CHECK (recording IS NULL OR recording REGEXP '^[A-Za-z0-9_/-]{1,255}$'),
  ADD CONSTRAINT ck_campaigns_one_destination CHECK (recording IS NULL OR destination_id IS NULL),
  ADD CONSTRAINT ck_campaigns_cps CHECK (calls_per_second > 0 AND calls_per_second <= 1000),
  ADD CONSTRAINT ck_campaigns_keep_free CHECK (keep_free_channels >= 0),
  ADD CONSTRAINT ck_campaigns_max_attempts CHECK (max_attempts BETWEEN 1 AND 100),
  ADD CONSTRAINT ck_campaigns_retry_delays CHECK (retry_busy_seconds >= 0 AND retry_no_answer_seconds >= 0
                                                  AND retry_failed_seconds >= 0),
  ADD CONSTRAINT ck_campaigns_window CHECK (window_start <> window_end),
  ADD CONSTRAINT ck_campaigns_time_zone CHECK (time_zone REGEXP '^[A-Za-z0-9_+/-]{1,64}$');

DELIMITER //

-- A campaign may only run with a dialable caller ID. (One with nowhere to send an answered
-- contact is not refused here: the dialer skips it and says why in dialer_note.)
CREATE FUNCTION campaign_run_refusal(p_caller_id VARCHAR(64)) RETURNS VARCHAR(128)
  DETERMINISTIC NO SQL
  COMMENT 'Why a campaign with this caller ID cannot run, or NULL'
BEGIN
  IF p_caller_id IS NOT NULL AND p_caller_id NOT REGEXP '^[+]?[0-9]{1,31}$' THEN
    RETURN 'campaigns.caller_id must be digits with an optional leading +';
  END IF;
  RETURN NULL;
END//

CREATE TRIGGER campaigns_before_insert_dialable BEFORE INSERT ON campaigns FOR EACH ROW
  FOLLOWS campaigns_before_insert
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  IF NEW.status = 'running' THEN
    SET refusal = campaign_run_refusal(NEW.caller_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
END//

CREATE TRIGGER campaigns_before_update_dialable BEFORE UPDATE ON campaigns FOR EACH ROW
  FOLLOWS campaigns_before_update
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  -- Checked when a campaign is started or its caller ID changes; not when reactivating
  -- the client resumes it (a campaign from before this file must not block reactivation:
  -- the dialer skips it with a dialer_note instead).
  IF NEW.status = 'running' AND OLD.paused_by_suspension = 0
     AND (OLD.status <> 'running' OR NOT (NEW.caller_id <=> OLD.caller_id)) THEN
    SET refusal = campaign_run_refusal(NEW.caller_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  IF NEW.status = 'finished' AND OLD.status <> 'finished' THEN
    SET NEW.finished_at = UTC_TIMESTAMP();
  END IF;
END//

DELIMITER ;
