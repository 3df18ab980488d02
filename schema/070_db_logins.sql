-- Database logins of client users (docs/tenant-logins.md). A `users` row may own one
-- MariaDB/MySQL account; the database authenticates it (no password is kept here). The
-- session's account name, USER() before the '@', maps the session to its user and client:
-- `tenant_session` is that mapping. It is empty while the client is suspended (at once, so
-- connected sessions see nothing) or the login is locked (sync_db_logins, 075, locks it
-- within a second of a user or agent being disabled).

CREATE TABLE db_logins (
  user_id INT UNSIGNED NOT NULL COMMENT 'The users row this account logs in as',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client of that user (a user with a login cannot change client)',
  account VARCHAR(80) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Account user name on the server (unique on the whole server); checked [A-Za-z0-9_.-]',
  host VARCHAR(60) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '%'
    COMMENT 'Account host part (where the client may connect from), e.g. % or 10.0.%',
  applied_role ENUM('admin','supervisor','agent') NULL
    COMMENT 'Tenant role last granted to the account by sync_db_logins (NULL: none yet)',
  locked TINYINT(1) NOT NULL DEFAULT 1
    COMMENT '1: the account is locked (ACCOUNT LOCK) as last applied by sync_db_logins',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the login was granted (UTC)',
  synced_at DATETIME NULL COMMENT 'When sync_db_logins last changed the account (UTC)',
  PRIMARY KEY (user_id),
  UNIQUE KEY uq_db_logins_account (account),
  KEY ix_db_logins_client (client_id),
  CONSTRAINT fk_db_logins_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT fk_db_logins_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_db_logins_account CHECK (account REGEXP '^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$'),
  CONSTRAINT ck_db_logins_host CHECK (host REGEXP '^[A-Za-z0-9.%_:-]{1,60}$'),
  CONSTRAINT ck_db_logins_locked CHECK (locked IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Database accounts of client users: written by grant_db_login/revoke_db_login, kept in step by sync_db_logins';

-- The session's tenant: one row (client, user) while the login may work, else none.
-- USER() is the session's own account even inside DEFINER views, triggers and routines.
-- It reads neither users nor agents: a view filtered on a subquery over the table it shows
-- could not be written through, so user and agent status reach it through `locked`.
CREATE SQL SECURITY DEFINER VIEW tenant_session AS
SELECT l.client_id AS client_id, l.user_id AS user_id
FROM db_logins l
JOIN clients c ON c.id = l.client_id
WHERE l.account = SUBSTRING_INDEX(USER(), '@', 1)
  AND l.locked = 0 AND c.status = 'active';

DELIMITER //

CREATE TRIGGER db_logins_before_update BEFORE UPDATE ON db_logins FOR EACH ROW
BEGIN
  IF NOT (NEW.user_id <=> OLD.user_id) OR NOT (NEW.client_id <=> OLD.client_id)
     OR NOT (NEW.account <=> OLD.account)
     OR NOT (NEW.host <=> OLD.host) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a database login cannot be moved or renamed: CALL revoke_db_login then grant_db_login';
  END IF;
END//

-- A row written by hand would name an account that grant_db_login did not create.
CREATE TRIGGER db_logins_before_insert BEFORE INSERT ON db_logins FOR EACH ROW
BEGIN
  IF NOT (@ict_granting_login <=> NEW.account) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'database logins are created by CALL grant_db_login(client code, username, password)';
  END IF;
  SET @ict_granting_login = NULL;
  IF NOT (NEW.client_id <=> (SELECT client_id FROM users WHERE id = NEW.user_id)) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'db_logins.client_id must be the client of the user';
  END IF;
END//

CREATE TRIGGER db_logins_before_delete BEFORE DELETE ON db_logins FOR EACH ROW
BEGIN
  IF NOT (@ict_revoking_login <=> OLD.account) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'database logins are removed by CALL revoke_db_login(client code, username)';
  END IF;
END//

-- A user with a database login authenticates there: the old salted SHA-512 stays retired.
CREATE TRIGGER users_db_login_before_update BEFORE UPDATE ON users FOR EACH ROW
  PRECEDES users_before_update
BEGIN
  IF NEW.password IS NOT NULL AND EXISTS (SELECT 1 FROM db_logins WHERE user_id = OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this user logs in with its database account: its password is set there (ALTER USER), not in users.password';
  END IF;
  IF NOT (NEW.client_id <=> OLD.client_id) AND EXISTS (SELECT 1 FROM db_logins WHERE user_id = OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a user with a database login cannot move to another client: CALL revoke_db_login first';
  END IF;
END//

CREATE TRIGGER users_db_login_before_delete BEFORE DELETE ON users FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE user_id = OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this user has a database login: the operator removes it first (CALL revoke_db_login)';
  END IF;
END//

DELIMITER ;
