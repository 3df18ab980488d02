-- The watchdog (end_hostile_tenant_sessions, 101) without a cursor over information_schema,
-- and an event that stays quiet in a database that is not (or no longer) complete.
--
-- MariaDB 10.11 crashed (signal 11 in ha_maria::drop_table, called by free_tmp_table from
-- close_thread_tables) while the event's worker opened 101's cursor: a UNION over
-- information_schema.processlist, innodb_trx and innodb_lock_waits that called a stored
-- function for every session, materialized by the cursor. The event runs every second in
-- every database with the schema, so one server with many databases met it within minutes.
-- Now each information_schema table is read by one plain INSERT ... SELECT into a
-- temporary MEMORY table of this session (no UNION, no stored function, no cursor), and
-- the sessions to end are picked and walked from those copies. Same rules, same reasons:
-- one row per session, the first reason that applies (a connection's before a query's).
-- kill_db_login_sessions (073) loses its cursor over processlist the same way.
--
-- The event: its comment fits the 64 characters MariaDB keeps, and while the database
-- lacks what the sync needs (a DROP DATABASE under way drops the tables before the
-- routines and the event; a migration stopped half way) a run does nothing instead of
-- logging "Table ... doesn't exist" every second. In a complete database an error is
-- raised and logged as before.

DELIMITER //

CREATE OR REPLACE PROCEDURE end_hostile_tenant_sessions(OUT p_ended INT)
  COMMENT 'Ends client login sessions that block others, overstay a transaction or a statement (tenant_login_limits); p_ended: how many'
BEGIN
  DECLARE v_id BIGINT UNSIGNED DEFAULT 0;
  DECLARE v_user VARCHAR(128) CHARACTER SET utf8mb4;
  DECLARE v_what VARCHAR(16);
  DECLARE v_reason VARCHAR(255);
  DECLARE v_max_trx INT UNSIGNED DEFAULT (SELECT max_transaction_seconds FROM tenant_login_limits WHERE id = 1);
  DECLARE v_max_stmt INT UNSIGNED DEFAULT (SELECT max_statement_seconds FROM tenant_login_limits WHERE id = 1);
  DECLARE v_tenant_db VARCHAR(64) CHARACTER SET utf8mb4 DEFAULT tenant_database_name();
  DECLARE v_mdl_wait TINYINT DEFAULT 0;

  DROP TEMPORARY TABLE IF EXISTS watchdog_sessions, watchdog_transactions, watchdog_blockers;
  CREATE TEMPORARY TABLE watchdog_sessions (
    id BIGINT UNSIGNED NOT NULL,
    user VARCHAR(128) CHARACTER SET utf8mb4 NOT NULL,
    command VARCHAR(16) CHARACTER SET utf8mb4 NOT NULL,
    time_ms DECIMAL(22,3) NOT NULL,
    mdl_wait TINYINT NOT NULL,
    what VARCHAR(16) NULL,
    reason VARCHAR(255) NULL,
    PRIMARY KEY (id)
  ) ENGINE=MEMORY;
  CREATE TEMPORARY TABLE watchdog_transactions (
    thread_id BIGINT UNSIGNED NOT NULL,
    trx_id BIGINT UNSIGNED NOT NULL,
    started DATETIME NOT NULL,
    blocking TINYINT NOT NULL DEFAULT 0,
    KEY (thread_id),
    KEY (trx_id)
  ) ENGINE=MEMORY;
  CREATE TEMPORARY TABLE watchdog_blockers (
    trx_id BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (trx_id)
  ) ENGINE=MEMORY;

  -- The copies: one information_schema table per statement, nothing else in it.
  INSERT INTO watchdog_sessions (id, user, command, time_ms, mdl_wait)
    SELECT id, COALESCE(user, ''), COALESCE(command, ''), COALESCE(time_ms, 0),
           COALESCE(state LIKE 'Waiting for table metadata lock%' AND db IN (DATABASE(), v_tenant_db), 0)
      FROM information_schema.processlist;
  INSERT INTO watchdog_transactions (thread_id, trx_id, started)
    SELECT trx_mysql_thread_id, trx_id, trx_started FROM information_schema.innodb_trx;
  INSERT IGNORE INTO watchdog_blockers (trx_id)
    SELECT blocking_trx_id FROM information_schema.innodb_lock_waits;

  -- A session of this database waiting for a table (the waiter's current database tells;
  -- which transaction holds the table MariaDB does not show without a plugin).
  SET v_mdl_wait = EXISTS (SELECT 1 FROM watchdog_sessions WHERE mdl_wait = 1);
  UPDATE watchdog_transactions t JOIN watchdog_blockers b ON b.trx_id = t.trx_id SET t.blocking = 1;
  -- Only this database's client logins, never this session.
  DELETE FROM watchdog_sessions
   WHERE id = CONNECTION_ID()
      OR NOT EXISTS (SELECT 1 FROM db_logins l
                     WHERE l.account = CONVERT(watchdog_sessions.user USING ascii) COLLATE ascii_bin);
  -- innodb_trx lists read-only transactions too (trx_id not 0), so an idle open
  -- transaction is seen.
  UPDATE watchdog_sessions s JOIN watchdog_transactions t ON t.thread_id = s.id
     SET s.what = 'connection',
         s.reason = CASE WHEN t.blocking = 1 THEN 'its transaction held a row lock another session waited for'
                         WHEN v_mdl_wait THEN 'its open transaction held a table another session waited for (metadata lock)'
                         ELSE CONCAT('its transaction was open longer than ', v_max_trx, ' s') END
   WHERE t.blocking = 1 OR v_mdl_wait OR t.started < NOW() - INTERVAL v_max_trx SECOND;
  UPDATE watchdog_sessions
     SET what = 'query', reason = CONCAT('its statement ran longer than ', v_max_stmt, ' s')
   WHERE what IS NULL AND command = 'Query' AND time_ms > v_max_stmt * 1000;

  SET p_ended = 0;
  hostile_loop: LOOP
    SET v_id = (SELECT MIN(id) FROM watchdog_sessions WHERE what IS NOT NULL AND id > v_id);
    IF v_id IS NULL THEN LEAVE hostile_loop; END IF;
    SELECT user, what, reason INTO v_user, v_what, v_reason FROM watchdog_sessions WHERE id = v_id;
    CALL end_tenant_session(v_id, v_user, v_what, v_reason);
    SET p_ended = p_ended + 1;
  END LOOP;
  -- A prepared XA transaction outlives its session: nothing to end, and SQL cannot learn
  -- its xid or owner. Tell the operator, who can (XA RECOVER, XA ROLLBACK).
  IF EXISTS (SELECT 1 FROM watchdog_transactions WHERE thread_id = 0 AND blocking = 1) THEN
    INSERT INTO db_login_sync_problems (user_id, account, problem, seen_at)
      VALUES (0, '', 'a prepared XA transaction without a session holds a row lock others wait for (a client login may have left it): XA RECOVER, then XA ROLLBACK ''<xid>''', UTC_TIMESTAMP())
      ON DUPLICATE KEY UPDATE problem = VALUES(problem), seen_at = VALUES(seen_at);
  ELSE
    DELETE FROM db_login_sync_problems WHERE user_id = 0;
  END IF;
  DROP TEMPORARY TABLE IF EXISTS watchdog_sessions, watchdog_transactions, watchdog_blockers;
  DELETE FROM tenant_sessions_ended WHERE ended_at < UTC_TIMESTAMP() - INTERVAL 7 DAY;
END//

-- The same for the sessions of one account (073): its cursor over processlist, run by the
-- sync after every lock or role change, becomes a copy and a walk over it.
CREATE OR REPLACE PROCEDURE kill_db_login_sessions(IN p_account VARCHAR(80))
  COMMENT 'Internal: disconnects every session of a client login (after a lock, role change or revoke)'
BEGIN
  DECLARE v_id BIGINT UNSIGNED DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR 1094 BEGIN END;  -- the session ended meanwhile
  DROP TEMPORARY TABLE IF EXISTS watchdog_account_sessions;
  CREATE TEMPORARY TABLE watchdog_account_sessions (
    id BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
  ) ENGINE=MEMORY;
  INSERT INTO watchdog_account_sessions (id)
    SELECT id FROM information_schema.processlist
     WHERE CAST(user AS BINARY) = CAST(p_account AS BINARY) AND id <> CONNECTION_ID();
  sessions_loop: LOOP
    SET v_id = (SELECT MIN(id) FROM watchdog_account_sessions WHERE id > v_id);
    IF v_id IS NULL THEN LEAVE sessions_loop; END IF;
    CALL tenant_exec(CONCAT('KILL CONNECTION ', CAST(v_id AS CHAR)));
  END LOOP;
  DROP TEMPORARY TABLE IF EXISTS watchdog_account_sessions;
END//

-- The event's body: what it runs every second. The sync's own errors are the event's to
-- log, except while the database is incomplete.
ALTER EVENT db_login_sync
  COMMENT 'Every second: client logins in step, hostile sessions ended'
  DO BEGIN
    DECLARE EXIT HANDLER FOR 1146, 1305  -- no such table; no such procedure or function
    BEGIN
      -- A DROP DATABASE under way or a migration stopped half way: nothing to sync,
      -- nothing to say. In a complete database the error is logged as before.
      IF (SELECT COUNT(*) FROM information_schema.tables
           WHERE table_schema = DATABASE()
             AND table_name IN ('clients', 'users', 'agents', 'db_logins', 'tenant_login_limits',
                                'tenant_sessions_ended', 'db_login_sync_problems')) = 7
         AND (SELECT COUNT(*) FROM information_schema.routines
               WHERE routine_schema = DATABASE()
                 AND routine_name IN ('sync_db_logins', 'sync_db_login', 'end_hostile_tenant_sessions',
                                      'end_tenant_session', 'take_db_login_sync_lock',
                                      'lock_db_login_after_failure', 'tenant_account_of',
                                      'tenant_database_name', 'tenant_exec',
                                      'kill_db_login_sessions')) = 10 THEN
        RESIGNAL;
      END IF;
    END;
    CALL sync_db_logins();
  END//

DELIMITER ;
