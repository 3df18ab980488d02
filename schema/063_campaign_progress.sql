-- The campaign board: contacts by state, attempts, answers, talk time, cost, calls in flight.

CREATE VIEW campaign_progress AS
SELECT
  g.id AS campaign_id,
  cl.code AS client,
  g.name AS campaign,
  g.status AS status,
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
