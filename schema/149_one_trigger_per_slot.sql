-- One trigger per slot (issue 19). Files 004-100 stacked two or three triggers on the same
-- table, timing and event (FOLLOWS/PRECEDES), so what a write to agents, contacts,
-- extensions, queues or users ran could only be pieced together across files. Each such
-- slot becomes ONE trigger named <table>_<timing>_<event>, whose labelled blocks are the
-- former triggers' bodies, unchanged, in the order they fired:
--   row_owner        (071/076) fills client_id of a client login's row
--   pin_hashed       (041) agents.pin typed on a keypad, stored only as a hash
--   password_hashed  (004) users.password stored only as a hash
--   db_login         (070) a user with a database login keeps it consistent
--   sip_identity     (004) extensions: the SIP username and digest credential
--   queue_name       (040) queues: the Asterisk queue name
--   do_not_call      (062) a new contact on a do-not-call list is not dialled
--   tenant_guard     (100) what a client login may not write (guard_tenant_row)
-- A block's DECLARE is evaluated where the block starts, as the former trigger's was when
-- it fired: every block sees NEW as the blocks before it left it. The schema as it now is:
-- schema/current/tables/<table>.sql (`ictcontact db snapshot`).
--
-- CREATE OR REPLACE swaps a trigger in one step; the merged trigger is created before the
-- ones it replaces are dropped, so no write in between escapes a rule (for that moment a
-- rule may run twice, which changes nothing: each one is idempotent).

DELIMITER //

-- agents -----------------------------------------------------------------------------------

CREATE OR REPLACE TRIGGER agents_before_insert BEFORE INSERT ON agents FOR EACH ROW
BEGIN
  pin_hashed: BEGIN
    IF NEW.pin IS NOT NULL THEN
      IF NEW.pin NOT REGEXP '^[0-9]{4,10}$' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'agents.pin must be 4-10 digits (it is typed on a phone keypad)';
      END IF;
      SET NEW.pin_hash = password_hash_of(NEW.pin), NEW.pin = NULL;
    END IF;
  END pin_hashed;
  row_owner: BEGIN
    IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
      SET NEW.client_id = tenant_insert_client(NEW.client_id);
    END IF;
  END row_owner;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL THEN
      CALL guard_tenant_row('agents', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

CREATE OR REPLACE TRIGGER agents_before_update BEFORE UPDATE ON agents FOR EACH ROW
BEGIN
  pin_hashed: BEGIN
    IF NEW.pin IS NOT NULL THEN
      IF NEW.pin NOT REGEXP '^[0-9]{4,10}$' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'agents.pin must be 4-10 digits (it is typed on a phone keypad)';
      END IF;
      SET NEW.pin_hash = password_hash_of(NEW.pin), NEW.pin = NULL,
          NEW.pin_failures = 0, NEW.locked_until = NULL;
    END IF;
  END pin_hashed;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
       OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
       OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
       OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
      CALL guard_tenant_row('agents', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

DELIMITER ;
DROP TRIGGER IF EXISTS agents_pin_before_insert;
DROP TRIGGER IF EXISTS agents_tenant_before_insert;
DROP TRIGGER IF EXISTS agents_tenant_guard_insert;
DROP TRIGGER IF EXISTS agents_pin_before_update;
DROP TRIGGER IF EXISTS agents_tenant_guard_update;
DELIMITER //

-- contacts ---------------------------------------------------------------------------------

CREATE OR REPLACE TRIGGER contacts_before_insert BEFORE INSERT ON contacts FOR EACH ROW
BEGIN
  do_not_call: BEGIN
    IF @ict_contacts_dnc_checked IS NULL AND NEW.campaign_id IS NOT NULL
       AND NEW.status IN ('new', 'retry') AND on_do_not_call(NEW.client_id, NEW.phone) THEN
      SET NEW.status = 'do-not-call', NEW.last_reason = 'on a do-not-call list';
    END IF;
  END do_not_call;
  row_owner: BEGIN
    IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
      SET NEW.client_id = tenant_insert_client(NEW.client_id);
    END IF;
  END row_owner;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.last_outcome = '' THEN 'last_outcome' END;
    IF v_empty IS NOT NULL THEN
      CALL guard_tenant_row('contacts', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

DELIMITER ;
DROP TRIGGER IF EXISTS contacts_before_insert_dnc;
DROP TRIGGER IF EXISTS contacts_tenant_before_insert;
DROP TRIGGER IF EXISTS contacts_tenant_guard_insert;
DELIMITER //

-- extensions -------------------------------------------------------------------------------

CREATE OR REPLACE TRIGGER extensions_before_insert BEFORE INSERT ON extensions FOR EACH ROW
BEGIN
  row_owner: BEGIN
    IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
      SET NEW.client_id = tenant_insert_client(NEW.client_id);
    END IF;
  END row_owner;
  sip_identity: BEGIN
    IF NOT EXISTS (SELECT 1 FROM clients WHERE id = NEW.client_id) THEN
      SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'extensions.client_id names no client', MYSQL_ERRNO = 1452;
    END IF;
    SET NEW.sip_username = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.exten);
    IF NEW.sip_password IS NOT NULL THEN
      SET NEW.md5_cred = MD5(CONCAT(NEW.sip_username, ':asterisk:', NEW.sip_password));
      SET NEW.sip_password = NULL;
    END IF;
  END sip_identity;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL THEN
      CALL guard_tenant_row('extensions', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

CREATE OR REPLACE TRIGGER extensions_before_update BEFORE UPDATE ON extensions FOR EACH ROW
BEGIN
  sip_identity: BEGIN
    IF NOT (NEW.client_id <=> OLD.client_id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'an extension cannot move to another client: create a new one';
    END IF;
    SET NEW.sip_username = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.exten);
    IF NEW.sip_password IS NOT NULL THEN
      SET NEW.md5_cred = MD5(CONCAT(NEW.sip_username, ':asterisk:', NEW.sip_password));
      SET NEW.sip_password = NULL;
    ELSEIF NOT (NEW.exten <=> OLD.exten) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'changing exten changes the SIP username: set sip_password in the same UPDATE';
    END IF;
  END sip_identity;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
       OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
       OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
       OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
      CALL guard_tenant_row('extensions', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

DELIMITER ;
DROP TRIGGER IF EXISTS extensions_tenant_before_insert;
DROP TRIGGER IF EXISTS extensions_tenant_guard_insert;
DROP TRIGGER IF EXISTS extensions_tenant_guard_update;
DELIMITER //

-- queues -----------------------------------------------------------------------------------

CREATE OR REPLACE TRIGGER queues_before_insert BEFORE INSERT ON queues FOR EACH ROW
BEGIN
  row_owner: BEGIN
    IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
      SET NEW.client_id = tenant_insert_client(NEW.client_id);
    END IF;
  END row_owner;
  queue_name: BEGIN
    IF NOT EXISTS (SELECT 1 FROM clients WHERE id = NEW.client_id) THEN
      SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'queues.client_id names no client', MYSQL_ERRNO = 1452;
    END IF;
    SET NEW.asterisk_name = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.name);
  END queue_name;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.strategy = '' THEN 'strategy' WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL THEN
      CALL guard_tenant_row('queues', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

CREATE OR REPLACE TRIGGER queues_before_update BEFORE UPDATE ON queues FOR EACH ROW
BEGIN
  queue_name: BEGIN
    IF NOT (NEW.client_id <=> OLD.client_id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a queue cannot move to another client: create a new one';
    END IF;
    SET NEW.asterisk_name = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.name);
  END queue_name;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.strategy = '' THEN 'strategy' WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
       OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
       OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
       OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
      CALL guard_tenant_row('queues', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

DELIMITER ;
DROP TRIGGER IF EXISTS queues_tenant_before_insert;
DROP TRIGGER IF EXISTS queues_tenant_guard_insert;
DROP TRIGGER IF EXISTS queues_tenant_guard_update;
DELIMITER //

-- users ------------------------------------------------------------------------------------

CREATE OR REPLACE TRIGGER users_before_insert BEFORE INSERT ON users FOR EACH ROW
BEGIN
  row_owner: BEGIN
    IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
      SET NEW.client_id = tenant_insert_client(NEW.client_id);
    END IF;
  END row_owner;
  password_hashed: BEGIN
    IF NEW.password IS NOT NULL THEN
      SET NEW.password_hash = password_hash_of(NEW.password), NEW.password = NULL;
    END IF;
  END password_hashed;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.role = '' THEN 'role' WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL THEN
      CALL guard_tenant_row('users', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

CREATE OR REPLACE TRIGGER users_before_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
  db_login: BEGIN
    IF NEW.password IS NOT NULL AND EXISTS (SELECT 1 FROM db_logins WHERE user_id = OLD.id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this user logs in with its database account: its password is set there (ALTER USER), not in users.password';
    END IF;
    IF NOT (NEW.client_id <=> OLD.client_id) AND EXISTS (SELECT 1 FROM db_logins WHERE user_id = OLD.id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a user with a database login cannot move to another client: CALL revoke_db_login first';
    END IF;
  END db_login;
  password_hashed: BEGIN
    IF NEW.password IS NOT NULL THEN
      SET NEW.password_hash = password_hash_of(NEW.password), NEW.password = NULL;
    END IF;
  END password_hashed;
  tenant_guard: BEGIN
    DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.role = '' THEN 'role' WHEN NEW.status = '' THEN 'status' END;
    IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
       OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
       OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
       OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
      CALL guard_tenant_row('users', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
    END IF;
  END tenant_guard;
END//

CREATE OR REPLACE TRIGGER users_before_delete BEFORE DELETE ON users FOR EACH ROW
BEGIN
  tenant_guard: BEGIN
    IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
      CALL guard_tenant_row('users', 'DELETE', OLD.client_id, OLD.client_id, NULL);
    END IF;
  END tenant_guard;
  db_login: BEGIN
    IF EXISTS (SELECT 1 FROM db_logins WHERE user_id = OLD.id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this user has a database login: the operator removes it first (CALL revoke_db_login)';
    END IF;
  END db_login;
END//

DELIMITER ;
DROP TRIGGER IF EXISTS users_tenant_before_insert;
DROP TRIGGER IF EXISTS users_tenant_guard_insert;
DROP TRIGGER IF EXISTS users_db_login_before_update;
DROP TRIGGER IF EXISTS users_tenant_guard_update;
DROP TRIGGER IF EXISTS users_tenant_guard_delete;
DROP TRIGGER IF EXISTS users_db_login_before_delete;
