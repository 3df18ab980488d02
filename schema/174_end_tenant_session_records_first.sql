-- end_tenant_session (101) ended the session, then recorded why: whoever saw the session
-- gone (its client, a monitor, a test polling it) could read tenant_sessions_ended a few
-- milliseconds too early and find no reason, and a failed INSERT (a lock wait timeout)
-- left an ending never recorded at all (a CI flake: test_resource_limits_bound_... saw
-- `second` disconnected, and its reason was not there yet). Now the row comes first: the
-- watchdog runs with autocommit on, so it is committed before the KILL, and an ending
-- is never seen before its reason. It is taken back when the KILL did not happen: the
-- session had ended by itself (1094, before: recorded as if ended), or the KILL failed.
-- Inside a caller's open transaction the row shows at its COMMIT, as before.

DELIMITER //

CREATE OR REPLACE PROCEDURE end_tenant_session(IN p_id BIGINT UNSIGNED, IN p_account VARCHAR(128) CHARACTER SET utf8mb4,
                                               IN p_what VARCHAR(16), IN p_reason VARCHAR(255))
  COMMENT 'Internal: KILL CONNECTION (or QUERY) of one client login session, recorded in tenant_sessions_ended first'
BEGIN
  DECLARE v_row BIGINT UNSIGNED DEFAULT NULL;
  DECLARE v_gone TINYINT DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR 1094 SET v_gone = 1;  -- it ended meanwhile: not ended by us
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DELETE FROM tenant_sessions_ended WHERE id = v_row;
    RESIGNAL;
  END;

  INSERT INTO tenant_sessions_ended (ended_at, account, connection_id, what, reason)
    VALUES (UTC_TIMESTAMP(3), LEFT(CONVERT(p_account USING ascii), 80), p_id, p_what, p_reason);
  SET v_row = LAST_INSERT_ID();
  CALL tenant_exec(CONCAT('KILL ', IF(p_what = 'query', 'QUERY ', 'CONNECTION '), CAST(p_id AS CHAR)));
  IF v_gone THEN
    DELETE FROM tenant_sessions_ended WHERE id = v_row;
  END IF;
END//

DELIMITER ;
