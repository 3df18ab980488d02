-- app_queue realtime (extconfig.conf: queues => odbc,asterisk,ast_queues and
-- queue_members => odbc,asterisk,ast_queue_members). Both are VIEWs: nothing is copied,
-- nothing can go stale, and no code has to run when a client is suspended.
--
-- app_queue re-reads a realtime queue and its members on every Queue() call
-- (find_load_queue_rt_friendly), and the members again after each unanswered round of
-- ringing (update_realtime_members, every ring_timeout + retry_seconds). So:
--  - a queue of a suspended client, or a disabled queue, is gone for the next call;
--  - an agent appears as a member only while it has an open session (agent_sessions) and
--    its client, agent and extension are active; suspension ends the sessions (042) and
--    the view also filters on the client's status, so no queue of a suspended client
--    rings anyone from the next round on. The agent's phone itself (ps_endpoints) is
--    hidden at once, so even a round already under way cannot reach it again.
-- The member's uniqueid is queue_members.id. Pausing members over AMI/CLI (which would
-- UPDATE this view) is not supported: log the agent out instead.

CREATE VIEW ast_queues AS
SELECT
  q.asterisk_name                  AS name,
  q.strategy                       AS strategy,
  q.ring_timeout                   AS timeout,
  q.retry_seconds                  AS retry,
  q.wrapup_seconds                 AS wrapuptime,
  'no'                             AS ringinuse,       -- never ring an agent already on a call
  'yes'                            AS setinterfacevar, -- MEMBERINTERFACE etc. on the caller's channel
  'unavailable,invalid,unknown'    AS joinempty,       -- no usable agent logged in: do not queue (QUEUESTATUS=JOINEMPTY)
  'unavailable,invalid,unknown'    AS leavewhenempty,  -- the last agent gone (logout, suspension): waiting callers leave (LEAVEEMPTY)
  'yes'                            AS autofill,
  c.code                           AS client            -- not an app_queue parameter: for the administrator
FROM queues q
JOIN clients c ON c.id = q.client_id
WHERE q.status = 'active' AND c.status = 'active';

CREATE VIEW ast_queue_members AS
SELECT
  m.id                                    AS uniqueid,
  q.asterisk_name                         AS queue_name,
  CONCAT('PJSIP/', e.sip_username)        AS interface,
  CONCAT(a.name, ' (', a.login_number, ')') AS membername,
  CONCAT('PJSIP/', e.sip_username)        AS state_interface,
  m.penalty                               AS penalty,
  0                                       AS paused,
  CAST('' AS CHAR(80))                    AS reason_paused,
  'no'                                    AS ringinuse
FROM queue_members m
JOIN queues q ON q.id = m.queue_id AND q.client_id = m.client_id
JOIN clients c ON c.id = m.client_id
JOIN agents a ON a.id = m.agent_id AND a.client_id = m.client_id
JOIN agent_sessions s ON s.agent_id = m.agent_id AND s.client_id = m.client_id AND s.ended_at IS NULL
JOIN extensions e ON e.id = s.extension_id AND e.client_id = m.client_id
WHERE c.status = 'active' AND q.status = 'active' AND a.status = 'active'
  AND e.status = 'active' AND e.md5_cred IS NOT NULL;
