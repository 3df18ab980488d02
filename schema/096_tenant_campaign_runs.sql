-- A client's campaigns in its tenant world after 095: the editable `campaigns` view shows
-- only what people set (and the id), so a tool's save through it, which matches on every
-- column it loaded (a view has no key), still finds a row the dialer worked meanwhile: the
-- dialer writes only campaign_runs. What the system keeps about a campaign (the dialer's
-- state, the suspension's pause, the timestamps) is the read-only view `campaign_runs`,
-- and `campaign_progress` shows both side by side. Read-only views are granted SELECT
-- only, so Adminer and phpMyAdmin offer them read-only.
-- Runs before or after 100-103 alike: those files build from these rows and change none
-- of them.

UPDATE tenant_views SET definition =
 'SELECT id, name, status, mode, recording, destination_id, queue_id, queue_wait_seconds,
         caller_id, max_channels, calls_per_second, keep_free_channels, max_attempts,
         retry_busy_seconds, retry_no_answer_seconds, retry_failed_seconds, window_days,
         window_start, window_end, time_zone
  FROM campaigns WHERE client_id = (SELECT client_id FROM tenant_session)',
 description = 'Your campaigns: what you set (the dialer''s state is in campaign_runs)'
 WHERE name = 'campaigns';

UPDATE tenant_views SET definition =
 'SELECT p.campaign_id, p.campaign, p.status, p.state, p.mode, p.queue, p.calls_per_second,
         p.max_channels, p.contacts, p.waiting, p.dialing, p.answered_contacts,
         p.failed_contacts, p.skipped_contacts, p.attempts, p.answered, p.answer_rate,
         p.talk_seconds, p.cost, p.in_flight, p.dialer_note, p.finished_at
  FROM campaign_progress p
  WHERE p.campaign_id IN (SELECT g.id FROM campaigns g
                          WHERE g.client_id = (SELECT client_id FROM tenant_session))'
 WHERE name = 'campaign_progress';

INSERT INTO tenant_views (name, writable, description, definition) VALUES
('campaign_runs', 0, 'What the system keeps about your campaigns: the dialer''s state, pauses by suspension, timestamps (read-only)',
 'SELECT g.id AS campaign_id, g.name AS campaign, g.status,
         IF(r.finished = 1 AND g.status <> ''draft'', ''finished'', g.status) AS state,
         r.finished, r.finished_at, r.pacing_clock, r.dialer_note, g.paused_by_suspension,
         g.created_at, g.updated_at
  FROM campaigns g LEFT JOIN campaign_runs r ON r.campaign_id = g.id
  WHERE g.client_id = (SELECT client_id FROM tenant_session)');

INSERT INTO tenant_privileges (view_name, role, privilege, columns) VALUES
 ('campaign_runs', 'agent', 'SELECT', NULL);

CALL refresh_tenant_world();
