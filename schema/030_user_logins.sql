-- Who may log in: a login works only while the user, its agent (if any) and its client are
-- all active, so suspending a client locks out all its users at once and reactivation lets
-- them back in. Nothing is deleted.

CREATE VIEW user_login_status AS
SELECT u.id AS user_id, u.username, c.code AS client, u.role,
       CASE
         WHEN c.status <> 'active' THEN 'client-suspended'
         WHEN u.status <> 'active' THEN 'user-disabled'
         WHEN a.id IS NOT NULL AND a.status <> 'active' THEN 'agent-disabled'
         WHEN u.password_hash IS NULL THEN 'no-password'
         ELSE 'ok'
       END AS login_state,
       u.last_login_at
FROM users u
JOIN clients c ON c.id = u.client_id
LEFT JOIN agents a ON a.id = u.agent_id;

DELIMITER //

CREATE PROCEDURE user_login(IN p_username VARCHAR(64), IN p_password VARCHAR(255))
  COMMENT 'user_login(username, password): one row (allowed 0/1, reason, client, role); records last_login_at on success'
BEGIN
  DECLARE v_id INT UNSIGNED DEFAULT NULL;
  DECLARE v_hash VARCHAR(255) DEFAULT NULL;
  DECLARE v_state VARCHAR(32) DEFAULT NULL;
  DECLARE v_client VARCHAR(32) DEFAULT NULL;
  DECLARE v_role VARCHAR(16) DEFAULT NULL;
  DECLARE v_reason VARCHAR(32);
  SELECT s.user_id, u.password_hash, s.login_state, s.client, s.role
    INTO v_id, v_hash, v_state, v_client, v_role
    FROM user_login_status s JOIN users u ON u.id = s.user_id
    WHERE s.username = p_username;
  -- A wrong password and an unknown user answer alike: the reason must not reveal names.
  IF v_id IS NULL OR v_hash IS NULL
     OR SHA2(CONCAT(SUBSTRING_INDEX(SUBSTRING_INDEX(v_hash, '$', 2), '$', -1), p_password), 512)
        <> SUBSTRING_INDEX(v_hash, '$', -1) THEN
    SET v_reason = 'bad-credentials';
  ELSE
    SET v_reason = v_state;
  END IF;
  IF v_reason = 'ok' THEN
    UPDATE users SET last_login_at = UTC_TIMESTAMP() WHERE id = v_id;
    SELECT 1 AS allowed, v_reason AS reason, v_client AS client, v_role AS role;
  ELSE
    SELECT 0 AS allowed, v_reason AS reason, NULL AS client, NULL AS role;
  END IF;
END//

DELIMITER ;
