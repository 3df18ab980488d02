-- Reseller logins (docs/tenant-logins.md, "Reseller logins"): a client the operator lets
-- resell (clients.resells = 1) manages its own clients through its own database logins,
-- with the isolation rules of every client login. Reads are tenant views filtered through
-- client_tree (120) on the session's client; writes are procedures in the tenant database
-- (tenant_procedures, built by build_tenant_world since 160), each a one-line wrapper
-- calling a reseller_* procedure here that works out the reseller from tenant_session,
-- so no argument can name another tenant's id. The money a reseller gives a child moves
-- by one transaction with rows on both sides of the ledger (transfers + two payments).

-- Who may have clients of its own. Set by the operator (or by a reseller for its own
-- child: update_my_client); a plain client's logins may create nothing.
ALTER TABLE clients
  ADD COLUMN resells TINYINT(1) NOT NULL DEFAULT 0
    COMMENT '1: this client may create and manage clients of its own through its database logins (a reseller); 0: a plain client'
    AFTER end_calls_without_credit,
  ADD CONSTRAINT ck_clients_resells CHECK (resells IN (0, 1));

-- Whoever already has children resells (order-independent: reads 120's tree). The root
-- master does not: its clients are on the operator's plans, set with the admin SQL.
UPDATE clients c SET c.resells = 1, c.updated_at = c.updated_at
 WHERE c.parent_id IS NOT NULL AND EXISTS (SELECT 1 FROM client_tree t
                                           WHERE t.ancestor_id = c.id AND t.depth = 1);

CREATE TABLE transfers (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Transfer id; the two payments rows name it in their reference',
  from_client_id INT UNSIGNED NOT NULL COMMENT 'The reseller whose balance gave the money (payments row -amount)',
  to_client_id INT UNSIGNED NOT NULL COMMENT 'Its child whose balance received it (payments row +amount)',
  amount DECIMAL(14,4) NOT NULL COMMENT 'USD moved, > 0',
  reference VARCHAR(100) NOT NULL COMMENT 'The reseller''s reference, unique per reseller so a transfer cannot be posted twice',
  from_payment_id BIGINT UNSIGNED NULL COMMENT 'The reseller''s payments row (kind correction, -amount)',
  to_payment_id BIGINT UNSIGNED NULL COMMENT 'The child''s payments row (kind topup, +amount)',
  created_by VARCHAR(128) NULL COMMENT 'Database user who made the transfer; set automatically',
  created_at DATETIME(3) NOT NULL DEFAULT UTC_TIMESTAMP(3) COMMENT 'When (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_transfers_from_reference (from_client_id, reference),
  KEY ix_transfers_to (to_client_id, created_at),
  CONSTRAINT fk_transfers_from FOREIGN KEY (from_client_id) REFERENCES clients (id),
  CONSTRAINT fk_transfers_to FOREIGN KEY (to_client_id) REFERENCES clients (id),
  CONSTRAINT fk_transfers_from_payment FOREIGN KEY (from_payment_id) REFERENCES payments (id),
  CONSTRAINT fk_transfers_to_payment FOREIGN KEY (to_payment_id) REFERENCES payments (id),
  CONSTRAINT ck_transfers_amount CHECK (amount > 0),
  CONSTRAINT ck_transfers_reference CHECK (TRIM(reference) <> ''),
  CONSTRAINT ck_transfers_two_sides CHECK (from_client_id <> to_client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Money a reseller moved from its balance to a child''s: written only by transfer_to_client (reseller_transfer)';

DELIMITER //

CREATE TRIGGER transfers_before_insert BEFORE INSERT ON transfers FOR EACH ROW
BEGIN
  IF NOT (@ict_transfer_from <=> NEW.from_client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'transfers are made by a reseller''s login with CALL transfer_to_client(child code, amount, reference); the operator moves money with payments';
  END IF;
  SET NEW.from_payment_id = NULL, NEW.to_payment_id = NULL, NEW.created_by = USER(),
      NEW.created_at = UTC_TIMESTAMP(3);
END//

CREATE TRIGGER transfers_before_update BEFORE UPDATE ON transfers FOR EACH ROW
BEGIN
  IF NOT (@ict_transfer_from <=> OLD.from_client_id)
     OR OLD.from_payment_id IS NOT NULL OR OLD.to_payment_id IS NOT NULL
     OR NOT (NEW.id <=> OLD.id AND NEW.from_client_id <=> OLD.from_client_id
             AND NEW.to_client_id <=> OLD.to_client_id AND NEW.amount <=> OLD.amount
             AND NEW.reference <=> OLD.reference AND NEW.created_by <=> OLD.created_by
             AND NEW.created_at <=> OLD.created_at) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'transfers are never changed: the operator corrects with payments rows';
  END IF;
END//

CREATE TRIGGER transfers_before_delete BEFORE DELETE ON transfers FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'transfers are never deleted: the operator corrects with payments rows';
END//

-- The reseller behind the session: its client id, or a refusal in words. Also refuses
-- the session settings that skip checks or choose ids (as every client login's writes).
CREATE FUNCTION reseller_of_session() RETURNS INT UNSIGNED
  NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
  COMMENT 'Internal, for the reseller_* procedures: the client id of the calling reseller login, or a refusal'
BEGIN
  DECLARE v_client INT UNSIGNED DEFAULT NULL;
  IF NOT EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this is for a reseller''s database login; the operator uses create_client, add_payment, suspend_client, move_client';
  END IF;
  SET v_client = (SELECT client_id FROM tenant_session);
  IF v_client IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this login is locked: the client is suspended or the user or agent is disabled';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM clients WHERE id = v_client AND resells = 1) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'your account does not resell: ask your provider to let it have clients of its own';
  END IF;
  RETURN v_client;
END//

-- A direct child of the reseller by code, or NULL. The same answer for a code that does
-- not exist and one that is not its child: nothing about other tenants leaks.
CREATE FUNCTION reseller_child(p_reseller INT UNSIGNED, p_code VARCHAR(64))
  RETURNS INT UNSIGNED
  NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
  COMMENT 'Internal: id of the reseller''s direct child with this code, else NULL'
BEGIN
  RETURN (SELECT id FROM clients
           WHERE code = CONVERT(p_code USING ascii) COLLATE ascii_bin AND parent_id = p_reseller);
END//

CREATE FUNCTION reseller_plan(p_reseller INT UNSIGNED, p_name VARCHAR(64))
  RETURNS INT UNSIGNED
  NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
  COMMENT 'Internal: id of the rate plan with this name the reseller owns, else NULL'
BEGIN
  RETURN (SELECT id FROM rate_plans WHERE name = p_name AND owner_client_id = p_reseller);
END//

-- A money value given to a reseller procedure: positive (or >= 0), at most p_decimals.
CREATE FUNCTION reseller_money_refusal(p_value DECIMAL(65,30), p_what VARCHAR(64),
                                       p_decimals INT, p_zero_ok TINYINT)
  RETURNS VARCHAR(255) CHARACTER SET utf8mb4
  DETERMINISTIC NO SQL
  COMMENT 'Internal: the refusal for a money argument that is missing, negative (or zero) or inexact, else NULL'
BEGIN
  IF p_value IS NULL OR p_value < 0 OR (p_value = 0 AND NOT p_zero_ok) THEN
    RETURN CONCAT(p_what, IF(p_zero_ok, ' must be 0 or more', ' must be more than 0'));
  END IF;
  IF p_value <> ROUND(p_value, p_decimals) THEN
    RETURN CONCAT(p_what, ' takes at most ', p_decimals, ' decimals and is never rounded: give the exact amount');
  END IF;
  IF p_value >= 10000000000 THEN
    RETURN CONCAT(p_what, ' is too large (at most 9999999999)');
  END IF;
  RETURN NULL;
END//

-- A reseller writes only in autocommit mode: each procedure is its own transaction, so
-- a login cannot keep a reseller's rows locked behind an open transaction.
CREATE PROCEDURE reseller_begin(IN p_action VARCHAR(6), OUT p_reseller INT UNSIGNED)
  COMMENT 'Internal: checks the session (a reseller login, safe settings, no open transaction) and gives the reseller id'
BEGIN
  SET p_reseller = reseller_of_session();
  IF @@SESSION.in_transaction = 1 OR @@SESSION.autocommit = 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'run this with autocommit on and no transaction open (COMMIT first): it commits by itself';
  END IF;
  CALL guard_tenant_session(p_action);
END//

-- What a reseller may still give away: balance + credit_limit - credit reserved at its
-- level by the live calls of its subtree (its own and its clients'). The caller holds
-- the reseller's clients row lock (authorize takes it before reserving at that level).
CREATE FUNCTION reseller_available_credit(p_client INT UNSIGNED) RETURNS DECIMAL(16,4)
  NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
  COMMENT 'Internal: balance + credit_limit - reserved at this level by live calls (what a transfer may take)'
BEGIN
  RETURN (SELECT a.balance + c.credit_limit FROM clients c JOIN client_accounts a ON a.client_id = c.id
           WHERE c.id = p_client)
       - (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = p_client AND state = 'live')
       - (SELECT COALESCE(SUM(reserved), 0) FROM call_charges WHERE client_id = p_client AND live = 1);
END//

CREATE PROCEDURE reseller_create_client(IN p_code VARCHAR(64), IN p_name VARCHAR(255),
                                        IN p_plan VARCHAR(64), IN p_channels INT)
  COMMENT 'create_my_client(code, name, plan, channels): a new client under the calling reseller'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_plan INT UNSIGNED;
  DECLARE v_id INT UNSIGNED;
  DECLARE EXIT HANDLER FOR 1062
  BEGIN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'that client code or name is taken (codes and names are unique across the whole service): choose another';
  END;
  CALL reseller_begin('INSERT', v_me);
  SET v_plan = reseller_plan(v_me, p_plan);
  IF v_plan IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'give one of your own plans: SELECT name FROM my_plans (create one with CALL create_my_plan)';
  END IF;
  IF p_channels IS NULL OR p_channels < 0 OR p_channels > 10000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'channels must be 0-10000 (your own limit still caps your clients'' calls)';
  END IF;
  INSERT INTO clients (code, name, rate_plan_id, channel_limit, opening_balance, parent_id)
    VALUES (p_code, p_name, v_plan, p_channels, 0, v_me);
  SET v_id = LAST_INSERT_ID();
  SELECT code, name, plan, balance, channels, status FROM client_list WHERE id = v_id;
END//

-- NULL leaves a value as it is.
CREATE PROCEDURE reseller_update_client(IN p_code VARCHAR(64), IN p_plan VARCHAR(64),
                                        IN p_channels INT, IN p_credit_limit DECIMAL(65,30),
                                        IN p_resells TINYINT)
  COMMENT 'update_my_client(code, plan, channels, credit limit, resells): NULL keeps a value'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_child INT UNSIGNED;
  DECLARE v_plan INT UNSIGNED DEFAULT NULL;
  DECLARE v_refusal VARCHAR(255) DEFAULT NULL;
  CALL reseller_begin('UPDATE', v_me);
  SET v_child = reseller_child(v_me, p_code);
  IF v_child IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client of yours has that code: SELECT code FROM my_clients WHERE depth = 1';
  END IF;
  IF p_plan IS NOT NULL THEN
    SET v_plan = reseller_plan(v_me, p_plan);
    IF v_plan IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'give one of your own plans: SELECT name FROM my_plans';
    END IF;
  END IF;
  IF p_channels IS NOT NULL AND (p_channels < 0 OR p_channels > 10000) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'channels must be 0-10000 (your own limit still caps your clients'' calls)';
  END IF;
  IF p_credit_limit IS NOT NULL THEN
    SET v_refusal = reseller_money_refusal(p_credit_limit, 'the credit limit', 4, 1);
    IF v_refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_refusal;
    END IF;
  END IF;
  IF p_resells IS NOT NULL AND p_resells NOT IN (0, 1) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'resells is 1 (the client may have clients of its own) or 0';
  END IF;
  UPDATE clients
     SET rate_plan_id = COALESCE(v_plan, rate_plan_id),
         channel_limit = COALESCE(p_channels, channel_limit),
         credit_limit = COALESCE(p_credit_limit, credit_limit),
         resells = COALESCE(p_resells, resells)
   WHERE id = v_child;
  SELECT code, name, plan, balance, channels, status FROM client_list WHERE id = v_child;
END//

CREATE PROCEDURE reseller_set_client_status(IN p_code VARCHAR(64), IN p_status VARCHAR(16))
  COMMENT 'suspend_my_client / activate_my_client: the status of one of the calling reseller''s own clients'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_child INT UNSIGNED;
  CALL reseller_begin('UPDATE', v_me);
  SET v_child = reseller_child(v_me, p_code);
  IF v_child IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client of yours has that code: SELECT code FROM my_clients WHERE depth = 1';
  END IF;
  UPDATE clients SET status = p_status WHERE id = v_child;
  SELECT code, name, plan, balance, channels, status FROM client_list WHERE id = v_child;
END//

-- One transaction, in the lock order of every call's levels (fastagi/store/resellers.py:
-- deepest first, at each level the clients row then the account): the child's rows, then
-- the reseller's. The credit left is read under the reseller's lock, so a call racing for
-- the same credit waits and sees the transfer, or reserves first and the transfer sees
-- its reservation.
CREATE PROCEDURE reseller_transfer(IN p_code VARCHAR(64), IN p_amount DECIMAL(65,30),
                                   IN p_reference VARCHAR(255))
  COMMENT 'transfer_to_client(child code, amount, reference): money from the calling reseller''s balance to its child''s'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_child INT UNSIGNED;
  DECLARE v_available DECIMAL(16,4);
  DECLARE v_transfer BIGINT UNSIGNED;
  DECLARE v_from_payment BIGINT UNSIGNED;
  DECLARE v_to_payment BIGINT UNSIGNED;
  DECLARE v_refusal VARCHAR(255) DEFAULT reseller_money_refusal(p_amount, 'the amount', 4, 0);
  DECLARE v_tries INT DEFAULT 0;
  DECLARE v_done TINYINT DEFAULT 0;
  CALL reseller_begin('INSERT', v_me);
  IF v_refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_refusal;
  END IF;
  IF p_reference IS NULL OR TRIM(p_reference) = '' OR CHAR_LENGTH(p_reference) > 100 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'give a reference of 1-100 characters (unique among your transfers)';
  END IF;
  SET v_child = reseller_child(v_me, p_code);
  IF v_child IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client of yours has that code: money goes down to your own clients only (SELECT code FROM my_clients WHERE depth = 1)';
  END IF;
  WHILE NOT v_done DO
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        GET DIAGNOSTICS CONDITION 1 @ict_transfer_errno = MYSQL_ERRNO;
        ROLLBACK;
        SET @ict_transfer_from = NULL;
        SET v_tries = v_tries + 1;
        IF @ict_transfer_errno NOT IN (1213, 1205) OR v_tries >= 10 THEN
          RESIGNAL;
        END IF;
        DO SLEEP(0.01 * v_tries);
      END;
      START TRANSACTION;
      SELECT id INTO v_child FROM clients WHERE id = v_child FOR UPDATE;
      SELECT client_id INTO v_child FROM client_accounts WHERE client_id = v_child FOR UPDATE;
      SELECT id INTO v_me FROM clients WHERE id = v_me FOR UPDATE;
      SELECT client_id INTO v_me FROM client_accounts WHERE client_id = v_me FOR UPDATE;
      IF EXISTS (SELECT 1 FROM transfers WHERE from_client_id = v_me AND reference = p_reference) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'you already made a transfer with this reference: SELECT * FROM transfers';
      END IF;
      SET v_available = reseller_available_credit(v_me);
      IF p_amount > v_available THEN
        SET @ict_transfer_message = CONCAT('not enough credit: you may transfer at most ',
          FORMAT(GREATEST(v_available, 0), 4, 'en_US'),
          ' (your balance + credit limit - what live calls of yours and your clients reserve)');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @ict_transfer_message;
      END IF;
      SET @ict_transfer_from = v_me;
      INSERT INTO transfers (from_client_id, to_client_id, amount, reference)
        VALUES (v_me, v_child, p_amount, p_reference);
      SET v_transfer = LAST_INSERT_ID();
      INSERT INTO payments (client_id, amount, kind, reference, note)
        VALUES (v_me, -p_amount, 'correction',
                CONCAT('transfer ', v_transfer, ' to ', CONVERT(p_code USING utf8mb4)), 'transfer to a client');
      SET v_from_payment = LAST_INSERT_ID();
      INSERT INTO payments (client_id, amount, kind, reference, note)
        VALUES (v_child, p_amount, 'topup', CONCAT('transfer ', v_transfer), LEFT(p_reference, 255));
      SET v_to_payment = LAST_INSERT_ID();
      UPDATE transfers SET from_payment_id = v_from_payment, to_payment_id = v_to_payment
       WHERE id = v_transfer;
      SET @ict_transfer_from = NULL;
      COMMIT;
      SET v_done = 1;
    END;
  END WHILE;
  SELECT v_transfer AS transfer, CONVERT(p_code USING utf8mb4) AS client, p_amount + 0.0000 AS amount,
         (SELECT balance FROM client_accounts WHERE client_id = v_me) AS your_balance,
         (SELECT balance FROM client_accounts WHERE client_id = v_child) AS client_balance;
END//

CREATE PROCEDURE reseller_create_plan(IN p_name VARCHAR(64), IN p_description VARCHAR(255))
  COMMENT 'create_my_plan(name, description): a rate plan the calling reseller sells to its clients'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE EXIT HANDLER FOR 1062
  BEGIN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'that plan name is taken (plan names are unique across the whole service): choose another';
  END;
  CALL reseller_begin('INSERT', v_me);
  IF p_name IS NULL OR TRIM(p_name) = '' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'give the plan a name';
  END IF;
  INSERT INTO rate_plans (name, description, owner_client_id) VALUES (p_name, p_description, v_me);
  SELECT name, description FROM rate_plans WHERE id = LAST_INSERT_ID();
END//

CREATE PROCEDURE reseller_delete_plan(IN p_name VARCHAR(64))
  COMMENT 'delete_my_plan(name): removes one of the calling reseller''s plans that no client uses'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_plan INT UNSIGNED;
  CALL reseller_begin('DELETE', v_me);
  SET v_plan = reseller_plan(v_me, p_name);
  IF v_plan IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'you have no plan with that name: SELECT name FROM my_plans';
  END IF;
  IF EXISTS (SELECT 1 FROM clients WHERE rate_plan_id = v_plan) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a client of yours still uses this plan: give it another first (CALL update_my_client)';
  END IF;
  DELETE FROM rate_plans WHERE id = v_plan;
END//

-- One rate of one of the reseller's plans, added or changed (a prefix once per plan).
CREATE PROCEDURE reseller_set_rate(IN p_plan VARCHAR(64), IN p_prefix VARCHAR(64),
                                   IN p_description VARCHAR(255), IN p_rate DECIMAL(65,30),
                                   IN p_fee DECIMAL(65,30), IN p_initial INT, IN p_subsequent INT)
  COMMENT 'set_my_rate(plan, prefix, description, rate per min, connection fee, initial s, subsequent s)'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_plan INT UNSIGNED;
  DECLARE v_refusal VARCHAR(255);
  CALL reseller_begin('INSERT', v_me);
  SET v_plan = reseller_plan(v_me, p_plan);
  IF v_plan IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'you have no plan with that name: SELECT name FROM my_plans';
  END IF;
  SET v_refusal = COALESCE(reseller_money_refusal(p_rate, 'the rate per minute', 6, 1),
                           reseller_money_refusal(COALESCE(p_fee, 0), 'the connection fee', 6, 1));
  IF v_refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_refusal;
  END IF;
  IF p_prefix IS NULL OR NOT tenant_name_ok(p_prefix, '^[0-9]{1,32}$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a prefix is 1-32 digits, e.g. 4420';
  END IF;
  INSERT INTO rates (rate_plan_id, prefix, description, rate_per_min, connection_fee,
                     initial_increment, subsequent_increment)
    VALUES (v_plan, p_prefix, p_description, p_rate, COALESCE(p_fee, 0),
            COALESCE(p_initial, 60), COALESCE(p_subsequent, 60))
    ON DUPLICATE KEY UPDATE description = VALUES(description), rate_per_min = VALUES(rate_per_min),
      connection_fee = VALUES(connection_fee), initial_increment = VALUES(initial_increment),
      subsequent_increment = VALUES(subsequent_increment);
END//

CREATE PROCEDURE reseller_delete_rate(IN p_plan VARCHAR(64), IN p_prefix VARCHAR(64))
  COMMENT 'delete_my_rate(plan, prefix): removes one rate of one of the calling reseller''s plans'
BEGIN
  DECLARE v_me INT UNSIGNED;
  DECLARE v_plan INT UNSIGNED;
  CALL reseller_begin('DELETE', v_me);
  SET v_plan = reseller_plan(v_me, p_plan);
  IF v_plan IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'you have no plan with that name: SELECT name FROM my_plans';
  END IF;
  DELETE FROM rates WHERE rate_plan_id = v_plan AND prefix = CONVERT(p_prefix USING ascii) COLLATE ascii_bin;
  IF ROW_COUNT() = 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'that plan has no rate with that prefix: SELECT * FROM my_rates';
  END IF;
END//

DELIMITER ;

-- Procedures of the tenant database: build_tenant_world (160) creates each as a wrapper
-- `CALL <this database>.<target>(<its arguments>)` and grants EXECUTE to the role. The
-- targets work out the caller from tenant_session: a login passes codes, never ids.
CREATE TABLE tenant_procedures (
  name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Procedure name in the tenant database, [a-z_]',
  target VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Procedure of this database it calls with the same arguments',
  parameters VARCHAR(1000) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'IN p_name TYPE, ... (types VARCHAR(n), DECIMAL(m,d), INT, TINYINT only)',
  role ENUM('admin','supervisor','agent') NOT NULL DEFAULT 'admin' COMMENT 'Tenant role granted EXECUTE (and the roles above it)',
  description VARCHAR(255) NOT NULL COMMENT 'What it does (the procedure''s COMMENT)',
  PRIMARY KEY (name),
  CONSTRAINT ck_tenant_procedures_name CHECK (name REGEXP '^[a-z][a-z_]{0,63}$'),
  CONSTRAINT ck_tenant_procedures_target CHECK (target REGEXP '^[a-z][a-z_]{0,63}$'),
  CONSTRAINT ck_tenant_procedures_parameters CHECK (parameters REGEXP
    '^(IN p_[a-z_]+ (VARCHAR\\([0-9]{1,3}\\)|DECIMAL\\([0-9]{1,2},[0-9]{1,2}\\)|INT|TINYINT)(, IN p_[a-z_]+ (VARCHAR\\([0-9]{1,3}\\)|DECIMAL\\([0-9]{1,2},[0-9]{1,2}\\)|INT|TINYINT))*)?$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Procedures of the tenant database (operator-only): wrappers of reseller_* procedures granted to a tenant role';

INSERT INTO tenant_procedures (name, target, parameters, description) VALUES
('create_my_client', 'reseller_create_client',
 'IN p_code VARCHAR(64), IN p_name VARCHAR(255), IN p_plan VARCHAR(64), IN p_channels INT',
 'create_my_client(code, name, plan, channels): a client of your own, on one of your plans'),
('update_my_client', 'reseller_update_client',
 'IN p_code VARCHAR(64), IN p_plan VARCHAR(64), IN p_channels INT, IN p_credit_limit DECIMAL(65,30), IN p_resells TINYINT',
 'update_my_client(code, plan, channels, credit limit, resells): NULL keeps a value'),
('suspend_my_client', 'reseller_suspend_client', 'IN p_code VARCHAR(64)',
 'suspend_my_client(code): one of your clients (and what is under it) stops calling'),
('activate_my_client', 'reseller_activate_client', 'IN p_code VARCHAR(64)',
 'activate_my_client(code): one of your suspended clients works again'),
('transfer_to_client', 'reseller_transfer',
 'IN p_code VARCHAR(64), IN p_amount DECIMAL(65,30), IN p_reference VARCHAR(255)',
 'transfer_to_client(code, amount, reference): money from your balance to one of your clients'''),
('create_my_plan', 'reseller_create_plan', 'IN p_name VARCHAR(64), IN p_description VARCHAR(255)',
 'create_my_plan(name, description): a rate plan you sell to your clients'),
('delete_my_plan', 'reseller_delete_plan', 'IN p_name VARCHAR(64)',
 'delete_my_plan(name): removes one of your plans that no client uses'),
('set_my_rate', 'reseller_set_rate',
 'IN p_plan VARCHAR(64), IN p_prefix VARCHAR(64), IN p_description VARCHAR(255), IN p_rate_per_min DECIMAL(65,30), IN p_connection_fee DECIMAL(65,30), IN p_initial_increment INT, IN p_subsequent_increment INT',
 'set_my_rate(plan, prefix, description, rate per minute, connection fee, initial s, subsequent s): adds or changes a rate of one of your plans'),
('delete_my_rate', 'reseller_delete_rate', 'IN p_plan VARCHAR(64), IN p_prefix VARCHAR(64)',
 'delete_my_rate(plan, prefix): removes a rate of one of your plans');

DELIMITER //

CREATE PROCEDURE reseller_suspend_client(IN p_code VARCHAR(64))
  COMMENT 'suspend_my_client(code): suspends one of the calling reseller''s own clients'
BEGIN
  CALL reseller_set_client_status(p_code, 'suspended');
END//

CREATE PROCEDURE reseller_activate_client(IN p_code VARCHAR(64))
  COMMENT 'activate_my_client(code): reactivates one of the calling reseller''s own clients'
BEGIN
  CALL reseller_set_client_status(p_code, 'active');
END//

DELIMITER ;

-- What a reseller's logins read (every role, like the other read-only views). Each is
-- filtered on client_tree below the session's client: its subtree, never a sibling's,
-- never a level above it.
INSERT INTO tenant_views (name, writable, description, definition) VALUES
('my_clients', 0, 'Your clients and theirs (depth 1: your own): balance, plan, channels, status',
 'SELECT l.code, p.code AS parent_code, t.depth, l.name, l.status, l.plan, l.balance,
         c.credit_limit, l.available_credit, l.channels, l.live_calls, c.resells, c.created_at
  FROM client_tree t JOIN client_list l ON l.id = t.client_id
  JOIN clients c ON c.id = t.client_id JOIN clients p ON p.id = c.parent_id
  WHERE t.ancestor_id = (SELECT client_id FROM tenant_session) AND t.depth >= 1'),
('my_plans', 0, 'The rate plans you sell to your clients',
 'SELECT p.name, p.description,
         (SELECT COUNT(*) FROM clients c WHERE c.rate_plan_id = p.id) AS clients,
         (SELECT COUNT(*) FROM rates r WHERE r.rate_plan_id = p.id) AS rates,
         p.created_at, p.updated_at
  FROM rate_plans p WHERE p.owner_client_id = (SELECT client_id FROM tenant_session)'),
('my_rates', 0, 'The rates of the plans you sell (what your clients pay you)',
 'SELECT p.name AS plan, r.prefix, r.description, r.rate_per_min, r.connection_fee,
         r.initial_increment, r.subsequent_increment, r.updated_at
  FROM rates r JOIN rate_plans p ON p.id = r.rate_plan_id
  WHERE p.owner_client_id = (SELECT client_id FROM tenant_session)'),
('transfers', 0, 'Money you moved to your clients (out) and received from your provider (in)',
 'SELECT t.id, IF(t.from_client_id = s.client_id, ''out'', ''in'') AS direction,
         IF(t.from_client_id = s.client_id, c.code, NULL) AS client,
         t.amount, t.reference, t.created_at
  FROM (SELECT client_id FROM tenant_session) s
  JOIN transfers t ON s.client_id IN (t.from_client_id, t.to_client_id)
  JOIN clients c ON c.id = t.to_client_id');

INSERT INTO tenant_views (name, writable, description, definition) VALUES
('my_client_calls', 0, 'The calls of your clients and theirs, at what each client paid',
 'SELECT k.id, c.code AS client, t.depth, k.direction, k.number, k.state, k.reason, k.emergency,
         k.prefix, k.rate_per_min, k.authorized_at, k.settled_at, k.answered_seconds,
         k.dial_status, k.billable_seconds, k.cost
  FROM client_tree t JOIN calls k ON k.client_id = t.client_id JOIN clients c ON c.id = t.client_id
  WHERE t.ancestor_id = (SELECT client_id FROM tenant_session) AND t.depth >= 1'),
('my_margins', 0, 'Each call of your clients at your level: what you sold it for, what it cost you, your margin',
 'SELECT x.call_id, c.code AS client, x.depth, x.live, x.prefix, x.rate_per_min, x.reserved,
         x.billable_seconds, x.sell, x.cost, x.margin, x.authorized_at, x.settled_at
  FROM call_charges x JOIN calls k ON k.id = x.call_id JOIN clients c ON c.id = k.client_id
  WHERE x.client_id = (SELECT client_id FROM tenant_session)'),
('my_margins_daily', 0, 'Your margin per day (UTC) on your clients'' settled calls',
 'SELECT DATE(x.settled_at) AS day, COUNT(*) AS calls, SUM(x.sell) AS sell, SUM(x.cost) AS cost,
         SUM(x.margin) AS margin
  FROM call_charges x
  WHERE x.client_id = (SELECT client_id FROM tenant_session) AND x.settled_at IS NOT NULL
  GROUP BY DATE(x.settled_at)');

INSERT INTO tenant_privileges (view_name, role, privilege, columns) VALUES
('my_client_calls', 'agent', 'SELECT', NULL),
('my_margins', 'agent', 'SELECT', NULL),
('my_margins_daily', 'agent', 'SELECT', NULL),
('my_clients', 'agent', 'SELECT', NULL),
('my_plans', 'agent', 'SELECT', NULL),
('my_rates', 'agent', 'SELECT', NULL),
('transfers', 'agent', 'SELECT', NULL);

CALL refresh_tenant_world();
