-- Progressive campaigns: dial a contact only when an agent of the campaign's queue is
-- free, and connect the answered contact to that queue ([ict-campaign-queue] in
-- dialplan/ictcontact.conf). The queue must be the campaign's own client's (composite
-- foreign key), like every other row of a tenant's world.

ALTER TABLE campaigns
  MODIFY COLUMN mode ENUM('broadcast','progressive') NOT NULL DEFAULT 'broadcast'
    COMMENT 'broadcast: on answer play the recording or go to the destination; progressive: dial only for a free agent of queue_id and connect the answer to that queue',
  ADD COLUMN queue_id INT UNSIGNED NULL
    COMMENT 'progressive: the queue (same client) whose free agents the dialer dials for'
    AFTER destination_id,
  ADD COLUMN queue_wait_seconds INT NOT NULL DEFAULT 30
    COMMENT 'progressive: longest an answered contact waits in the queue for an agent before being hung up'
    AFTER queue_id,
  ADD KEY ix_campaigns_queue_client (queue_id, client_id),
  ADD CONSTRAINT fk_campaigns_queue_same_client FOREIGN KEY (queue_id, client_id)
    REFERENCES queues (id, client_id),
  ADD CONSTRAINT ck_campaigns_mode CHECK (mode IN ('broadcast', 'progressive')),
  ADD CONSTRAINT ck_campaigns_progressive_queue CHECK (
    (mode = 'progressive' AND queue_id IS NOT NULL AND recording IS NULL AND destination_id IS NULL)
    OR (mode = 'broadcast' AND queue_id IS NULL)),
  ADD CONSTRAINT ck_campaigns_queue_wait CHECK (queue_wait_seconds BETWEEN 1 AND 3600);

-- When the contact answered (the dialer saw OriginateResponse Success). A progressive
-- campaign counts an attempt as still needing an agent until Asterisk's queue status
-- taken after this time shows it.
ALTER TABLE campaign_attempts
  ADD COLUMN answered_at DATETIME(3) NULL
    COMMENT 'When the contact answered, as the dialer saw it (UTC); NULL: not (yet) answered'
    AFTER ended_at;

CREATE OR REPLACE VIEW campaign_progress AS
SELECT
  g.id AS campaign_id,
  cl.code AS client,
  g.name AS campaign,
  g.status AS status,
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
  g.dialer_note AS dialer_note,
  g.finished_at AS finished_at
FROM campaigns g
JOIN clients cl ON cl.id = g.client_id
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
