-- Build (and tear down) the tenant database and its roles from tenant_views and
-- tenant_privileges. Database and role names are server-wide, so they derive from this
-- database's name: database `<db>_tenant`, roles `<db>_tenant_admin|supervisor|agent`.
-- Nothing is created until the first grant_db_login (or CALL build_tenant_world()).
-- Every name put into dynamic SQL is checked against a strict pattern first and then
-- quoted; these routines run as their definer (the operator who applied the schema) and
-- no tenant role may execute them.

DELIMITER //

CREATE FUNCTION tenant_database_name() RETURNS VARCHAR(64) CHARACTER SET utf8mb4
  DETERMINISTIC NO SQL
  COMMENT 'Name of the tenant database: <this database>_tenant'
BEGIN
  IF CHAR_LENGTH(DATABASE()) > 57 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the database name is too long for a tenant database (57 characters at most)';
  END IF;
  RETURN CONCAT(DATABASE(), '_tenant');
END//

CREATE FUNCTION tenant_role_name(p_role VARCHAR(16)) RETURNS VARCHAR(128) CHARACTER SET utf8mb4
  DETERMINISTIC NO SQL
  COMMENT 'Server role of a tenant role (admin, supervisor, agent): <this database>_tenant_<role>'
BEGIN
  IF p_role IS NULL OR p_role NOT IN ('admin', 'supervisor', 'agent') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a tenant role is admin, supervisor or agent';
  END IF;
  RETURN CONCAT(DATABASE(), '_tenant_', p_role);
END//

CREATE FUNCTION tenant_quote_name(p_name VARCHAR(128)) RETURNS VARCHAR(260) CHARACTER SET utf8mb4
  DETERMINISTIC NO SQL
  COMMENT 'p_name as a backquoted SQL identifier (backquotes doubled)'
BEGIN
  RETURN CONCAT('`', REPLACE(p_name, '`', '``'), '`');
END//

-- ASCII only (bytes = characters), then matched case-sensitively: no Unicode case folding
-- (KELVIN SIGN is no 'k' here). Portable: MySQL 8 refuses REGEXP on binary strings.
CREATE FUNCTION tenant_name_ok(p_value VARCHAR(1000) CHARACTER SET utf8mb4,
                               p_pattern VARCHAR(64) CHARACTER SET ascii) RETURNS TINYINT
  DETERMINISTIC NO SQL
  COMMENT '1 when p_value is ASCII and matches p_pattern case-sensitively, else 0'
BEGIN
  RETURN p_value IS NOT NULL AND LENGTH(p_value) = CHAR_LENGTH(p_value)
         AND (CONVERT(p_value USING ascii) COLLATE ascii_bin) REGEXP p_pattern;
END//

-- The one place dynamic SQL runs. Internal: grant EXECUTE on it to nobody.
CREATE PROCEDURE tenant_exec(IN p_sql TEXT)
  COMMENT 'Internal, for the tenant-login routines only: runs one statement they built'
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_tenant_sql = NULL;  -- may hold a password
    RESIGNAL;
  END;
  SET @ict_tenant_sql = p_sql;
  PREPARE ict_tenant_stmt FROM @ict_tenant_sql;
  SET @ict_tenant_sql = NULL;
  EXECUTE ict_tenant_stmt;
  DEALLOCATE PREPARE ict_tenant_stmt;
END//

CREATE PROCEDURE build_tenant_world()
  COMMENT 'Create or refresh the tenant database, its views and the three tenant roles with their grants'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_name VARCHAR(64);
  DECLARE v_definition TEXT;
  DECLARE v_writable TINYINT;
  DECLARE v_role VARCHAR(16);
  DECLARE v_privilege VARCHAR(16);
  DECLARE v_columns VARCHAR(1000);
  DECLARE v_db VARCHAR(260) DEFAULT tenant_quote_name(tenant_database_name());
  DECLARE views_cursor CURSOR FOR SELECT name, definition, writable FROM tenant_views ORDER BY name;
  DECLARE privileges_cursor CURSOR FOR
    SELECT view_name, role, privilege, columns FROM tenant_privileges ORDER BY view_name, role, privilege;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;

  CALL tenant_exec(CONCAT('CREATE DATABASE IF NOT EXISTS ', v_db,
                          ' CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'));
  OPEN views_cursor;
  views_loop: LOOP
    FETCH views_cursor INTO v_name, v_definition, v_writable;
    IF done THEN LEAVE views_loop; END IF;
    IF NOT tenant_name_ok(v_name, '^[a-z][a-z_]{0,63}$') THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'tenant_views.name must be [a-z_]';
    END IF;
    CALL tenant_exec(CONCAT('CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY DEFINER VIEW ',
                            v_db, '.', tenant_quote_name(v_name), ' AS ', v_definition,
                            IF(v_writable = 1, ' WITH CASCADED CHECK OPTION', '')));
  END LOOP;
  CLOSE views_cursor;

  CALL tenant_exec(CONCAT('CREATE ROLE IF NOT EXISTS ', tenant_quote_name(tenant_role_name('agent'))));
  CALL tenant_exec(CONCAT('CREATE ROLE IF NOT EXISTS ', tenant_quote_name(tenant_role_name('supervisor'))));
  CALL tenant_exec(CONCAT('CREATE ROLE IF NOT EXISTS ', tenant_quote_name(tenant_role_name('admin'))));
  CALL tenant_exec(CONCAT('GRANT ', tenant_quote_name(tenant_role_name('agent')),
                          ' TO ', tenant_quote_name(tenant_role_name('supervisor'))));
  CALL tenant_exec(CONCAT('GRANT ', tenant_quote_name(tenant_role_name('supervisor')),
                          ' TO ', tenant_quote_name(tenant_role_name('admin'))));

  SET done = 0;
  OPEN privileges_cursor;
  privileges_loop: LOOP
    FETCH privileges_cursor INTO v_name, v_role, v_privilege, v_columns;
    IF done THEN LEAVE privileges_loop; END IF;
    IF v_columns IS NOT NULL AND NOT tenant_name_ok(v_columns, '^[a-z_]+(,[a-z_]+)*$') THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'tenant_privileges.columns must be a comma list of [a-z_] names';
    END IF;
    CALL tenant_exec(CONCAT('GRANT ', v_privilege,
                            IF(v_columns IS NULL, '', CONCAT(' (', v_columns, ')')),
                            ' ON ', v_db, '.', tenant_quote_name(v_name),
                            ' TO ', tenant_quote_name(tenant_role_name(v_role))));
  END LOOP;
  CLOSE privileges_cursor;
END//

CREATE PROCEDURE refresh_tenant_world()
  COMMENT 'build_tenant_world() if the tenant database exists (after adding tenant_views rows); else nothing'
BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = tenant_database_name()) THEN
    CALL build_tenant_world();
  END IF;
END//

-- Ends the sessions of one account (all but the caller's own); names compare exactly, as
-- the server's account names do (Acme.x is not acme.x).
CREATE PROCEDURE kill_db_login_sessions(IN p_account VARCHAR(80))
  COMMENT 'Internal: disconnects every session of a client login (after a lock, role change or revoke)'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_id BIGINT UNSIGNED;
  DECLARE sessions CURSOR FOR
    SELECT id FROM information_schema.processlist
     WHERE CAST(user AS BINARY) = CAST(p_account AS BINARY) AND id <> CONNECTION_ID();
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  DECLARE CONTINUE HANDLER FOR 1094 BEGIN END;  -- the session ended meanwhile
  OPEN sessions;
  sessions_loop: LOOP
    FETCH sessions INTO v_id;
    IF done THEN LEAVE sessions_loop; END IF;
    CALL tenant_exec(CONCAT('KILL CONNECTION ', CAST(v_id AS CHAR)));
  END LOOP;
  CLOSE sessions;
END//

CREATE PROCEDURE drop_tenant_world()
  COMMENT 'Remove every client database login, the tenant roles and the tenant database (nothing else)'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_account VARCHAR(80);
  DECLARE v_host VARCHAR(60);
  DECLARE logins CURSOR FOR SELECT account, host FROM db_logins;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN logins;
  logins_loop: LOOP
    FETCH logins INTO v_account, v_host;
    IF done THEN LEAVE logins_loop; END IF;
    CALL tenant_exec(CONCAT('DROP USER IF EXISTS ', QUOTE(v_account), '@', QUOTE(v_host)));
    CALL kill_db_login_sessions(v_account);
    SET @ict_revoking_login = v_account;
    DELETE FROM db_logins WHERE account = v_account;
    SET @ict_revoking_login = NULL;
  END LOOP;
  CLOSE logins;
  CALL tenant_exec(CONCAT('DROP ROLE IF EXISTS ', tenant_quote_name(tenant_role_name('admin'))));
  CALL tenant_exec(CONCAT('DROP ROLE IF EXISTS ', tenant_quote_name(tenant_role_name('supervisor'))));
  CALL tenant_exec(CONCAT('DROP ROLE IF EXISTS ', tenant_quote_name(tenant_role_name('agent'))));
  CALL tenant_exec(CONCAT('DROP DATABASE IF EXISTS ', tenant_quote_name(tenant_database_name())));
END//

DELIMITER ;
