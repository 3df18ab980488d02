-- A campaign row holds only what people set. What the dialer keeps about a campaign (its
-- calls-per-second clock, why it skips it, whether and when it found nothing left to dial)
-- moves to campaign_runs, one row per campaign, which the dialer alone writes. Admin tools
-- write whole rows back (Adminer's edit form saves every column it loaded minutes ago;
-- through a tenant view, which has no key, its UPDATE also matches on every column): with
-- nothing of the dialer's on the campaign row, a stale full-row save does exactly what the
-- admin changed, and a save never misses a row the dialer worked meanwhile.
--
-- campaigns.status is now only what people choose: draft, running or paused. "finished"
-- is the dialer's finding (campaign_runs.finished): a running campaign whose contacts are
-- all dialled or set aside. It is not a choice any more, so a campaign is not restarted by
-- setting its status: give it contacts to dial (new ones, or set old ones back to 'new')
-- and the dialer dials them and clears `finished` by itself. The state people read
-- (campaign_progress.state) is the two together: finished wins over running and paused.
--
-- Data moves forward exactly: each campaign's pacing_clock, dialer_note and finished_at
-- go to its campaign_runs row; a finished campaign becomes status running with finished =
-- 1 (of a suspended client: paused by the suspension, so reactivation gives it back as it
-- was), so its state reads `finished` as before.
--
-- Lock order (store/dialer.py): the dialer locks a client's campaign rows (id order,
-- through uq_campaigns_id_client) and then their campaign_runs rows; nothing takes them
-- the other way round (the only trigger writing campaign_runs is campaigns' AFTER INSERT,
-- on a row no one else holds yet).
-- Runs before or after 100-103 and 140 alike: none of them reads the columns moved here;
-- 148 gives every campaigns trigger slot its final single trigger.

CREATE TABLE campaign_runs (
  campaign_id INT UNSIGNED NOT NULL COMMENT 'The campaign (one row each, made with the campaign)',
  finished TINYINT(1) NOT NULL DEFAULT 0
    COMMENT 'Kept by the dialer: 1 = it found no contact left to dial; contacts to dial again clear it',
  finished_at DATETIME NULL COMMENT 'Kept by the dialer: when it last found the campaign finished (UTC)',
  pacing_clock DATETIME(6) NULL
    COMMENT 'Kept by the dialer: calls per second are spent up to this time (UTC), shared by every dialer',
  dialer_note VARCHAR(255) NULL
    COMMENT 'Kept by the dialer: why it last skipped this campaign (bad time zone, ...); NULL when it dials',
  PRIMARY KEY (campaign_id),
  CONSTRAINT fk_campaign_runs_campaign FOREIGN KEY (campaign_id) REFERENCES campaigns (id)
    ON DELETE CASCADE,
  CONSTRAINT ck_campaign_runs_finished CHECK (finished IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='What the dialer keeps about each campaign (no admin form writes it); campaign_progress shows it beside the campaign';

INSERT INTO campaign_runs (campaign_id, finished, finished_at, pacing_clock, dialer_note)
SELECT id, IF(status = 'finished', 1, 0), finished_at, pacing_clock, dialer_note FROM campaigns;

-- These two read or write the columns that move: replaced below without them.
DROP TRIGGER IF EXISTS campaigns_before_update_input;
DROP TRIGGER IF EXISTS campaigns_before_update_dialable;

-- A finished campaign becomes running (paused by the suspension for a suspended client,
-- which cannot have running campaigns); its updated_at stays the last change people made.
UPDATE campaigns g JOIN clients c ON c.id = g.client_id
   SET g.status = IF(c.status = 'suspended', 'paused', 'running'),
       g.paused_by_suspension = IF(c.status = 'suspended', 1, 0),
       g.updated_at = g.updated_at
 WHERE g.status = 'finished';

ALTER TABLE campaigns
  MODIFY COLUMN status ENUM('draft','running','paused') NOT NULL DEFAULT 'draft'
    COMMENT 'What people choose: draft, running (dial) or paused; the dialer''s finding is campaign_runs.finished. A suspended client cannot have running campaigns',
  DROP COLUMN pacing_clock,
  DROP COLUMN dialer_note,
  DROP COLUMN finished_at;

DELIMITER //

CREATE TRIGGER campaigns_before_update_input BEFORE UPDATE ON campaigns FOR EACH ROW
  PRECEDES campaigns_before_update
BEGIN
  IF NEW.max_channels > 10000 AND NOT (NEW.max_channels <=> OLD.max_channels) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
END//

CREATE TRIGGER campaigns_before_update_dialable BEFORE UPDATE ON campaigns FOR EACH ROW
  FOLLOWS campaigns_before_update
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  -- Checked when a campaign is started or its caller ID changes; not when reactivating
  -- the client resumes it (the dialer skips a bad one with a dialer_note instead).
  IF NEW.status = 'running' AND OLD.paused_by_suspension = 0
     AND (OLD.status <> 'running' OR NOT (NEW.caller_id <=> OLD.caller_id)) THEN
    SET refusal = campaign_run_refusal(NEW.caller_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
END//

-- Every campaign has its campaign_runs row from the start.
CREATE TRIGGER campaigns_after_insert AFTER INSERT ON campaigns FOR EACH ROW
BEGIN
  INSERT INTO campaign_runs (campaign_id) VALUES (NEW.id);
END//

DELIMITER ;

-- The board: what people set and what the dialer keeps, side by side. `status` is the
-- people's choice, `state` what the campaign is doing (finished wins over it).
CREATE OR REPLACE VIEW campaign_progress AS
SELECT
  g.id AS campaign_id,
  cl.code AS client,
  g.name AS campaign,
  g.status AS status,
  IF(r.finished = 1 AND g.status <> 'draft', 'finished', g.status) AS state,
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
