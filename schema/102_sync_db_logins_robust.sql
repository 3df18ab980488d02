-- sync_db_logins (075) holds whatever a client does:
-- * Its named lock can be taken by any session (MariaDB has no privilege on GET_LOCK and
--   the name derives from the database's). When the lock is busy and its holder is a
--   client login's session, that session is ended and the lock taken.
-- * It first ends the sessions that hold what others need (end_hostile_tenant_sessions,
--   101), and waits for a row lock 2 s at most.
-- * One login's failure (a users row with an invalid role, an account dropped by hand, a
--   statement refused) no longer stops the others: that login is locked if it can be
--   (fail closed), the reason goes to db_login_sync_problems, and the loop goes on.
-- * It applies the resource limits of tenant_login_limits to every account.

DELIMITER //

CREATE PROCEDURE take_db_login_sync_lock(IN p_name VARCHAR(64), OUT p_got TINYINT)
  COMMENT 'Internal: GET_LOCK for the login sync; a client login holding it has its session ended'
BEGIN
  DECLARE v_holder BIGINT UNSIGNED;
  DECLARE v_user VARCHAR(128) CHARACTER SET utf8mb4;
  SET p_got = GET_LOCK(p_name, 0);
  IF NOT p_got <=> 1 THEN
    SET v_holder = IS_USED_LOCK(p_name);
    SET v_user = (SELECT user FROM information_schema.processlist WHERE id = v_holder);
    IF v_holder IS NOT NULL AND tenant_account_of(v_user) THEN
      CALL end_tenant_session(v_holder, v_user, 'connection', 'it held the login sync''s named lock');
    END IF;
    SET p_got = GET_LOCK(p_name, 3);
  END IF;
END//

CREATE PROCEDURE sync_db_login(IN p_user_id INT UNSIGNED, IN p_account VARCHAR(80), IN p_host VARCHAR(60),
                               IN p_applied VARCHAR(16), IN p_role VARCHAR(16), IN p_locked TINYINT,
                               IN p_open TINYINT, IN p_applied_limits VARCHAR(64),
                               IN p_connections INT UNSIGNED, IN p_statement_seconds INT UNSIGNED)
  COMMENT 'Internal: bring one client login in step with its user (role, lock, limits); a failure is recorded, not raised'
BEGIN
  DECLARE v_target VARCHAR(200) DEFAULT CONCAT(QUOTE(p_account), '@', QUOTE(p_host));
  DECLARE v_role_ok TINYINT DEFAULT p_role IN ('admin', 'supervisor', 'agent');
  DECLARE v_open TINYINT DEFAULT p_open AND p_role IN ('admin', 'supervisor', 'agent');
  DECLARE v_limits VARCHAR(64) DEFAULT CONCAT(p_connections, '/', p_statement_seconds);
  DECLARE v_problem VARCHAR(512) DEFAULT NULL;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    GET DIAGNOSTICS CONDITION 1 v_problem = MESSAGE_TEXT;
    CALL lock_db_login_after_failure(p_user_id, p_account, v_target, LEFT(v_problem, 400));
  END;

  IF v_role_ok AND NOT (p_applied <=> p_role) THEN
    IF p_applied IS NOT NULL THEN
      CALL tenant_exec(CONCAT('REVOKE ', tenant_quote_name(tenant_role_name(p_applied)), ' FROM ', v_target));
    END IF;
    CALL tenant_exec(CONCAT('GRANT ', tenant_quote_name(tenant_role_name(p_role)), ' TO ', v_target));
    IF VERSION() LIKE '%MariaDB%' THEN
      CALL tenant_exec(CONCAT('SET DEFAULT ROLE ', tenant_quote_name(tenant_role_name(p_role)), ' FOR ', v_target));
    ELSE
      CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' DEFAULT ROLE ', tenant_quote_name(tenant_role_name(p_role))));
    END IF;
  END IF;
  IF NOT (p_applied_limits <=> v_limits) THEN
    CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' WITH MAX_USER_CONNECTIONS ', p_connections,
                            IF(VERSION() LIKE '%MariaDB%', CONCAT(' MAX_STATEMENT_TIME ', p_statement_seconds), '')));
  END IF;
  IF v_open AND p_locked THEN
    CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' ACCOUNT UNLOCK'));
  ELSEIF NOT v_open AND NOT p_locked THEN
    CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' ACCOUNT LOCK'));
  END IF;
  -- A session keeps the role it started with: end it after a role change or a lock.
  IF (p_applied IS NOT NULL AND v_role_ok AND NOT (p_applied <=> p_role)) OR NOT v_open THEN
    CALL kill_db_login_sessions(p_account);
  END IF;
  UPDATE db_logins
     SET applied_role = IF(v_role_ok, p_role, applied_role), locked = NOT v_open,
         applied_limits = v_limits, synced_at = UTC_TIMESTAMP()
   WHERE user_id = p_user_id;
  IF v_role_ok THEN
    DELETE FROM db_login_sync_problems WHERE user_id = p_user_id;
  ELSE
    INSERT INTO db_login_sync_problems (user_id, account, problem, seen_at)
      VALUES (p_user_id, p_account, CONCAT('users.role is ', QUOTE(p_role), ', not admin, supervisor or agent: the login stays locked until it is one'), UTC_TIMESTAMP())
      ON DUPLICATE KEY UPDATE problem = VALUES(problem), seen_at = VALUES(seen_at);
  END IF;
END//

CREATE PROCEDURE lock_db_login_after_failure(IN p_user_id INT UNSIGNED, IN p_account VARCHAR(80),
                                             IN p_target VARCHAR(200), IN p_problem VARCHAR(400))
  COMMENT 'Internal: after a failed sync of one login, lock it and end its sessions if possible, and record why'
BEGIN
  DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;  -- best effort: the record below matters most
  CALL tenant_exec(CONCAT('ALTER USER ', p_target, ' ACCOUNT LOCK'));
  CALL kill_db_login_sessions(p_account);
  UPDATE db_logins SET locked = 1, synced_at = UTC_TIMESTAMP() WHERE user_id = p_user_id;
  INSERT INTO db_login_sync_problems (user_id, account, problem, seen_at)
    VALUES (p_user_id, p_account, CONCAT(p_problem, ' (the login was locked)'), UTC_TIMESTAMP())
    ON DUPLICATE KEY UPDATE problem = VALUES(problem), seen_at = VALUES(seen_at);
END//

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
           (c.status = 'active' AND u.status = 'active' AND (a.id IS NULL OR a.status = 'active')),
           l.applied_limits
      FROM db_logins l
      JOIN users u ON u.id = l.user_id
      JOIN clients c ON c.id = u.client_id
      LEFT JOIN agents a ON a.id = u.agent_id
     WHERE NOT (l.applied_role <=> u.role)
        OR l.locked = (c.status = 'active' AND u.status = 'active' AND (a.id IS NULL OR a.status = 'active'))
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
      -- The watchdog failing (MySQL 8 has no information_schema.innodb_lock_waits) must not
      -- stop the lock-outs below: its error is recorded as the problem of user 0.
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
      -- What waited for them (a suspension, say) commits now: sync it in this run, not the next.
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
