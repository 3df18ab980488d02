-- A suspended reseller stops its whole subtree (issue 23) without writing the subtree's
-- own rows: clients.status of every client below stays what people set, so reactivation
-- restores exactly the previous state (a child suspended by itself stays suspended).
--
-- "Blocked by an ancestor" is not stored: it is read from the closure table client_tree
-- (schema/120) at the moment it matters,
--
--   EXISTS (SELECT 1 FROM client_tree t JOIN clients a ON a.id = t.ancestor_id
--            WHERE t.client_id = <client> AND t.depth > 0
--              AND a.status = 'suspended' AND a.parent_id IS NOT NULL)
--
-- a few primary-key reads (one per level above the client, at most a handful), so it can
-- never go stale: a child created under a suspended reseller, a move_client (127), a hand
-- edit of a status, all are right at the next read with nothing to keep in step. The
-- root (`master`, parent_id NULL) is the operator's own account: its status stops its own
-- calls only, as authorize (120) reads it.
--
-- Where it is read (each object below is re-created with its old body plus a labelled
-- block):
-- * the PJSIP realtime views ps_endpoints, ps_auths, ps_aors (020/032) and the app_queue
--   views ast_queues, ast_queue_members (043): the subtree's phones and queues vanish for
--   the next REGISTER/INVITE/Queue() and come back on reactivation;
-- * tenant_session (103): a blocked client's database logins see nothing at once, and
--   sync_db_logins (102/104) locks them (and ends their sessions) within a second;
--   user_login_status (030): user_login answers client-suspended;
-- * campaign_progress.state and the tenant campaign_runs view (150): `suspended`;
-- * client_suspended (150), run by the clients UPDATE trigger: agent sessions of the
--   whole subtree are ended (the agent_login route refuses new ones: store/agents.py) and
--   the change-log row lets AMI enforcement end the subtree's live calls
--   (store/call_watch.py expands a reseller's change to its subtree).
-- The dialer (store/dialer.py) reads the same predicate.
--
-- Runs after 147-150 (and 120) on every database.

DELIMITER //

-- 150's body for the client itself, plus the subtree's agent sessions.
CREATE OR REPLACE PROCEDURE client_suspended(IN p_client_id INT UNSIGNED)
  COMMENT 'Internal, for the clients UPDATE trigger: what a suspension does at once (agent sessions of the client and its whole subtree ended, live calls ended over AMI through client_changes); campaigns are not written, the dialer skips a suspended client''s and its subtree''s'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_child INT UNSIGNED;
  -- Only clients with an open session: the rest have nothing to end.
  DECLARE below CURSOR FOR
    SELECT DISTINCT t.client_id FROM client_tree t
      JOIN agent_sessions s ON s.client_id = t.client_id AND s.ended_at IS NULL
     WHERE t.ancestor_id = p_client_id AND t.depth > 0
     ORDER BY t.client_id;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  CALL end_agent_sessions(p_client_id, NULL, NULL, 'suspended');
  subtree: BEGIN
    OPEN below;
    below_loop: LOOP
      FETCH below INTO v_child;
      IF done THEN LEAVE below_loop; END IF;
      CALL end_agent_sessions(v_child, NULL, NULL, 'suspended');
    END LOOP;
    CLOSE below;
  END subtree;
  INSERT INTO client_changes (client_id, kind, created_at)
    VALUES (p_client_id, 'suspended', UTC_TIMESTAMP(3));
END//

DELIMITER ;

-- PJSIP realtime (020/032): as before, plus no suspended ancestor.
CREATE OR REPLACE VIEW ps_endpoints AS
SELECT
  e.sip_username            AS id,
  'transport-udp'           AS transport,
  e.sip_username            AS aors,
  e.sip_username            AS auth,
  CONCAT('client-', c.code) AS context,
  'all'                     AS disallow,
  'ulaw,alaw,g722'          AS allow,
  e.callerid                AS callerid,
  c.code                    AS accountcode,
  CAST(NULL AS CHAR(80))    AS mailboxes,
  'no'                      AS direct_media,
  'yes'                     AS rtp_symmetric,
  'yes'                     AS force_rport,
  'yes'                     AS rewrite_contact,
  'rfc4733'                 AS dtmf_mode,
  'no'                      AS trust_id_inbound,
  'username'                AS identify_by
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                   WHERE t.client_id = c.id AND t.depth > 0
                     AND b.status = 'suspended' AND b.parent_id IS NOT NULL);

CREATE OR REPLACE VIEW ps_auths AS
SELECT
  e.sip_username AS id,
  'md5'          AS auth_type,
  e.sip_username AS username,
  e.md5_cred     AS md5_cred,
  'asterisk'     AS realm
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                   WHERE t.client_id = c.id AND t.depth > 0
                     AND b.status = 'suspended' AND b.parent_id IS NOT NULL);

CREATE OR REPLACE VIEW ps_aors AS
SELECT
  e.sip_username AS id,
  e.max_contacts AS max_contacts,
  'yes'          AS remove_existing,
  3600           AS default_expiration,
  60             AS qualify_frequency,
  CAST(NULL AS CHAR(255)) AS contact
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                   WHERE t.client_id = c.id AND t.depth > 0
                     AND b.status = 'suspended' AND b.parent_id IS NOT NULL);

-- app_queue realtime (043): as before, plus no suspended ancestor.
CREATE OR REPLACE VIEW ast_queues AS
SELECT
  q.asterisk_name                  AS name,
  q.strategy                       AS strategy,
  q.ring_timeout                   AS timeout,
  q.retry_seconds                  AS retry,
  q.wrapup_seconds                 AS wrapuptime,
  'no'                             AS ringinuse,
  'yes'                            AS setinterfacevar,
  'unavailable,invalid,unknown'    AS joinempty,
  'unavailable,invalid,unknown'    AS leavewhenempty,
  'yes'                            AS autofill,
  c.code                           AS client
FROM queues q
JOIN clients c ON c.id = q.client_id
WHERE q.status = 'active' AND c.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                   WHERE t.client_id = c.id AND t.depth > 0
                     AND b.status = 'suspended' AND b.parent_id IS NOT NULL);

CREATE OR REPLACE VIEW ast_queue_members AS
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
  AND e.status = 'active' AND e.md5_cred IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                   WHERE t.client_id = c.id AND t.depth > 0
                     AND b.status = 'suspended' AND b.parent_id IS NOT NULL);

-- The tenant world's scope (103): a login of a blocked client sees nothing, at once.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW tenant_session AS
SELECT l.client_id AS client_id, l.user_id AS user_id
FROM db_logins l
JOIN clients c ON c.id = l.client_id
WHERE l.account = SUBSTRING_INDEX(USER(), '@', 1)
  AND l.locked = 0 AND c.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                   WHERE t.client_id = c.id AND t.depth > 0
                     AND b.status = 'suspended' AND b.parent_id IS NOT NULL);

-- The board (150): `suspended` also for a running campaign of a client whose reseller
-- (or one above it) is suspended. The tenant campaign_runs view needs no change: a
-- blocked client's logins see nothing (tenant_session above).
CREATE OR REPLACE VIEW campaign_progress AS
SELECT
  g.id AS campaign_id,
  cl.code AS client,
  g.name AS campaign,
  g.status AS status,
  CASE WHEN g.status = 'running' AND cl.status = 'suspended' THEN 'suspended'
       WHEN g.status = 'running'
            AND EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                         WHERE t.client_id = cl.id AND t.depth > 0
                           AND b.status = 'suspended' AND b.parent_id IS NOT NULL)
            THEN 'suspended'
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

-- The login sync (102/104) as before; a login is open only while its client has no
-- suspended reseller above it either (the subtree predicate, twice: what it should be,
-- and the test that finds logins out of step with it).
DELIMITER //

CREATE OR REPLACE PROCEDURE sync_db_logins()
    COMMENT 'Apply role changes, locks and resource limits to client database logins; end client sessions that hold what others need'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_got TINYINT DEFAULT 0;
  DECLARE v_ended INT DEFAULT 0;
  DECLARE v_user_id INT UNSIGNED;
  DECLARE v_account VARCHAR(80);
  DECLARE v_host VARCHAR(60);
  DECLARE v_applied VARCHAR(16);
  DECLARE v_role VARCHAR(16);
  DECLARE v_locked TINYINT;
  DECLARE v_open TINYINT;
  DECLARE v_applied_limits VARCHAR(64);
  DECLARE v_connections INT UNSIGNED DEFAULT (SELECT max_connections FROM tenant_login_limits WHERE id = 1);
  DECLARE v_statement INT UNSIGNED DEFAULT (SELECT max_statement_seconds FROM tenant_login_limits WHERE id = 1);
  DECLARE v_limits VARCHAR(64) DEFAULT CONCAT(v_connections, '/', v_statement);
  DECLARE v_saved_wait INT UNSIGNED DEFAULT @@SESSION.innodb_lock_wait_timeout;
  DECLARE v_lock_name VARCHAR(64) DEFAULT LEFT(CONCAT('ict_db_login_sync:', DATABASE()), 64);
  DECLARE pending CURSOR FOR
    SELECT l.user_id, l.account, l.host, l.applied_role, CAST(u.role AS CHAR), l.locked,
           (c.status = 'active' AND u.status = 'active' AND (a.id IS NULL OR a.status = 'active')
            AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                             WHERE t.client_id = c.id AND t.depth > 0
                               AND b.status = 'suspended' AND b.parent_id IS NOT NULL)),
           l.applied_limits
      FROM db_logins l
      JOIN users u ON u.id = l.user_id
      JOIN clients c ON c.id = u.client_id
      LEFT JOIN agents a ON a.id = u.agent_id
     WHERE NOT (l.applied_role <=> u.role)
        OR l.locked = (c.status = 'active' AND u.status = 'active' AND (a.id IS NULL OR a.status = 'active')
            AND NOT EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                             WHERE t.client_id = c.id AND t.depth > 0
                               AND b.status = 'suspended' AND b.parent_id IS NOT NULL))
        OR NOT (l.applied_limits <=> v_limits)
        OR u.role NOT IN ('admin', 'supervisor', 'agent');
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET SESSION innodb_lock_wait_timeout = v_saved_wait;
    DO RELEASE_LOCK(v_lock_name);
    RESIGNAL;
  END;

  SET SESSION innodb_lock_wait_timeout = 2;
  CALL take_db_login_sync_lock(v_lock_name, v_got);
  IF v_got = 1 THEN
    BEGIN
      DECLARE v_problem VARCHAR(512);
      DECLARE CONTINUE HANDLER FOR SQLEXCEPTION
      BEGIN
        GET DIAGNOSTICS CONDITION 1 v_problem = MESSAGE_TEXT;
        INSERT INTO db_login_sync_problems (user_id, account, problem, seen_at)
          VALUES (0, '', CONCAT('watchdog: ', LEFT(v_problem, 400)), UTC_TIMESTAMP())
          ON DUPLICATE KEY UPDATE problem = VALUES(problem), seen_at = VALUES(seen_at);
      END;
      CALL end_hostile_tenant_sessions(v_ended);
    END;
    IF v_ended > 0 THEN

      DO SLEEP(0.2);
    END IF;
    OPEN pending;
    pending_loop: LOOP
      FETCH pending INTO v_user_id, v_account, v_host, v_applied, v_role, v_locked, v_open, v_applied_limits;
      IF done THEN LEAVE pending_loop; END IF;
      CALL sync_db_login(v_user_id, v_account, v_host, v_applied, v_role, v_locked, v_open,
                         v_applied_limits, v_connections, v_statement);
    END LOOP;
    CLOSE pending;
    DO RELEASE_LOCK(v_lock_name);
  END IF;
  SET SESSION innodb_lock_wait_timeout = v_saved_wait;
END//

DELIMITER ;

-- Application logins (030): user_login answers client-suspended for a client whose
-- reseller (or one above it) is suspended too.
CREATE OR REPLACE VIEW user_login_status AS
SELECT u.id AS user_id, u.username, c.code AS client, u.role,
       CASE
         WHEN c.status <> 'active' THEN 'client-suspended'
         WHEN EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                       WHERE t.client_id = c.id AND t.depth > 0
                         AND b.status = 'suspended' AND b.parent_id IS NOT NULL)
           THEN 'client-suspended'
         WHEN u.status <> 'active' THEN 'user-disabled'
         WHEN a.id IS NOT NULL AND a.status <> 'active' THEN 'agent-disabled'
         WHEN u.password_hash IS NULL THEN 'no-password'
         ELSE 'ok'
       END AS login_state,
       u.last_login_at
FROM users u
JOIN clients c ON c.id = u.client_id
LEFT JOIN agents a ON a.id = u.agent_id;
