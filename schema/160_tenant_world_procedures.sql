-- Reseller logins (124): build_tenant_world also creates the procedures of the tenant
-- database (tenant_procedures) and grants EXECUTE on each to its role. Re-created here,
-- after every landed definition (103 is the latest), with the old body kept and the
-- `tenant_procedures` block added last. MariaDB runs CREATE PROCEDURE as a prepared
-- statement (10.11, tested); MySQL 8 does not, so there the block fails and reseller
-- logins are MariaDB-only (docs/tenant-logins.md).

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
  DECLARE v_target VARCHAR(64);
  DECLARE v_parameters VARCHAR(1000);
  DECLARE v_description VARCHAR(255);
  DECLARE v_db VARCHAR(260) DEFAULT tenant_quote_name(tenant_database_name());
  DECLARE views_cursor CURSOR FOR SELECT name, definition, writable FROM tenant_views ORDER BY name;
  DECLARE privileges_cursor CURSOR FOR
    SELECT view_name, role, privilege, columns FROM tenant_privileges ORDER BY view_name, role, privilege;
  DECLARE procedures_cursor CURSOR FOR
    SELECT name, target, parameters, role, description FROM tenant_procedures ORDER BY name;
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

  tenant_procedures: BEGIN
    -- Reseller logins (124): each tenant procedure is one CALL of its target here with
    -- the same arguments; the target works out the caller from tenant_session. Names and
    -- parameter lists are checked against strict patterns before they reach the SQL.
    SET done = 0;
    OPEN procedures_cursor;
    procedures_loop: LOOP
      FETCH procedures_cursor INTO v_name, v_target, v_parameters, v_role, v_description;
      IF done THEN LEAVE procedures_loop; END IF;
      IF NOT tenant_name_ok(v_name, '^[a-z][a-z_]{0,63}$') OR NOT tenant_name_ok(v_target, '^[a-z][a-z_]{0,63}$')
         OR NOT (CONVERT(v_parameters USING ascii) COLLATE ascii_bin) REGEXP '^(IN p_[a-z_]+ (VARCHAR\\([0-9]{1,3}\\)|DECIMAL\\([0-9]{1,2},[0-9]{1,2}\\)|INT|TINYINT)(, IN p_[a-z_]+ (VARCHAR\\([0-9]{1,3}\\)|DECIMAL\\([0-9]{1,2},[0-9]{1,2}\\)|INT|TINYINT))*)?$' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'tenant_procedures: name and target are [a-z_], parameters IN p_name TYPE, ...';
      END IF;
      CALL tenant_exec(CONCAT('CREATE OR REPLACE PROCEDURE ', v_db, '.', tenant_quote_name(v_name),
                              '(', v_parameters, ') SQL SECURITY DEFINER COMMENT ', QUOTE(v_description),
                              ' CALL ', tenant_quote_name(DATABASE()), '.', tenant_quote_name(v_target), '(',
                              REGEXP_REPLACE(v_parameters, 'IN (p_[a-z_]+) [A-Z]+(\\([0-9,]+\\))?', '\\1'), ')'));
      CALL tenant_exec(CONCAT('GRANT EXECUTE ON PROCEDURE ', v_db, '.', tenant_quote_name(v_name),
                              ' TO ', tenant_quote_name(tenant_role_name(v_role))));
    END LOOP;
    CLOSE procedures_cursor;
  END tenant_procedures;
END//

DELIMITER ;

CALL refresh_tenant_world();
