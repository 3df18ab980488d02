-- One-line admin workflows. Each is also a plain INSERT/UPDATE (see README); these only
-- save typing and look clients up by code.

DELIMITER //

CREATE PROCEDURE create_client(IN p_code VARCHAR(32), IN p_name VARCHAR(128),
                               IN p_plan VARCHAR(64), IN p_channels INT,
                               IN p_opening_balance DECIMAL(14,4))
  COMMENT 'create_client(code, name, plan name or NULL for the default, channel limit, opening balance)'
BEGIN
  DECLARE plan_id INT UNSIGNED DEFAULT NULL;
  IF p_plan IS NOT NULL THEN
    SET plan_id = (SELECT id FROM rate_plans WHERE name = p_plan);
    IF plan_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no rate plan with that name';
    END IF;
  END IF;
  INSERT INTO clients (code, name, rate_plan_id, channel_limit, balance)
    VALUES (p_code, p_name, plan_id, COALESCE(p_channels, 10), COALESCE(p_opening_balance, 0));
  SELECT * FROM client_list WHERE code = p_code;
END//

CREATE PROCEDURE add_payment(IN p_code VARCHAR(32), IN p_amount DECIMAL(14,4), IN p_reference VARCHAR(128))
  COMMENT 'add_payment(client code, amount USD, reference): a top-up (negative: a correction)'
BEGIN
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  SET cid = (SELECT id FROM clients WHERE code = p_code);
  IF cid IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code';
  END IF;
  INSERT INTO payments (client_id, amount, kind, reference)
    VALUES (cid, p_amount, IF(p_amount < 0, 'correction', 'topup'), p_reference);
  SELECT * FROM client_list WHERE id = cid;
END//

CREATE PROCEDURE set_client_status(IN p_code VARCHAR(32), IN p_status VARCHAR(16))
  COMMENT 'set_client_status(client code, active|suspended): the same as UPDATE clients SET status'
BEGIN
  UPDATE clients SET status = p_status WHERE code = p_code;
  IF ROW_COUNT() = 0 AND NOT EXISTS (SELECT 1 FROM clients WHERE code = p_code) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code';
  END IF;
  SELECT * FROM client_list WHERE code = p_code;
END//

CREATE PROCEDURE suspend_client(IN p_code VARCHAR(32))
  COMMENT 'suspend_client(client code): reject new calls, pause campaigns, lock out agents'
BEGIN
  CALL set_client_status(p_code, 'suspended');
END//

CREATE PROCEDURE activate_client(IN p_code VARCHAR(32))
  COMMENT 'activate_client(client code): restore a suspended client as it was'
BEGIN
  CALL set_client_status(p_code, 'active');
END//

DELIMITER ;
