-- The admin procedures of 091 again, with text parameters a web tool can read, so that
-- Adminer's Call form offers their fields (issue 19).
-- Adminer 4.8.1 (Debian's package) builds a procedure's Call form by parsing the parameter
-- list of SHOW CREATE PROCEDURE; its grammar knows `CHARACTER SET x` after a type but not
-- `COLLATE y`, so for 091's `VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`
-- it found no parameter at all and showed an empty form (CALL add_payment() then fails).
-- A text parameter is now declared with its type only: it takes the database's default
-- character set and collation, which `db upgrade` makes utf8mb4 / utf8mb4_unicode_ci before
-- any routine exists (and it refuses a database whose routines were made under another).
-- The bodies are 091's unchanged: codes are still looked up as
-- CONVERT(p_code USING ascii) COLLATE ascii_bin, the column's own collation, so the unique
-- key of clients.code is used whatever the caller's collation.
-- create_client is not redefined here: 094 (which moves the balance it writes) declares its
-- text parameters the same way.

DROP PROCEDURE activate_client;
DROP PROCEDURE suspend_client;
DROP PROCEDURE set_client_status;
DROP PROCEDURE add_payment;

DELIMITER //

CREATE PROCEDURE add_payment(IN p_code VARCHAR(32),
                             IN p_amount DECIMAL(65,30),
                             IN p_reference VARCHAR(128))
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

CREATE PROCEDURE set_client_status(IN p_code VARCHAR(32), IN p_status VARCHAR(16))
  COMMENT 'set_client_status(client code, active|suspended): the same as UPDATE clients SET status'
BEGIN
  DECLARE cid INT UNSIGNED DEFAULT client_id_of(p_code);
  IF cid IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code: see SELECT code FROM clients';
  END IF;
  UPDATE clients SET status = p_status WHERE id = cid;
  SELECT * FROM client_list WHERE id = cid;
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
