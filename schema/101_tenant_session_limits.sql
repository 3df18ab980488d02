-- Resource limits of client database logins, and the watchdog that ends a login's session
-- when it holds what others need (docs/tenant-logins.md, "Threat model" and "Limits").
--
-- MariaDB lets any session take row locks on what it may write (and, under SERIALIZABLE,
-- on what it reads), open a transaction and sit in it, raise its own max_statement_time,
-- and take any named lock. None of that can be refused by privilege, so it is bounded from
-- outside: every second the login sync (075, replaced in 102) first runs
-- end_hostile_tenant_sessions(), which ends the sessions of this database's client logins
-- that
--   * hold a row lock another transaction waits for (the operator's suspension, a top-up,
--     another client's authorize, the sync itself),
--   * keep a transaction open longer than max_transaction_seconds,
--   * keep one transaction open while a session of this database waits for a table's
--     metadata lock (`db upgrade`'s ALTER TABLE would otherwise queue every later statement
--     behind it),
--   * run one statement longer than max_statement_seconds (KILL QUERY: the account's
--     MAX_STATEMENT_TIME is only the session's default, which the session may raise).
-- Each ending is recorded in tenant_sessions_ended. The limits are one row the operator
-- edits; the sync applies MAX_USER_CONNECTIONS and MAX_STATEMENT_TIME to every account.

CREATE TABLE tenant_login_limits (
  id TINYINT UNSIGNED NOT NULL DEFAULT 1 COMMENT 'Always 1: one row of settings',
  max_connections SMALLINT UNSIGNED NOT NULL DEFAULT 10
    COMMENT 'MAX_USER_CONNECTIONS of each client login account (1-1000)',
  max_statement_seconds INT UNSIGNED NOT NULL DEFAULT 30
    COMMENT 'MAX_STATEMENT_TIME of each account; a statement running longer is also killed by the watchdog (1-86400)',
  max_transaction_seconds INT UNSIGNED NOT NULL DEFAULT 60
    COMMENT 'A client login''s transaction open longer than this is ended with its session (1-86400)',
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
    COMMENT 'When the limits were last changed',
  PRIMARY KEY (id),
  CONSTRAINT ck_tenant_login_limits_one_row CHECK (id = 1),
  CONSTRAINT ck_tenant_login_limits_connections CHECK (max_connections BETWEEN 1 AND 1000),
  CONSTRAINT ck_tenant_login_limits_statement CHECK (max_statement_seconds BETWEEN 1 AND 86400),
  CONSTRAINT ck_tenant_login_limits_transaction CHECK (max_transaction_seconds BETWEEN 1 AND 86400)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Resource limits of client database logins (one row; UPDATE it, the sync applies it within a second)';

INSERT INTO tenant_login_limits (id) VALUES (1);

ALTER TABLE db_logins
  ADD COLUMN applied_limits VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Resource limits last applied to the account by sync_db_logins (connections/statement seconds)';

CREATE TABLE tenant_sessions_ended (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Row id',
  ended_at DATETIME(3) NOT NULL COMMENT 'When the watchdog ended it (UTC)',
  account VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Client login account',
  connection_id BIGINT UNSIGNED NOT NULL COMMENT 'Server connection id that was ended',
  what ENUM('connection','query') NOT NULL COMMENT 'connection: the session was disconnected; query: only its statement was killed',
  reason VARCHAR(255) NOT NULL COMMENT 'Why, in words',
  PRIMARY KEY (id),
  KEY ix_tenant_sessions_ended_at (ended_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Client login sessions the watchdog ended (locks others waited for, long transactions, long statements); kept 7 days';

CREATE TABLE db_login_sync_problems (
  user_id INT UNSIGNED NOT NULL COMMENT 'users.id of the login the sync could not bring in step (0: the watchdog itself failed, or a prepared XA transaction blocks others)',
  account VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Its account',
  problem VARCHAR(512) NOT NULL COMMENT 'The error, in words; the login was locked if it could be',
  seen_at DATETIME NOT NULL COMMENT 'When the sync last met it (UTC)',
  PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Logins the sync skipped with the reason (the other logins were synced); a row goes when its login syncs again';

DELIMITER //

CREATE FUNCTION tenant_account_of(p_user VARCHAR(128) CHARACTER SET utf8mb4) RETURNS TINYINT
  NOT DETERMINISTIC READS SQL DATA
  COMMENT 'Internal: 1 when a processlist user is a client login of this database'
BEGIN
  RETURN EXISTS (SELECT 1 FROM db_logins
                 WHERE account = CONVERT(p_user USING ascii) COLLATE ascii_bin);
END//

CREATE PROCEDURE end_tenant_session(IN p_id BIGINT UNSIGNED, IN p_account VARCHAR(128) CHARACTER SET utf8mb4,
                                    IN p_what VARCHAR(16), IN p_reason VARCHAR(255))
  COMMENT 'Internal: KILL CONNECTION (or QUERY) of one client login session, recorded in tenant_sessions_ended'
BEGIN
  DECLARE CONTINUE HANDLER FOR 1094 BEGIN END;  -- it ended meanwhile
  CALL tenant_exec(CONCAT('KILL ', IF(p_what = 'query', 'QUERY ', 'CONNECTION '), CAST(p_id AS CHAR)));
  INSERT INTO tenant_sessions_ended (ended_at, account, connection_id, what, reason)
    VALUES (UTC_TIMESTAMP(3), LEFT(CONVERT(p_account USING ascii), 80), p_id, p_what, p_reason);
END//

CREATE PROCEDURE end_hostile_tenant_sessions(OUT p_ended INT)
  COMMENT 'Ends client login sessions that block others, overstay a transaction or a statement (tenant_login_limits); p_ended: how many'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_id BIGINT UNSIGNED;
  DECLARE v_user VARCHAR(128) CHARACTER SET utf8mb4;
  DECLARE v_what VARCHAR(16);
  DECLARE v_reason VARCHAR(255);
  DECLARE v_max_trx INT UNSIGNED DEFAULT (SELECT max_transaction_seconds FROM tenant_login_limits WHERE id = 1);
  DECLARE v_max_stmt INT UNSIGNED DEFAULT (SELECT max_statement_seconds FROM tenant_login_limits WHERE id = 1);
  DECLARE v_mdl_wait TINYINT DEFAULT 0;
  -- One row per session to end, the first reason that applies. innodb_trx lists read-only
  -- transactions too (trx_id 0), so an idle open transaction is seen.
  DECLARE hostile CURSOR FOR
    SELECT p.id, p.user, 'connection',
           CASE WHEN EXISTS (SELECT 1 FROM information_schema.innodb_lock_waits w
                             WHERE w.blocking_trx_id = t.trx_id)
                  THEN 'its transaction held a row lock another session waited for'
                WHEN v_mdl_wait THEN 'its open transaction held a table another session waited for (metadata lock)'
                ELSE CONCAT('its transaction was open longer than ', v_max_trx, ' s') END
      FROM information_schema.processlist p
      JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id
     WHERE p.id <> CONNECTION_ID() AND tenant_account_of(p.user)
       AND (EXISTS (SELECT 1 FROM information_schema.innodb_lock_waits w WHERE w.blocking_trx_id = t.trx_id)
            OR v_mdl_wait
            OR t.trx_started < NOW() - INTERVAL v_max_trx SECOND)
    UNION
    SELECT p.id, p.user, 'query', CONCAT('its statement ran longer than ', v_max_stmt, ' s')
      FROM information_schema.processlist p
     WHERE p.id <> CONNECTION_ID() AND p.command = 'Query' AND p.time_ms > v_max_stmt * 1000
       AND tenant_account_of(p.user)
       AND NOT EXISTS (SELECT 1 FROM information_schema.innodb_trx t WHERE t.trx_mysql_thread_id = p.id
                        AND (t.trx_started < NOW() - INTERVAL v_max_trx SECOND
                             OR EXISTS (SELECT 1 FROM information_schema.innodb_lock_waits w
                                        WHERE w.blocking_trx_id = t.trx_id)));
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;

  -- A session of this database waiting for a table (the waiter's current database tells;
  -- which transaction holds the table MariaDB does not show without a plugin).
  SET v_mdl_wait = EXISTS (SELECT 1 FROM information_schema.processlist
                           WHERE state LIKE 'Waiting for table metadata lock%'
                             AND db IN (DATABASE(), tenant_database_name()));
  SET p_ended = 0;
  OPEN hostile;
  hostile_loop: LOOP
    FETCH hostile INTO v_id, v_user, v_what, v_reason;
    IF done THEN LEAVE hostile_loop; END IF;
    CALL end_tenant_session(v_id, v_user, v_what, v_reason);
    SET p_ended = p_ended + 1;
  END LOOP;
  CLOSE hostile;
  -- A prepared XA transaction outlives its session: nothing to end, and SQL cannot learn
  -- its xid or owner. Tell the operator, who can (XA RECOVER, XA ROLLBACK).
  IF EXISTS (SELECT 1 FROM information_schema.innodb_lock_waits w
             JOIN information_schema.innodb_trx t ON t.trx_id = w.blocking_trx_id
             WHERE t.trx_mysql_thread_id = 0) THEN
    INSERT INTO db_login_sync_problems (user_id, account, problem, seen_at)
      VALUES (0, '', 'a prepared XA transaction without a session holds a row lock others wait for (a client login may have left it): XA RECOVER, then XA ROLLBACK ''<xid>''', UTC_TIMESTAMP())
      ON DUPLICATE KEY UPDATE problem = VALUES(problem), seen_at = VALUES(seen_at);
  ELSE
    DELETE FROM db_login_sync_problems WHERE user_id = 0;
  END IF;
  DELETE FROM tenant_sessions_ended WHERE ended_at < UTC_TIMESTAMP() - INTERVAL 7 DAY;
END//

DELIMITER ;
