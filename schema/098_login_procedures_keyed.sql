-- The login procedures and suspension lock only the rows they change (issue 19: every
-- procedure and trigger reads and locks only the rows it changes or must guard).
-- * revoke_db_login, and grant_db_login_as undoing a failed grant, deleted the login by
--   `account = v_account`: a utf8mb4 variable against the ascii_bin column, so the unique
--   key was not used and the DELETE scanned and locked EVERY client's login row (a revoke
--   waited behind any login being synced, a grant's undo behind any other). Both now
--   delete by the primary key (user_id), and find the user by the client's unique key
--   (client_id_of, 091) and its own (username), whatever the caller's collation.
-- * Suspension's trigger pauses `campaigns WHERE client_id = ? AND status = 'running'`.
--   With only (client_id, name) and (status) to choose from, the optimizer may take the
--   status index (it does on a small table) and then lock every running campaign of every
--   client, the rows the dialer updates all the time; reactivation, and ending a client's
--   agent sessions, may scan the whole table when one client has many rows. In a DBA's
--   session (REPEATABLE READ, the server's default) a scanning UPDATE locks every row it
--   reads: a suspension or reactivation then waited for every other client's campaigns
--   and sessions. The key (client_id, status) serves exactly these statements, and the
--   trigger and end_agent_sessions now name their index.

ALTER TABLE campaigns ADD KEY ix_campaigns_client_status (client_id, status);

DROP PROCEDURE end_agent_sessions;
DROP PROCEDURE grant_db_login_as;
DROP PROCEDURE revoke_db_login;

DELIMITER //

-- 004's trigger, each UPDATE on the client's own campaigns by the client's key; first in
-- its slot as before (clients_after_update_agent_sessions of 042 FOLLOWS it).
CREATE OR REPLACE TRIGGER clients_after_update AFTER UPDATE ON clients FOR EACH ROW
  PRECEDES clients_after_update_agent_sessions
BEGIN
  IF NEW.status = 'suspended' AND OLD.status = 'active' THEN
    UPDATE campaigns FORCE INDEX (ix_campaigns_client_status)
       SET status = 'paused', paused_by_suspension = 1
     WHERE client_id = NEW.id AND status = 'running';
  ELSEIF NEW.status = 'active' AND OLD.status = 'suspended' THEN
    UPDATE campaigns FORCE INDEX (ix_campaigns_client_status)
       SET status = 'running', paused_by_suspension = 0
     WHERE client_id = NEW.id AND paused_by_suspension = 1;
  END IF;
END//

-- 042's procedure, reading and ending the client's open sessions by the client's key.
CREATE PROCEDURE end_agent_sessions(IN p_client_id INT UNSIGNED, IN p_agent_id INT UNSIGNED,
                                    IN p_extension_id INT UNSIGNED, IN p_reason VARCHAR(32))
  COMMENT 'Internal: ends the open sessions of a client (and, if given, of one agent or one extension), logging each as a logout with p_reason'
BEGIN
  DECLARE v_now DATETIME DEFAULT UTC_TIMESTAMP();
  INSERT INTO agent_login_log (client_id, client_code, event, reason, agent_id, extension_id, session_id, endpoint, at)
    SELECT s.client_id, c.code, 'logout', p_reason, s.agent_id, s.extension_id, s.id, e.sip_username, v_now
    FROM agent_sessions s FORCE INDEX (ix_agent_sessions_client_open)
    JOIN clients c ON c.id = s.client_id
    JOIN extensions e ON e.id = s.extension_id
    WHERE s.client_id = p_client_id AND s.ended_at IS NULL
      AND (p_agent_id IS NULL OR s.agent_id = p_agent_id)
      AND (p_extension_id IS NULL OR s.extension_id = p_extension_id);
  UPDATE agent_sessions FORCE INDEX (ix_agent_sessions_client_open)
     SET ended_at = GREATEST(v_now, started_at), end_reason = p_reason
   WHERE client_id = p_client_id AND ended_at IS NULL
     AND (p_agent_id IS NULL OR agent_id = p_agent_id)
     AND (p_extension_id IS NULL OR extension_id = p_extension_id);
END//

CREATE PROCEDURE grant_db_login_as(IN p_client VARCHAR(32),
                                   IN p_username VARCHAR(64),
                                   IN p_password VARCHAR(255),
                                   IN p_account VARCHAR(255),
                                   IN p_host VARCHAR(255))
  COMMENT 'grant_db_login_as(client code, username, password, account or NULL for <code>.<username>, host or NULL for %)'
BEGIN
  DECLARE v_client_id INT UNSIGNED DEFAULT NULL;
  DECLARE v_user_id INT UNSIGNED DEFAULT NULL;
  DECLARE v_account VARCHAR(200) CHARACTER SET utf8mb4;
  DECLARE v_host VARCHAR(200) CHARACTER SET utf8mb4 DEFAULT COALESCE(p_host, '%');
  DECLARE v_created INT DEFAULT 0;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    -- CREATE USER and GRANT commit implicitly: undo by hand what already happened.
    SET @ict_granting_login = NULL;
    IF v_created THEN
      CALL tenant_exec(CONCAT('DROP USER IF EXISTS ', QUOTE(v_account), '@', QUOTE(v_host)));
      SET @ict_revoking_login = v_account;
      DELETE FROM db_logins WHERE user_id = v_user_id;
      SET @ict_revoking_login = NULL;
    END IF;
    RESIGNAL;
  END;

  IF @@SESSION.sql_mode LIKE '%NO_BACKSLASH_ESCAPES%' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'grant_db_login refuses to run with NO_BACKSLASH_ESCAPES in sql_mode';
  END IF;
  IF @@GLOBAL.event_scheduler <> 'ON' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'event_scheduler is OFF: suspension could not lock database logins; SET GLOBAL event_scheduler = ON (and event_scheduler=ON in the server config)';
  END IF;
  SET v_client_id = client_id_of(p_client);
  SET v_user_id = (SELECT id FROM users WHERE username = p_username AND client_id = v_client_id);
  IF v_user_id IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no such user in that client (give the client code and users.username)';
  END IF;
  IF EXISTS (SELECT 1 FROM db_logins WHERE user_id = v_user_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this user already has a database login: CALL revoke_db_login first, or ALTER USER to change its password';
  END IF;
  SET v_account = COALESCE(p_account, CONCAT(p_client, '.', p_username));
  IF v_account IS NULL OR CHAR_LENGTH(v_account) > 80
     OR NOT tenant_name_ok(v_account, '^[A-Za-z0-9][A-Za-z0-9_.-]*$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'account name must be 1-80 characters [A-Za-z0-9_.-] starting with a letter or digit (give one if the username has other characters)';
  END IF;
  IF v_host = '' OR CHAR_LENGTH(v_host) > 60
     OR NOT tenant_name_ok(v_host, '^[A-Za-z0-9.%_:-]+$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'host must be 1-60 characters [A-Za-z0-9.%_:-], e.g. % or 10.0.0.%';
  END IF;
  IF p_password IS NULL OR CHAR_LENGTH(p_password) < 12 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the password must be at least 12 characters';
  END IF;
  -- USER() carries only the name, so a name must mean one account on the whole server.
  IF EXISTS (SELECT 1 FROM mysql.user WHERE user = v_account) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'an account or role with that name already exists on this server: choose another account name';
  END IF;

  CALL build_tenant_world();
  CALL tenant_exec(CONCAT('CREATE USER ', QUOTE(v_account), '@', QUOTE(v_host),
                          ' IDENTIFIED BY ', QUOTE(p_password), ' ACCOUNT LOCK'));
  SET v_created = 1;
  SET @ict_granting_login = v_account;
  INSERT INTO db_logins (user_id, client_id, account, host, locked)
    VALUES (v_user_id, v_client_id, v_account, v_host, 1);
  UPDATE users SET password_hash = NULL WHERE id = v_user_id;
  CALL sync_db_logins();
  SELECT l.account, l.host, u.role, IF(l.locked, 'locked', 'open') AS state
    FROM db_logins l JOIN users u ON u.id = l.user_id WHERE l.user_id = v_user_id;
END//

CREATE PROCEDURE revoke_db_login(IN p_client VARCHAR(32),
                                 IN p_username VARCHAR(64))
  COMMENT 'revoke_db_login(client code, username): drop the user''s database account and end its sessions'
BEGIN
  DECLARE v_client_id INT UNSIGNED DEFAULT client_id_of(p_client);
  DECLARE v_user_id INT UNSIGNED DEFAULT NULL;
  DECLARE v_account VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin DEFAULT NULL;
  DECLARE v_host VARCHAR(60) CHARACTER SET ascii COLLATE ascii_bin DEFAULT NULL;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_revoking_login = NULL;
    RESIGNAL;
  END;
  -- (the client's id into a variable first: a stored function in a WHERE runs per row)
  SET v_user_id = (SELECT id FROM users WHERE username = p_username AND client_id = v_client_id);
  SELECT account, host INTO v_account, v_host FROM db_logins WHERE user_id = v_user_id;
  IF v_account IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'that user has no database login';
  END IF;
  CALL tenant_exec(CONCAT('DROP USER IF EXISTS ', QUOTE(v_account), '@', QUOTE(v_host)));
  CALL kill_db_login_sessions(v_account);
  SET @ict_revoking_login = v_account;
  DELETE FROM db_logins WHERE user_id = v_user_id;
  SET @ict_revoking_login = NULL;
  SELECT v_account AS account, 'revoked' AS state;
END//

DELIMITER ;
