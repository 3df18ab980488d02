-- A suspension stops a client's campaigns without writing them (issue 19: a row people
-- edit holds only what people set). Until here suspending a client set its running
-- campaigns to status 'paused' with paused_by_suspension = 1 and reactivation set them
-- back, so a full-row form (Adminer) loaded on one side of a suspension and saved on the
-- other wrote the old status back: a campaign stayed paused after reactivation, or ran
-- again during the suspension.
--
-- Now campaigns.status is only what people chose. The dialer dials a campaign only while
-- its client is active (store/dialer.py: running_campaigns and claim read clients.status,
-- as they already did), so a suspension stops it and reactivation needs no write:
-- campaigns people left running run again, ones people paused stay paused.
-- campaign_progress.state (and the tenant views campaign_progress and campaign_runs)
-- show the effective state: 'suspended' for a running campaign of a suspended client
-- (it wins over 'finished'), beside `status`, the people's choice.
--
-- paused_by_suspension stays as a column (tenant views and tools of older versions name
-- it) but nothing writes or reads it any more: deprecated, always 0 after this file.
-- Starting a campaign (status to running) of a suspended client is still refused, as
-- before; a campaign left running through the suspension is not a start.
--
-- Runs after 147-149 (and so after 100-103 and 140) on every database; the trigger slots
-- it replaces keep exactly one trigger each (same names).

DELIMITER //

-- Internal, for the clients UPDATE trigger: what a suspension does at once.
CREATE OR REPLACE PROCEDURE client_suspended(IN p_client_id INT UNSIGNED)
  COMMENT 'Internal, for the clients UPDATE trigger: what a suspension does at once (agent sessions ended, live calls ended over AMI through client_changes); campaigns are not written, the dialer skips a suspended client''s'
BEGIN
  CALL end_agent_sessions(p_client_id, NULL, NULL, 'suspended');
  INSERT INTO client_changes (client_id, kind, created_at)
    VALUES (p_client_id, 'suspended', UTC_TIMESTAMP(3));
END//

CREATE OR REPLACE TRIGGER clients_after_update AFTER UPDATE ON clients FOR EACH ROW
BEGIN
  -- Alerts (135): suspension, reactivation, a threshold raised above the balance.
  IF NOT (NEW.status <=> OLD.status)
     OR NOT (NEW.low_balance_threshold <=> OLD.low_balance_threshold) THEN
    CALL note_client_change(NEW.id, OLD.status, NEW.status,
                            OLD.low_balance_threshold, NEW.low_balance_threshold);
  END IF;
  -- Reactivation writes nothing: the dialer dials the running campaigns again by itself.
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    CALL client_suspended(NEW.id);
  ELSEIF NEW.end_calls_without_credit = 1 AND OLD.end_calls_without_credit = 0 THEN
    CALL log_client_without_credit(NEW.id, NEW.credit_limit);
  END IF;
END//

DELIMITER ;

DROP PROCEDURE IF EXISTS client_status_campaigns;

-- The data: a campaign paused by a suspension goes back to what people chose, running
-- (its client is still suspended, so it stays stopped until reactivation). The campaigns
-- UPDATE trigger would refuse it as a start of a suspended client's campaign, so its slot
-- is emptied for this statement and filled again just below; updated_at stays the last
-- change people made.
DROP TRIGGER IF EXISTS campaigns_before_update;

UPDATE campaigns SET status = 'running', paused_by_suspension = 0, updated_at = updated_at
 WHERE paused_by_suspension = 1;

ALTER TABLE campaigns
  MODIFY COLUMN paused_by_suspension TINYINT(1) NOT NULL DEFAULT 0
    COMMENT 'Deprecated (schema/150), always 0: a suspension no longer writes campaigns; campaign_progress.state shows suspended';

DELIMITER //

-- 148's trigger without paused_by_suspension: a suspension no longer pauses campaigns.
CREATE OR REPLACE TRIGGER campaigns_before_update BEFORE UPDATE ON campaigns FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  DECLARE v_empty VARCHAR(64) DEFAULT NULL;
  -- input limits (090): refused only when changed, so a full-row save of an older row
  -- goes through.
  IF NEW.max_channels > 10000 AND NOT (NEW.max_channels <=> OLD.max_channels) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
  -- suspension (004, 150): a suspended client's campaign cannot be started; one left
  -- running stays running (the dialer skips it until reactivation).
  IF NEW.status = 'running' AND OLD.status <> 'running'
     AND (SELECT status FROM clients WHERE id = NEW.client_id) = 'suspended' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its campaigns cannot run';
  END IF;
  -- dialable (060): checked when a campaign is started or its caller ID changes.
  IF NEW.status = 'running'
     AND (OLD.status <> 'running' OR NOT (NEW.caller_id <=> OLD.caller_id)) THEN
    SET refusal = campaign_run_refusal(NEW.caller_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  -- tenant guard (100): the routine runs only when it may have to refuse (a check off,
  -- an ENUM stored as '', client_id changed, a forged clock or skipped replication).
  SET v_empty = CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.mode = '' THEN 'mode' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('campaigns', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//

DELIMITER ;

-- The board: `status` is the people's choice, `state` what the campaign is doing:
-- suspended (running, but its client is suspended), finished, or the status.
CREATE OR REPLACE VIEW campaign_progress AS
SELECT
  g.id AS campaign_id,
  cl.code AS client,
  g.name AS campaign,
  g.status AS status,
  CASE WHEN g.status = 'running' AND cl.status = 'suspended' THEN 'suspended'
       WHEN r.finished = 1 AND g.status <> 'draft' THEN 'finished'
       ELSE g.status END AS state,
  g.mode AS mode,
  q.asterisk_name AS queue,
  g.calls_per_second AS calls_per_second,
  g.max_channels AS max_channels,
  COALESCE(ct.total, 0) AS contacts,
  COALESCE(ct.waiting, 0) AS waiting,
  COALESCE(ct.dialing, 0) AS dialing,
  COALESCE(ct.answered, 0) AS answered_contacts,
  COALESCE(ct.failed, 0) AS failed_contacts,
  COALESCE(ct.skipped, 0) AS skipped_contacts,
  COALESCE(a.attempts, 0) AS attempts,
  COALESCE(a.answered, 0) AS answered,
  IF(COALESCE(a.ended, 0) = 0, NULL, ROUND(a.answered / a.ended, 4)) AS answer_rate,
  COALESCE(a.talk_seconds, 0) AS talk_seconds,
  COALESCE(a.cost, 0) AS cost,
  COALESCE(a.in_flight, 0) AS in_flight,
  r.dialer_note AS dialer_note,
  r.finished_at AS finished_at,
  r.pacing_clock AS pacing_clock
FROM campaigns g
JOIN clients cl ON cl.id = g.client_id
LEFT JOIN campaign_runs r ON r.campaign_id = g.id
LEFT JOIN queues q ON q.id = g.queue_id
LEFT JOIN (
  SELECT campaign_id,
         COUNT(*) AS total,
         SUM(status IN ('new', 'retry')) AS waiting,
         SUM(status = 'dialing') AS dialing,
         SUM(status = 'answered') AS answered,
         SUM(status = 'failed') AS failed,
         SUM(status IN ('do-not-call', 'invalid', 'done')) AS skipped
  FROM contacts WHERE campaign_id IS NOT NULL GROUP BY campaign_id
) ct ON ct.campaign_id = g.id
LEFT JOIN (
  SELECT campaign_id,
         COUNT(*) AS attempts,
         SUM(outcome = 'answered') AS answered,
         SUM(outcome IS NOT NULL) AS ended,
         SUM(COALESCE(answered_seconds, 0)) AS talk_seconds,
         SUM(COALESCE(cost, 0)) AS cost,
         SUM(outcome IS NULL) AS in_flight
  FROM campaign_attempts GROUP BY campaign_id
) a ON a.campaign_id = g.id;

-- The tenant's read-only campaign_runs: the effective state instead of the deprecated flag.
UPDATE tenant_views SET definition =
 'SELECT g.id AS campaign_id, g.name AS campaign, g.status,
         CASE WHEN g.status = ''running'' AND c.status = ''suspended'' THEN ''suspended''
              WHEN r.finished = 1 AND g.status <> ''draft'' THEN ''finished''
              ELSE g.status END AS state,
         r.finished, r.finished_at, r.pacing_clock, r.dialer_note,
         g.created_at, g.updated_at
  FROM campaigns g JOIN clients c ON c.id = g.client_id
  LEFT JOIN campaign_runs r ON r.campaign_id = g.id
  WHERE g.client_id = (SELECT client_id FROM tenant_session)',
 description = 'What the system keeps about your campaigns: the dialer''s state (suspended while your account is), timestamps (read-only)'
 WHERE name = 'campaign_runs';

CALL refresh_tenant_world();
