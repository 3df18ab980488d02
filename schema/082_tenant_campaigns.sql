-- A client's campaigns in its tenant world, whole: supervisors set every dialling rule of
-- their own campaigns (mode, what an answered contact hears or where it goes, caller ID,
-- caps, calls per second, retries, calling window), keep their own do-not-call list, and
-- everyone reads the progress board and the attempts. Nothing here reaches money, limits
-- or another client: campaign rows keep their composite foreign keys (a queue of another
-- client is error 1452), the client's channel limit and credit still bound every call
-- (authorize), and the operator's do-not-call entries (client_id NULL) are not shown.

UPDATE tenant_views SET definition =
 'SELECT id, name, status, paused_by_suspension, mode, recording, destination_id, queue_id,
         queue_wait_seconds, caller_id, max_channels, calls_per_second, keep_free_channels,
         max_attempts, retry_busy_seconds, retry_no_answer_seconds, retry_failed_seconds,
         window_days, window_start, window_end, time_zone, dialer_note, finished_at,
         created_at, updated_at
  FROM campaigns WHERE client_id = (SELECT client_id FROM tenant_session)'
 WHERE name = 'campaigns';

UPDATE tenant_views SET definition =
 'SELECT id, campaign_id, phone, first_name, last_name, email, time_zone, status, attempts,
         last_attempt_at, next_attempt_at, last_outcome, last_reason, created_at, updated_at
  FROM contacts WHERE client_id = (SELECT client_id FROM tenant_session)'
 WHERE name = 'contacts';

UPDATE tenant_privileges SET columns =
 'name,status,mode,recording,destination_id,queue_id,queue_wait_seconds,caller_id,max_channels,calls_per_second,keep_free_channels,max_attempts,retry_busy_seconds,retry_no_answer_seconds,retry_failed_seconds,window_days,window_start,window_end,time_zone'
 WHERE view_name = 'campaigns' AND role = 'supervisor' AND privilege IN ('INSERT', 'UPDATE');

UPDATE tenant_privileges SET columns =
 'campaign_id,phone,first_name,last_name,email,time_zone,status'
 WHERE view_name = 'contacts' AND role = 'supervisor' AND privilege IN ('INSERT', 'UPDATE');

DELIMITER //
CREATE TRIGGER do_not_call_tenant_before_insert BEFORE INSERT ON do_not_call FOR EACH ROW
BEGIN
  -- An operator's row without client_id stays on the operator's list (NULL).
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//
DELIMITER ;

INSERT INTO tenant_views (name, writable, description, definition) VALUES
('do_not_call', 1, 'Your do-not-call list: numbers your campaigns never dial (the operator''s list applies too)',
 'SELECT id, phone, note, created_at
  FROM do_not_call WHERE client_id = (SELECT client_id FROM tenant_session)'),
('campaign_progress', 0, 'Your campaigns as they dial: contacts by state, attempts, answers, talk time, cost, calls in flight',
 'SELECT p.campaign_id, p.campaign, p.status, p.mode, p.queue, p.calls_per_second, p.max_channels,
         p.contacts, p.waiting, p.dialing, p.answered_contacts, p.failed_contacts,
         p.skipped_contacts, p.attempts, p.answered, p.answer_rate, p.talk_seconds, p.cost,
         p.in_flight, p.dialer_note, p.finished_at
  FROM campaign_progress p
  WHERE p.campaign_id IN (SELECT g.id FROM campaigns g
                          WHERE g.client_id = (SELECT client_id FROM tenant_session))'),
('campaign_attempts', 0, 'Every dial attempt of your campaigns and how it ended',
 'SELECT id, campaign_id, contact_id, attempt_no, phone, started_at, answered_at, ended_at,
         outcome, reason, call_id, answered_seconds, cost
  FROM campaign_attempts WHERE client_id = (SELECT client_id FROM tenant_session)'),
('campaign_destinations', 0, 'Where an answered contact can be sent (named by the operator): pick one for campaigns.destination_id',
 'SELECT d.id, d.name, d.description FROM campaign_destinations d
  WHERE EXISTS (SELECT 1 FROM tenant_session)');

INSERT INTO tenant_privileges (view_name, role, privilege, columns) VALUES
 ('do_not_call', 'agent', 'SELECT', NULL),
 ('do_not_call', 'supervisor', 'INSERT', 'phone,note'),
 ('do_not_call', 'supervisor', 'DELETE', NULL),
 ('campaign_progress', 'agent', 'SELECT', NULL),
 ('campaign_attempts', 'agent', 'SELECT', NULL),
 ('campaign_destinations', 'agent', 'SELECT', NULL);

CALL refresh_tenant_world();
