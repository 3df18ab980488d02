-- Keep every database login in step with its users row: the tenant role of users.role,
-- and ACCOUNT LOCK while the client is suspended or the user (or its agent) is disabled,
-- ACCOUNT UNLOCK when all are active again. A trigger cannot run ALTER USER, so the event
-- db_login_sync runs sync_db_logins() every second (the server needs
-- event_scheduler=ON; grant_db_login refuses to work without it). Connected sessions are
-- ended when their account is locked or changes role; until then tenant_session already
-- shows them nothing. `ictcontact users sync` runs the same procedure once.

DELIMITER //

CREATE PROCEDURE sync_db_logins()
  COMMENT 'Apply role changes and lock/unlock client database logins by client, user and agent status'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_user_id INT UNSIGNED;
  DECLARE v_account VARCHAR(80);
  DECLARE v_host VARCHAR(60);
  DECLARE v_applied VARCHAR(16);
  DECLARE v_role VARCHAR(16);
  DECLARE v_locked TINYINT;
  DECLARE v_open TINYINT;
  DECLARE v_target VARCHAR(200);
  DECLARE v_lock_name VARCHAR(64) DEFAULT LEFT(CONCAT('ict_db_login_sync:', DATABASE()), 64);
  DECLARE pending CURSOR FOR
    SELECT l.user_id, l.account, l.host, l.applied_role, u.role, l.locked,
           (c.status = 'active' AND u.status = 'active' AND (a.id IS NULL OR a.status = 'active'))
      FROM db_logins l
      JOIN users u ON u.id = l.user_id
      JOIN clients c ON c.id = u.client_id
      LEFT JOIN agents a ON a.id = u.agent_id
     WHERE NOT (l.applied_role <=> u.role)
        OR l.locked = (c.status = 'active' AND u.status = 'active' AND (a.id IS NULL OR a.status = 'active'));
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DO RELEASE_LOCK(v_lock_name);
    RESIGNAL;
  END;

  IF GET_LOCK(v_lock_name, 5) = 1 THEN
    OPEN pending;
    pending_loop: LOOP
      FETCH pending INTO v_user_id, v_account, v_host, v_applied, v_role, v_locked, v_open;
      IF done THEN LEAVE pending_loop; END IF;
      SET v_target = CONCAT(QUOTE(v_account), '@', QUOTE(v_host));
      IF NOT (v_applied <=> v_role) THEN
        IF v_applied IS NOT NULL THEN
          CALL tenant_exec(CONCAT('REVOKE ', tenant_quote_name(tenant_role_name(v_applied)), ' FROM ', v_target));
        END IF;
        CALL tenant_exec(CONCAT('GRANT ', tenant_quote_name(tenant_role_name(v_role)), ' TO ', v_target));
        IF VERSION() LIKE '%MariaDB%' THEN
          CALL tenant_exec(CONCAT('SET DEFAULT ROLE ', tenant_quote_name(tenant_role_name(v_role)), ' FOR ', v_target));
        ELSE
          CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' DEFAULT ROLE ', tenant_quote_name(tenant_role_name(v_role))));
        END IF;
      END IF;
      IF v_open AND v_locked THEN
        CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' ACCOUNT UNLOCK'));
      ELSEIF NOT v_open AND NOT v_locked THEN
        CALL tenant_exec(CONCAT('ALTER USER ', v_target, ' ACCOUNT LOCK'));
      END IF;
      -- A session keeps the role it started with: end it after a role change or a lock.
      IF (v_applied IS NOT NULL AND NOT (v_applied <=> v_role)) OR NOT v_open THEN
        CALL kill_db_login_sessions(v_account);
      END IF;
      UPDATE db_logins SET applied_role = v_role, locked = NOT v_open, synced_at = UTC_TIMESTAMP()
        WHERE user_id = v_user_id;
    END LOOP;
    CLOSE pending;
    DO RELEASE_LOCK(v_lock_name);
  END IF;
END//

DELIMITER ;

CREATE EVENT db_login_sync
  ON SCHEDULE EVERY 1 SECOND
  ON COMPLETION PRESERVE ENABLE
  COMMENT 'Locks/unlocks client database logins within a second of a suspension, reactivation or disabled user'
  DO CALL sync_db_logins();
