-- Guards on the rows a client's database login may write (docs/tenant-logins.md, "Threat
-- model"). The tenant views filter what a login sees, but some statements reach rows the
-- view does not show, and some of MariaDB's own checks can be switched off by the session:
--
-- * REPLACE INTO and LOAD DATA ... REPLACE delete the row holding a duplicate unique key
--   (users.username is unique on the whole server) whoever owns it: the BEFORE DELETE
--   trigger refuses to delete another client's row (it also fires for REPLACE's delete).
-- * foreign_key_checks=0, unique_checks=0, check_constraint_checks=0, insert_id,
--   auto_increment_increment/offset, skip_replication and timestamp are session variables
--   any account may set. A login's write is refused while any of them is not the safe
--   value, so the composite foreign keys (same-client references), the unique keys and
--   the CHECKs hold for every write a login makes, and insert_id can no longer push an
--   AUTO_INCREMENT to its end (error 167 for every client).
-- * sql_mode cannot be read here: a trigger runs with the sql_mode it was created with
--   (@@SESSION.sql_mode inside it is that one). What a non-strict mode, or INSERT IGNORE
--   even in strict mode, lets through that the CHECKs do not catch is an invalid ENUM
--   stored as '': '' is refused here for every session (no ENUM of these tables lists it).
--
-- Triggers fire whatever the session sets. One routine holds the rule
-- (guard_tenant_row); each table gets one new trigger per event (after the row-owner
-- trigger of 071/076/082, which fills client_id). A routine call per row is dear (about
-- 25 us), so each trigger first tests what is cheap and calls the routine only when it
-- may have to refuse:
-- * INSERT: a login's row always arrives without client_id (column privileges), so the
--   row-owner function tenant_insert_client, which already runs for it, now also refuses
--   the unsafe session settings; the trigger itself only tests the ENUMs.
-- * UPDATE: a login's UPDATE reaches only its rows (the view's filter, and CHECK OPTION
--   for INSERT ... ON DUPLICATE KEY UPDATE); the routine runs only when a check is off, an
--   ENUM is '' or client_id changes.
-- * DELETE: REPLACE deletes whatever row holds the key, so the routine runs whenever the
--   session is a client login (one indexed lookup of db_logins).

DELIMITER //

CREATE PROCEDURE guard_tenant_session(IN p_action VARCHAR(6))
  COMMENT 'Internal: refuses a client login''s write while a session setting skips a check, chooses ids or forges the clock'
BEGIN
  IF @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a client login writes with every check on: SET SESSION foreign_key_checks = 1, unique_checks = 1, check_constraint_checks = 1';
  END IF;
  IF p_action = 'INSERT' AND (@@SESSION.insert_id <> 0
     OR @@SESSION.auto_increment_increment <> @@GLOBAL.auto_increment_increment
     OR @@SESSION.auto_increment_offset <> @@GLOBAL.auto_increment_offset) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a client login does not choose row ids: SET SESSION insert_id = 0, auto_increment_increment = DEFAULT, auto_increment_offset = DEFAULT';
  END IF;
  IF @@SESSION.skip_replication <> 0 OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a client login writes with the server''s clock and replication: SET SESSION timestamp = DEFAULT, skip_replication = 0';
  END IF;
END//

CREATE PROCEDURE guard_tenant_row(IN p_table VARCHAR(64), IN p_action VARCHAR(6),
                                  IN p_old_client INT UNSIGNED, IN p_new_client INT UNSIGNED,
                                  IN p_empty_enum VARCHAR(64))
  COMMENT 'Internal, called by the *_tenant_guard_* triggers: refuses a client login''s write that reaches another client or skips a check'
BEGIN
  DECLARE v_client INT UNSIGNED DEFAULT NULL;
  IF p_empty_enum IS NOT NULL THEN
    SET @ict_guard_message = CONCAT(p_table, '.', p_empty_enum,
      ' must be one of its listed values, not an empty string (INSERT IGNORE or a non-strict sql_mode stored one)');
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @ict_guard_message;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    SET v_client = NULL;  -- the operator: its own rules only
  ELSE
    CALL guard_tenant_session(p_action);
    SET v_client = (SELECT client_id FROM tenant_session);
    IF v_client IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this login is locked: the client is suspended or the user or agent is disabled';
    END IF;
    IF NOT (p_old_client <=> v_client) OR NOT (p_new_client <=> v_client) THEN
      SET @ict_guard_message = CONCAT('a client login changes only its own rows: this ', p_table,
        ' row belongs to someone else (a duplicate name or number in REPLACE or LOAD DATA ... REPLACE? choose another)');
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @ict_guard_message;
    END IF;
  END IF;
END//

CREATE OR REPLACE FUNCTION tenant_insert_client(p_written INT UNSIGNED) RETURNS INT UNSIGNED
  NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
  COMMENT 'Client id a new row gets: the session tenant''s for a client login (refused while locked or with a check off), else p_written'
BEGIN
  DECLARE v_client INT UNSIGNED DEFAULT NULL;
  IF NOT EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    RETURN p_written;
  END IF;
  -- guard_tenant_session('INSERT'), inline: a routine call per row costs ~20 us
  IF @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.insert_id <> 0
     OR @@SESSION.auto_increment_increment <> @@GLOBAL.auto_increment_increment
     OR @@SESSION.auto_increment_offset <> @@GLOBAL.auto_increment_offset
     OR @@SESSION.skip_replication <> 0 OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_session('INSERT');
  END IF;
  SET v_client = (SELECT client_id FROM tenant_session);
  IF v_client IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this login is locked: the client is suspended or the user or agent is disabled';
  END IF;
  RETURN v_client;
END//

-- campaigns ---------------------------------------------------------------------------
CREATE TRIGGER campaigns_tenant_guard_insert BEFORE INSERT ON campaigns FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.mode = '' THEN 'mode' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('campaigns', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER campaigns_tenant_guard_update BEFORE UPDATE ON campaigns FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.mode = '' THEN 'mode' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('campaigns', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER campaigns_tenant_guard_delete BEFORE DELETE ON campaigns FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('campaigns', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

-- contacts ----------------------------------------------------------------------------
CREATE TRIGGER contacts_tenant_guard_insert BEFORE INSERT ON contacts FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.last_outcome = '' THEN 'last_outcome' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('contacts', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER contacts_tenant_guard_update BEFORE UPDATE ON contacts FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.last_outcome = '' THEN 'last_outcome' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('contacts', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER contacts_tenant_guard_delete BEFORE DELETE ON contacts FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('contacts', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

-- agents ------------------------------------------------------------------------------
CREATE TRIGGER agents_tenant_guard_insert BEFORE INSERT ON agents FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('agents', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER agents_tenant_guard_update BEFORE UPDATE ON agents FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('agents', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER agents_tenant_guard_delete BEFORE DELETE ON agents FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('agents', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

-- extensions --------------------------------------------------------------------------
CREATE TRIGGER extensions_tenant_guard_insert BEFORE INSERT ON extensions FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('extensions', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER extensions_tenant_guard_update BEFORE UPDATE ON extensions FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('extensions', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER extensions_tenant_guard_delete BEFORE DELETE ON extensions FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('extensions', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

-- users -------------------------------------------------------------------------------
CREATE TRIGGER users_tenant_guard_insert BEFORE INSERT ON users FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.role = '' THEN 'role' WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('users', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER users_tenant_guard_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.role = '' THEN 'role' WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('users', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
-- Before 030's "has a database login" refusal, so REPLACE of another client's user is
-- refused as such (whoever's login it is).
CREATE TRIGGER users_tenant_guard_delete BEFORE DELETE ON users FOR EACH ROW
  PRECEDES users_db_login_before_delete
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('users', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

-- queues ------------------------------------------------------------------------------
CREATE TRIGGER queues_tenant_guard_insert BEFORE INSERT ON queues FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.strategy = '' THEN 'strategy' WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('queues', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER queues_tenant_guard_update BEFORE UPDATE ON queues FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT CASE WHEN NEW.strategy = '' THEN 'strategy' WHEN NEW.status = '' THEN 'status' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('queues', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER queues_tenant_guard_delete BEFORE DELETE ON queues FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('queues', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

-- do_not_call -------------------------------------------------------------------------
CREATE TRIGGER do_not_call_tenant_guard_update BEFORE UPDATE ON do_not_call FOR EACH ROW
BEGIN
  DECLARE v_empty VARCHAR(64) DEFAULT NULL;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('do_not_call', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//
CREATE TRIGGER do_not_call_tenant_guard_delete BEFORE DELETE ON do_not_call FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('do_not_call', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

DELIMITER ;
