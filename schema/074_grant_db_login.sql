-- The operator gives a client's user a database login, or takes it away. The account is
-- created locked and without privileges; sync_db_logins (075) then grants its tenant role
-- and unlocks it while the client, user and agent are active. The password goes straight
-- to the server's own authentication (CREATE USER ... IDENTIFIED BY) and is not kept here;
-- the user's old salted SHA-512 hash (030 user_login) is cleared.
-- Account and host names come from people: they are matched against strict patterns
-- (ASCII, case-sensitive: tenant_name_ok) before being quoted into the statement.

DELIMITER //

CREATE PROCEDURE grant_db_login_as(IN p_client VARCHAR(32), IN p_username VARCHAR(64),
                                   IN p_password VARCHAR(255), IN p_account VARCHAR(255),
                                   IN p_host VARCHAR(255))
  COMMENT 'grant_db_login_as(client code, username, password, account or NULL for <code>.<username>, host or NULL for %)'
BEGIN
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
      DELETE FROM db_logins WHERE account = v_account;
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
  SET v_user_id = (SELECT u.id FROM users u JOIN clients c ON c.id = u.client_id
                   WHERE c.code = p_client AND u.username = p_username);
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
    SELECT v_user_id, client_id, v_account, v_host, 1 FROM users WHERE id = v_user_id;
  UPDATE users SET password_hash = NULL WHERE id = v_user_id;
  CALL sync_db_logins();
  SELECT l.account, l.host, u.role, IF(l.locked, 'locked', 'open') AS state
    FROM db_logins l JOIN users u ON u.id = l.user_id WHERE l.user_id = v_user_id;
END//

CREATE PROCEDURE grant_db_login(IN p_client VARCHAR(32), IN p_username VARCHAR(64),
                                IN p_password VARCHAR(255))
  COMMENT 'grant_db_login(client code, username, password): account <code>.<username>@% for that users row'
BEGIN
  CALL grant_db_login_as(p_client, p_username, p_password, NULL, NULL);
END//

CREATE PROCEDURE revoke_db_login(IN p_client VARCHAR(32), IN p_username VARCHAR(64))
  COMMENT 'revoke_db_login(client code, username): drop the user''s database account and end its sessions'
BEGIN
  DECLARE v_account VARCHAR(80) DEFAULT NULL;
  DECLARE v_host VARCHAR(60) DEFAULT NULL;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_revoking_login = NULL;
    RESIGNAL;
  END;
  SELECT l.account, l.host INTO v_account, v_host
    FROM db_logins l JOIN users u ON u.id = l.user_id JOIN clients c ON c.id = u.client_id
    WHERE c.code = p_client AND u.username = p_username;
  IF v_account IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'that user has no database login';
  END IF;
  CALL tenant_exec(CONCAT('DROP USER IF EXISTS ', QUOTE(v_account), '@', QUOTE(v_host)));
  CALL kill_db_login_sessions(v_account);
  SET @ict_revoking_login = v_account;
  DELETE FROM db_logins WHERE account = v_account;
  SET @ict_revoking_login = NULL;
  SELECT v_account AS account, 'revoked' AS state;
END//

DELIMITER ;
