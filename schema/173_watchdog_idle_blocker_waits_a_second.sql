-- The watchdog (end_hostile_tenant_sessions, latest in 161) ended a reseller's login in
-- CI ('Lost connection ... during query' in the middle of its transfers). It reads the
-- sessions (information_schema.processlist, live) and then InnoDB's transactions and lock
-- waits, which are a cache InnoDB refreshes only when nobody read it for 100 ms: the copy
-- can be older than the look at the sessions (another database's watchdog, a monitor,
-- read it just before). A transaction that blocked others in the copy and has since
-- committed, its session idle for a few milliseconds between two CALLs, looked like an
-- idle transaction holding locks and was ended at once. Now a blocker whose session has
-- been idle less than 1 s (processlist TIME_MS, live) gets the one more look that 161
-- gives a running statement: a transaction that committed would have to stay in the copy
-- for a second, which takes readers without a 100 ms pause all that time, and each CALL
-- is a new transaction, never seen twice. One idle 1 s or more is ended at once, as
-- before, so a login that leaves locks open is ended within about 2 s instead of 1; one
-- that keeps issuing short statements while it holds them, after its one more look.
-- Also: a read-only transaction (trx_id 0 in InnoDB's view, every one of them) counts as
-- a blocker only when the lock it holds is on a table of this database; a SERIALIZABLE
-- read in another database made every client's open read-only transaction look like it
-- held a row lock others waited for, and it was ended for that.
-- Re-created here (after 161, the latest definition) with those conditions changed.

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

  DROP TEMPORARY TABLE IF EXISTS watchdog_sessions, watchdog_transactions, watchdog_blockers,
                                  watchdog_waits, watchdog_read_only_locks;
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
    spared TINYINT NOT NULL DEFAULT 0,
    KEY (thread_id),
    KEY (trx_id)
  ) ENGINE=MEMORY;
  CREATE TEMPORARY TABLE watchdog_blockers (
    trx_id BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (trx_id)
  ) ENGINE=MEMORY;


  INSERT INTO watchdog_sessions (id, user, command, time_ms, mdl_wait)
    SELECT id, COALESCE(user, ''), COALESCE(command, ''), COALESCE(time_ms, 0),
           COALESCE(state LIKE 'Waiting for table metadata lock%' AND db IN (DATABASE(), v_tenant_db), 0)
      FROM information_schema.processlist;
  INSERT INTO watchdog_transactions (thread_id, trx_id, started)
    SELECT trx_mysql_thread_id, trx_id, trx_started FROM information_schema.innodb_trx;
  -- 173: InnoDB shows every read-only transaction with trx_id 0, also as a blocker (a
  -- SERIALIZABLE read's share locks): such a blocker counts only when its lock is on a
  -- table of this database (the only one a client login reaches), so a wait in another
  -- database on the server no longer marks every client's read-only transaction
  CREATE TEMPORARY TABLE watchdog_waits (
    blocking_trx_id BIGINT UNSIGNED NOT NULL,
    blocking_lock_id VARCHAR(81) CHARACTER SET ascii NOT NULL
  ) ENGINE=MEMORY;
  CREATE TEMPORARY TABLE watchdog_read_only_locks (
    lock_id VARCHAR(81) CHARACTER SET ascii NOT NULL,
    lock_table VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL,
    PRIMARY KEY (lock_id)
  ) ENGINE=MEMORY;
  INSERT INTO watchdog_waits (blocking_trx_id, blocking_lock_id)
    SELECT blocking_trx_id, blocking_lock_id FROM information_schema.innodb_lock_waits;
  INSERT IGNORE INTO watchdog_read_only_locks (lock_id, lock_table)
    SELECT lock_id, LEFT(COALESCE(lock_table, ''), 200) FROM information_schema.innodb_locks
     WHERE lock_trx_id = 0;
  INSERT IGNORE INTO watchdog_blockers (trx_id)
    SELECT w.blocking_trx_id FROM watchdog_waits w
     WHERE w.blocking_trx_id <> 0
        OR EXISTS (SELECT 1 FROM watchdog_read_only_locks l
                    WHERE l.lock_id = w.blocking_lock_id
                      AND (LEFT(l.lock_table, CHAR_LENGTH(DATABASE()) + 3) = CONCAT('`', DATABASE(), '`.')
                           OR LEFT(l.lock_table, CHAR_LENGTH(v_tenant_db) + 3) = CONCAT('`', v_tenant_db, '`.')));



  SET v_mdl_wait = EXISTS (SELECT 1 FROM watchdog_sessions WHERE mdl_wait = 1);
  UPDATE watchdog_transactions t JOIN watchdog_blockers b ON b.trx_id = t.trx_id SET t.blocking = 1;

  DELETE FROM watchdog_sessions
   WHERE id = CONNECTION_ID()
      OR NOT EXISTS (SELECT 1 FROM db_logins l
                     WHERE l.account = CONVERT(watchdog_sessions.user USING ascii) COLLATE ascii_bin);


  -- Reseller logins (124): a session running a statement while it blocks others gets
  -- one more look, at least 2 s later; the same transaction still blocking
  -- then is ended. An idle transaction holding locks is ended at once, as before.
  UPDATE watchdog_transactions t JOIN watchdog_sessions s ON s.id = t.thread_id
     SET t.spared = 1
   -- 173: and one idle for less than 1 s (the copy may predate its commit)
   WHERE t.blocking = 1 AND (s.command = 'Query' OR (s.command = 'Sleep' AND s.time_ms < 1000))
     AND NOT EXISTS (SELECT 1 FROM watchdog_blockers_seen b
                      WHERE b.trx_id = t.trx_id AND b.seen_at <= NOW(3) - INTERVAL 2 SECOND);
  DELETE FROM watchdog_blockers_seen
   WHERE trx_id NOT IN (SELECT trx_id FROM watchdog_transactions WHERE spared = 1);
  INSERT IGNORE INTO watchdog_blockers_seen (trx_id, seen_at)
    SELECT trx_id, NOW(3) FROM watchdog_transactions WHERE spared = 1;

  UPDATE watchdog_sessions s JOIN watchdog_transactions t ON t.thread_id = s.id
     SET s.what = 'connection',
         s.reason = CASE WHEN t.blocking = 1 THEN 'its transaction held a row lock another session waited for'
                         WHEN v_mdl_wait THEN 'its open transaction held a table another session waited for (metadata lock)'
                         ELSE CONCAT('its transaction was open longer than ', v_max_trx, ' s') END
   WHERE (t.blocking = 1 AND t.spared = 0) OR v_mdl_wait OR t.started < NOW() - INTERVAL v_max_trx SECOND;
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


  IF EXISTS (SELECT 1 FROM watchdog_transactions WHERE thread_id = 0 AND blocking = 1) THEN
    INSERT INTO db_login_sync_problems (user_id, account, problem, seen_at)
      VALUES (0, '', 'a prepared XA transaction without a session holds a row lock others wait for (a client login may have left it): XA RECOVER, then XA ROLLBACK ''<xid>''', UTC_TIMESTAMP())
      ON DUPLICATE KEY UPDATE problem = VALUES(problem), seen_at = VALUES(seen_at);
  ELSE
    DELETE FROM db_login_sync_problems WHERE user_id = 0;
  END IF;
  DROP TEMPORARY TABLE IF EXISTS watchdog_sessions, watchdog_transactions, watchdog_blockers,
                                  watchdog_waits, watchdog_read_only_locks;
  DELETE FROM tenant_sessions_ended WHERE ended_at < UTC_TIMESTAMP() - INTERVAL 7 DAY;
END//

DELIMITER ;
