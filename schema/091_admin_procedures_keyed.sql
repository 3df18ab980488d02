-- The admin procedures of 007 again, so that they lock only what they change and take
-- money exactly.
-- * Keys: a parameter declared without a character set takes the database's default
--   collation, and `code = p_code` then compared the ascii_bin column as utf8mb4: no index,
--   and inside a procedure a shared lock on EVERY client row (every top-up waited behind
--   unrelated admissions). Text parameters now name their collation, and codes are looked
--   up as CONVERT(p_code USING ascii) COLLATE ascii_bin, which is the column's own
--   collation: the unique key is used whatever the caller's or the database's collation.
-- * Money: amounts come in as DECIMAL(65,30), so the INSERT sees the value as given and
--   090's triggers refuse one with more decimals than stored, instead of the parameter
--   rounding it first.
-- * Empty optional text means what the comment says: an empty plan name is the default plan
--   (a tool's Call form sends '' for a field left empty).

DROP PROCEDURE activate_client;
DROP PROCEDURE suspend_client;
DROP PROCEDURE set_client_status;
DROP PROCEDURE add_payment;
DROP PROCEDURE create_client;

DELIMITER //

CREATE FUNCTION client_id_of(p_code VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)
  RETURNS INT UNSIGNED
  READS SQL DATA
  COMMENT 'The id of the client with this code, or NULL; reads by the unique key of clients.code'
BEGIN
  RETURN (SELECT id FROM clients WHERE code = CONVERT(p_code USING ascii) COLLATE ascii_bin);
END//

CREATE PROCEDURE create_client(IN p_code VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
                               IN p_name VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
                               IN p_plan VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
                               IN p_channels INT,
                               IN p_opening_balance DECIMAL(65,30))
  COMMENT 'create_client(code, name, plan name or NULL/empty for the default, channel limit, opening balance)'
BEGIN
  DECLARE plan_id INT UNSIGNED DEFAULT NULL;
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  IF NULLIF(p_plan, '') IS NOT NULL THEN
    SET plan_id = (SELECT id FROM rate_plans WHERE name = p_plan);
    IF plan_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no rate plan with that name: see SELECT name FROM rate_plans, or give NULL for the default plan';
    END IF;
  END IF;
  INSERT INTO clients (code, name, rate_plan_id, channel_limit, balance)
    VALUES (p_code, p_name, plan_id, COALESCE(p_channels, 10), COALESCE(p_opening_balance, 0));
  -- Into a variable first: a stored function in a WHERE is called for every row.
  SET cid = client_id_of(p_code);
  SELECT * FROM client_list WHERE id = cid;
END//

CREATE PROCEDURE add_payment(IN p_code VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
                             IN p_amount DECIMAL(65,30),
                             IN p_reference VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)
  COMMENT 'add_payment(client code, amount USD, reference): a top-up (negative: a correction, never below the balance floor)'
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT inexact_money_refusal(
    input_changed_by_server('p_amount'), 1, 'payments.amount', 4);
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
  SET cid = client_id_of(p_code);
  IF cid IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code: see SELECT code FROM clients';
  END IF;
  INSERT INTO payments (client_id, amount, kind, reference)
    VALUES (cid, p_amount, IF(p_amount < 0, 'correction', 'topup'), p_reference);
  SELECT * FROM client_list WHERE id = cid;
END//

CREATE PROCEDURE set_client_status(IN p_code VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
                                   IN p_status VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)
  COMMENT 'set_client_status(client code, active|suspended): the same as UPDATE clients SET status'
BEGIN
  DECLARE cid INT UNSIGNED DEFAULT client_id_of(p_code);
  IF cid IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code: see SELECT code FROM clients';
  END IF;
  UPDATE clients SET status = p_status WHERE id = cid;
  SELECT * FROM client_list WHERE id = cid;
END//

CREATE PROCEDURE suspend_client(IN p_code VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)
  COMMENT 'suspend_client(client code): reject new calls, pause campaigns, lock out agents'
BEGIN
  CALL set_client_status(p_code, 'suspended');
END//

CREATE PROCEDURE activate_client(IN p_code VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)
  COMMENT 'activate_client(client code): restore a suspended client as it was'
BEGIN
  CALL set_client_status(p_code, 'active');
END//

DELIMITER ;
