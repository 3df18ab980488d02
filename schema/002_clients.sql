-- Clients (tenants). The balance is kept by the ledger (003_payments, 005_calls):
-- a direct UPDATE of clients.balance is refused.

CREATE TABLE clients (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Client id',
  code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Short slug [a-z0-9_-]: names the dialplan context client-<code> and SIP usernames; cannot change',
  name VARCHAR(128) NOT NULL COMMENT 'Unique display name of the client',
  email VARCHAR(254) NULL COMMENT 'Billing/contact e-mail',
  contact_name VARCHAR(128) NULL COMMENT 'Contact person',
  phone VARCHAR(32) NULL COMMENT 'Contact phone number',
  balance DECIMAL(14,4) NOT NULL DEFAULT 0
    COMMENT 'USD credit. Set once at INSERT (recorded as the opening payment); afterwards moved only by payments and call charges',
  credit_limit DECIMAL(14,4) NOT NULL DEFAULT 0
    COMMENT 'USD a postpaid client may spend below zero (balance floor = -credit_limit); 0 = prepaid',
  rate_plan_id INT UNSIGNED NOT NULL COMMENT 'Rate plan; left empty at INSERT it becomes the default plan',
  channel_limit INT NOT NULL DEFAULT 10 COMMENT 'Most simultaneous calls (0 blocks all calls but emergency)',
  status ENUM('active','suspended') NOT NULL DEFAULT 'active'
    COMMENT 'suspended: calls rejected, campaigns paused, agents locked out, nothing deleted',
  suspended_at DATETIME NULL COMMENT 'When the client was last suspended (UTC); set automatically',
  notes TEXT NULL COMMENT 'Free text for admins',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the client was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_clients_code (code),
  UNIQUE KEY uq_clients_name (name),
  KEY ix_clients_rate_plan (rate_plan_id),
  CONSTRAINT fk_clients_rate_plan FOREIGN KEY (rate_plan_id) REFERENCES rate_plans (id),
  CONSTRAINT ck_clients_code_slug CHECK (code REGEXP '^[a-z0-9_-]{1,32}$'),
  CONSTRAINT ck_clients_name_not_blank CHECK (TRIM(name) <> ''),
  CONSTRAINT ck_clients_channel_limit CHECK (channel_limit >= 0),
  CONSTRAINT ck_clients_credit_limit CHECK (credit_limit >= 0),
  -- The ENUM alone refuses an unknown status only in strict sessions; without strict mode
  -- it would store '' (neither active nor suspended).
  CONSTRAINT ck_clients_status CHECK (status IN ('active', 'suspended'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Clients (tenants): credit, rate plan, channel limit and status of each account';

DELIMITER //

CREATE TRIGGER clients_before_insert BEFORE INSERT ON clients FOR EACH ROW
BEGIN
  -- A client created without a plan gets the default plan.
  IF NEW.rate_plan_id IS NULL THEN
    SET NEW.rate_plan_id = (SELECT id FROM rate_plans WHERE is_default = 1);
    IF NEW.rate_plan_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no default rate plan: set rate_plans.is_default = 1 on one plan or give rate_plan_id';
    END IF;
  END IF;
  IF NEW.status = 'suspended' THEN
    SET NEW.suspended_at = UTC_TIMESTAMP();
  END IF;
END//

CREATE TRIGGER clients_before_update BEFORE UPDATE ON clients FOR EACH ROW
BEGIN
  IF NOT (NEW.code <=> OLD.code) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.code cannot change: it names the client dialplan context and SIP usernames';
  END IF;
  -- The ledger triggers hand over a one-shot token naming the client whose balance they move.
  IF NOT (NEW.balance <=> OLD.balance) THEN
    IF @ict_ledger_client <=> OLD.id THEN
      SET @ict_ledger_client = NULL;
    ELSE
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.balance is kept by the ledger: INSERT INTO payments (client_id, amount, reference) instead';
    END IF;
  END IF;
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    SET NEW.suspended_at = UTC_TIMESTAMP();
  END IF;
END//

-- The one way the ledger triggers (payments, calls) move a balance: hand the update a
-- one-shot token for this client. User variables survive a failed statement, so the
-- token is dropped on any error too (deadlock, out-of-range balance): a later
-- hand-written UPDATE of the balance is still refused.
CREATE PROCEDURE ledger_move_balance(IN p_client_id INT UNSIGNED, IN p_delta DECIMAL(14,4))
  COMMENT 'Internal, for the ledger triggers only: moves clients.balance by p_delta'
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_ledger_client = NULL;
    RESIGNAL;
  END;
  SET @ict_ledger_client = p_client_id;
  UPDATE clients SET balance = balance + p_delta WHERE id = p_client_id;
  SET @ict_ledger_client = NULL;
END//

DELIMITER ;
