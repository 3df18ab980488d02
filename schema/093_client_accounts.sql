-- A row that people edit holds only what people set. A client's balance and its admission
-- counter move with every payment, call charge and admission; on `clients` they were
-- columns of the row an admin's form writes back whole (Adminer saves every column it
-- loaded), so a form loaded before a settle could only be refused (090). They now live in
-- `client_accounts`, one row per client, which no admin form needs to write:
-- * `clients` keeps what people set (name, contacts, credit limit, plan, channels, status,
--   notes, the option to end calls without credit) and `opening_balance`, read once at
--   INSERT and recorded as the opening payment, so one INSERT still creates a client with
--   money. Saving a client's form, whole or changed columns only, never touches the ledger.
-- * `client_accounts` is created with its client (the clients AFTER INSERT trigger, same
--   transaction) and written only by the ledger (payments, calls.cost) and by admissions.
--   A hand-written INSERT, UPDATE or DELETE of it is refused in words (the same one-shot
--   token as before: the ledger triggers name the client whose balance they move).
-- Every balance and counter is carried over exactly; the opening payment each client has
-- becomes its opening_balance. The views and procedures that show a balance read it from
-- client_accounts (094).

CREATE TABLE client_accounts (
  client_id INT UNSIGNED NOT NULL COMMENT 'The client (clients.id); the row is created with the client and goes with it',
  balance DECIMAL(14,4) NOT NULL DEFAULT 0
    COMMENT 'USD credit: the client''s payments minus its call charges; moved only by the ledger (INSERT INTO payments, calls.cost)',
  admitted_calls BIGINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'Calls admitted so far (never reset); each admission increments it, so concurrent admissions of one client conflict on every Galera node',
  balance_moved_at DATETIME(3) NULL
    COMMENT 'When the balance last moved (UTC), set by the ledger; NULL: it never moved',
  PRIMARY KEY (client_id),
  CONSTRAINT fk_client_accounts_client FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='What the system keeps per client (balance, admissions): written only by the ledger and the server, never by an admin form';

-- The triggers that read or wrote clients.balance / admitted_calls go first; each is
-- created again below on client_accounts (147 then gives every slot one trigger).
DROP TRIGGER clients_before_insert_input;
DROP TRIGGER clients_before_insert;
DROP TRIGGER clients_before_update_input;
DROP TRIGGER clients_before_update;
DROP TRIGGER clients_after_insert;
DROP TRIGGER clients_after_update_changes;
DROP TRIGGER payments_after_insert_floor;
DROP TRIGGER payments_after_insert;
DROP PROCEDURE ledger_move_balance;

-- Carried over exactly. The balance last moved with the client's latest payment or charge.
INSERT INTO client_accounts (client_id, balance, admitted_calls, balance_moved_at)
SELECT c.id, c.balance, c.admitted_calls,
       NULLIF(GREATEST(COALESCE(p.moved, '1000-01-01'), COALESCE(k.moved, '1000-01-01')),
              '1000-01-01')
  FROM clients c
  LEFT JOIN (SELECT client_id, MAX(created_at) AS moved FROM payments GROUP BY client_id) p
    ON p.client_id = c.id
  LEFT JOIN (SELECT client_id, MAX(settled_at) AS moved FROM calls
              WHERE cost IS NOT NULL AND cost <> 0 GROUP BY client_id) k
    ON k.client_id = c.id;

ALTER TABLE clients
  ADD COLUMN opening_balance DECIMAL(14,4) NOT NULL DEFAULT 0
    COMMENT 'USD given at INSERT only: recorded as the opening payment. Read-only afterwards; the balance is client_accounts.balance (client_list.balance)'
    AFTER phone,
  DROP COLUMN balance,
  DROP COLUMN admitted_calls,
  COMMENT = 'Clients (tenants): what admins set (credit limit, rate plan, channel limit, status); the balance is in client_accounts';

-- The opening payment each client has (kind opening, written by the INSERT) is its
-- opening balance; updated_at stays "last change by an admin".
UPDATE clients c
  JOIN (SELECT client_id, SUM(amount) AS amount FROM payments WHERE kind = 'opening'
         GROUP BY client_id) o ON o.client_id = c.id
   SET c.opening_balance = o.amount, c.updated_at = c.updated_at;

DELIMITER //

-- The one way the ledger triggers (payments, calls) move a balance: hand the update a
-- one-shot token for this client. User variables survive a failed statement, so the
-- token is dropped on any error too (deadlock, out-of-range balance): a later
-- hand-written UPDATE of the balance is still refused.
CREATE PROCEDURE ledger_move_balance(IN p_client_id INT UNSIGNED, IN p_delta DECIMAL(14,4))
  COMMENT 'Internal, for the ledger triggers only: moves client_accounts.balance by p_delta'
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_ledger_client = NULL;
    RESIGNAL;
  END;
  SET @ict_ledger_client = p_client_id;
  UPDATE client_accounts SET balance = balance + p_delta WHERE client_id = p_client_id;
  SET @ict_ledger_client = NULL;
END//

-- clients: what people set, checked; the account created with the client -----------------

CREATE TRIGGER clients_before_insert BEFORE INSERT ON clients FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('opening_balance'), 1, 'clients.opening_balance', 4),
    inexact_money_refusal(input_changed_by_server('credit_limit'), 1, 'clients.credit_limit', 4));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
  IF NEW.channel_limit > 10000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.channel_limit is at most 10000 simultaneous calls: give 0-10000';
  END IF;
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

-- The client's account, and its opening balance as the opening payment (which moves the
-- new account's balance through the ledger like any payment, floor check included).
CREATE TRIGGER clients_after_insert AFTER INSERT ON clients FOR EACH ROW
BEGIN
  CALL open_client_account(NEW.id, NEW.opening_balance);
END//

CREATE PROCEDURE open_client_account(IN p_client_id INT UNSIGNED, IN p_opening DECIMAL(14,4))
  COMMENT 'Internal, for the clients INSERT trigger only: creates the client''s account and records its opening payment'
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_account_client = NULL;
    SET @ict_opening_client = NULL;
    RESIGNAL;
  END;
  SET @ict_account_client = p_client_id;
  INSERT INTO client_accounts (client_id) VALUES (p_client_id);
  SET @ict_account_client = NULL;
  IF p_opening <> 0 THEN
    SET @ict_opening_client = p_client_id;
    INSERT INTO payments (client_id, amount, kind, reference)
      VALUES (p_client_id, p_opening, 'opening', 'opening balance');
    SET @ict_opening_client = NULL;
  END IF;
END//

-- On UPDATE a rounding note refuses credit_limit only when it changed (a full-row save
-- writes back what it read); the function runs only when the statement has conditions.
CREATE TRIGGER clients_before_update BEFORE UPDATE ON clients FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  IF NOT (NEW.code <=> OLD.code) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.code cannot change: it names the client dialplan context and SIP usernames';
  END IF;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 THEN
    SET refusal = inexact_money_refusal(input_changed_by_server('credit_limit'),
      NOT (NEW.credit_limit <=> OLD.credit_limit), 'clients.credit_limit', 4);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  IF NEW.channel_limit > 10000 AND NOT (NEW.channel_limit <=> OLD.channel_limit) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.channel_limit is at most 10000 simultaneous calls: give 0-10000';
  END IF;
  IF NOT (NEW.opening_balance <=> OLD.opening_balance) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.opening_balance is read only when the client is created (it became the opening payment): to move the balance INSERT INTO payments (client_id, amount, reference) instead';
  END IF;
  -- An emptied plan means the default plan, as at INSERT.
  IF NEW.rate_plan_id IS NULL THEN
    SET NEW.rate_plan_id = (SELECT id FROM rate_plans WHERE is_default = 1);
    IF NEW.rate_plan_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no default rate plan: set rate_plans.is_default = 1 on one plan or give rate_plan_id';
    END IF;
  END IF;
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    SET NEW.suspended_at = UTC_TIMESTAMP();
  END IF;
END//

-- The change log (052) for a suspension, and for switching end_calls_without_credit on
-- while the funds are already short; the balance moving short is logged by
-- client_accounts_after_update.
CREATE TRIGGER clients_after_update_changes AFTER UPDATE ON clients FOR EACH ROW
BEGIN
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    INSERT INTO client_changes (client_id, kind, created_at)
      VALUES (NEW.id, 'suspended', UTC_TIMESTAMP(3));
  ELSEIF NEW.end_calls_without_credit = 1 AND OLD.end_calls_without_credit = 0 THEN
    CALL log_client_without_credit(NEW.id, NEW.credit_limit);
  END IF;
END//

CREATE PROCEDURE log_client_without_credit(IN p_client_id INT UNSIGNED, IN p_credit_limit DECIMAL(14,4))
  COMMENT 'Internal: writes a no-credit row to client_changes when the balance plus p_credit_limit is below the credit the client''s live calls hold'
BEGIN
  IF (SELECT balance FROM client_accounts WHERE client_id = p_client_id) + p_credit_limit
     < (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = p_client_id AND state = 'live') THEN
    INSERT INTO client_changes (client_id, kind, created_at)
      VALUES (p_client_id, 'no-credit', UTC_TIMESTAMP(3));
  END IF;
END//

-- client_accounts: written only by the ledger and by admissions ---------------------------

CREATE TRIGGER client_accounts_before_insert BEFORE INSERT ON client_accounts FOR EACH ROW
BEGIN
  IF NOT (@ict_account_client <=> NEW.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts rows are kept by the system: each is created with its client (INSERT INTO clients); to move a balance INSERT INTO payments (client_id, amount, reference)';
  END IF;
  SET @ict_account_client = NULL;
  SET NEW.balance = 0, NEW.admitted_calls = 0, NEW.balance_moved_at = NULL;
END//

-- Every ledger move and every admission updates this row: cheap tests only.
CREATE TRIGGER client_accounts_before_update BEFORE UPDATE ON client_accounts FOR EACH ROW
BEGIN
  IF NOT (NEW.balance <=> OLD.balance) THEN
    IF @ict_ledger_client <=> OLD.client_id THEN
      SET @ict_ledger_client = NULL;
      SET NEW.balance_moved_at = UTC_TIMESTAMP(3);
    ELSE
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts.balance is kept by the ledger: INSERT INTO payments (client_id, amount, reference) instead';
    END IF;
  ELSEIF NOT (NEW.balance_moved_at <=> OLD.balance_moved_at) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts.balance_moved_at is kept by the ledger: leave it (it moves with the balance)';
  END IF;
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts.client_id cannot change: an account belongs to its client';
  END IF;
  IF NOT (NEW.admitted_calls <=> OLD.admitted_calls) AND NOT (NEW.admitted_calls <=> OLD.admitted_calls + 1) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts.admitted_calls is counted by the server, one admission at a time: leave it';
  END IF;
END//

-- A balance that fell below what the live calls hold: the change log, for clients with
-- end_calls_without_credit = 1 (read without a lock on the clients row in the server's
-- READ COMMITTED sessions).
CREATE TRIGGER client_accounts_after_update AFTER UPDATE ON client_accounts FOR EACH ROW
BEGIN
  DECLARE v_credit_limit DECIMAL(14,4);
  IF NEW.balance < OLD.balance THEN
    SELECT credit_limit INTO v_credit_limit FROM clients
     WHERE id = NEW.client_id AND end_calls_without_credit = 1;
    IF v_credit_limit IS NOT NULL AND NEW.balance + v_credit_limit
       < (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = NEW.client_id AND state = 'live') THEN
      INSERT INTO client_changes (client_id, kind, created_at)
        VALUES (NEW.client_id, 'no-credit', UTC_TIMESTAMP(3));
    END IF;
  END IF;
END//

-- Deleting the client deletes its account (ON DELETE CASCADE, which fires no trigger).
CREATE TRIGGER client_accounts_before_delete BEFORE DELETE ON client_accounts FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts rows go with their client: DELETE FROM clients instead (refused while it has payments or calls)';
END//

-- payments: the balance moves, then the floor is checked -----------------------------------

-- The move holds the account row, so no other transaction moves the balance between the
-- move and the floor check.
CREATE TRIGGER payments_after_insert AFTER INSERT ON payments FOR EACH ROW
BEGIN
  DECLARE new_balance DECIMAL(14,4);
  DECLARE floor_limit DECIMAL(14,4);
  CALL ledger_move_balance(NEW.client_id, NEW.amount);
  IF NEW.amount < 0 AND NEW.allow_below_floor = 0 THEN
    SELECT a.balance, -c.credit_limit INTO new_balance, floor_limit
      FROM client_accounts a JOIN clients c ON c.id = a.client_id
     WHERE a.client_id = NEW.client_id;
    IF new_balance < floor_limit THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this payment would take the balance below its floor (-credit_limit): correct by less, or set allow_below_floor = 1 to allow it';
    END IF;
  END IF;
END//

DELIMITER ;
