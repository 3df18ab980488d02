-- A client's locking read must not lock the operator's rows or another client's. Through a
-- MERGE view, `SELECT ... LOCK IN SHARE MODE` / `FOR UPDATE` locks the base rows it reads
-- and the index gaps around them: on client_list it blocked the operator's
-- `UPDATE clients SET status = 'suspended'` (1205), on calls the index range where another
-- client's next call row goes (its authorize answered `unavailable`). A TEMPTABLE view is
-- read into a temporary table first and the locking clause locks nothing (MariaDB 10.11,
-- tested): every read-only tenant view is now TEMPTABLE. Writable views must stay MERGE
-- (a TEMPTABLE view cannot be written through); what a login locks through them, or reads
-- under SERIALIZABLE, is bounded by the watchdog (101), which ends a session whose lock
-- another transaction waits for.

DELIMITER //

CREATE OR REPLACE PROCEDURE build_tenant_world()
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
    -- A read-only view is TEMPTABLE: LOCK IN SHARE MODE / FOR UPDATE through it lock nothing.
    CALL tenant_exec(CONCAT('CREATE OR REPLACE ALGORITHM=', IF(v_writable = 1, 'MERGE', 'TEMPTABLE'),
                            ' SQL SECURITY DEFINER VIEW ',
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

DELIMITER ;

CALL refresh_tenant_world();
