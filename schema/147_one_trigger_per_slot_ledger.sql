-- One trigger per slot (table x BEFORE/AFTER x INSERT/UPDATE/DELETE) on the ledger's
-- tables: clients, client_accounts, payments, calls. Until here some slots held two or
-- three triggers stacked across files with FOLLOWS / PRECEDES (002/090, 003/090, 004/042/
-- 052, 005/061/090), so what one INSERT or UPDATE does could only be read by collecting
-- them. Each slot now has one trigger named <table>_<timing>_<event>, whose body reads
-- top to bottom in firing order; a concern that is not on the hot path of authorize and
-- settle is a named procedure (a routine call costs ~20 us a row, so what every admission
-- and settle runs stays inline).
--
-- This file runs after 093 (which moved the balance to client_accounts) and after 100-103
-- and 140 on every database, and drops every trigger those files left on these tables by
-- name, so the end state is the same whatever order the earlier files ran in.
-- The slots and what they hold (docs/admin-sql.md, "The ledger rules"):
--   clients         BEFORE INSERT  exact money, channel bound, default plan, suspended_at
--                   AFTER INSERT   the account, the opening payment
--                   BEFORE UPDATE  code fixed, exact money, channel bound, opening_balance fixed,
--                                  emptied plan = default, suspended_at
--                   AFTER UPDATE   alerts (135), suspension / reactivation, end_calls_without_credit switched on
--   client_accounts BEFORE INSERT / UPDATE / DELETE  only the system writes it
--                   AFTER UPDATE   the balance moved: no-credit change log, low-balance alert (135)
--   payments        BEFORE INSERT  exact amount, sign fits kind, created_by
--                   AFTER INSERT   the balance moves, the floor holds
--                   BEFORE UPDATE / DELETE  refused: the ledger is insert-only
--   calls           AFTER INSERT   a charge moves the balance; the dialer's attempt learns its call
--                   BEFORE UPDATE  exact cost; a call stays with its client
--                   AFTER UPDATE   a cost change moves the balance; the attempt learns its outcome
--                   BEFORE DELETE  a charged or live call stays

DROP TRIGGER IF EXISTS clients_before_insert_input;
DROP TRIGGER IF EXISTS clients_before_insert;
DROP TRIGGER IF EXISTS clients_after_insert;
DROP TRIGGER IF EXISTS clients_before_update_input;
DROP TRIGGER IF EXISTS clients_before_update;
DROP TRIGGER IF EXISTS clients_after_update;
DROP TRIGGER IF EXISTS clients_after_update_agent_sessions;
DROP TRIGGER IF EXISTS clients_after_update_changes;
DROP TRIGGER IF EXISTS client_accounts_before_insert;
DROP TRIGGER IF EXISTS client_accounts_before_update;
DROP TRIGGER IF EXISTS client_accounts_after_update;
DROP TRIGGER IF EXISTS client_accounts_before_delete;
DROP TRIGGER IF EXISTS payments_before_insert_exact;
DROP TRIGGER IF EXISTS payments_before_insert;
DROP TRIGGER IF EXISTS payments_after_insert;
DROP TRIGGER IF EXISTS payments_after_insert_floor;
DROP TRIGGER IF EXISTS payments_before_update;
DROP TRIGGER IF EXISTS payments_before_delete;
DROP TRIGGER IF EXISTS calls_after_insert;
DROP TRIGGER IF EXISTS calls_after_insert_attempt;
DROP TRIGGER IF EXISTS calls_before_update_exact;
DROP TRIGGER IF EXISTS calls_before_update;
DROP TRIGGER IF EXISTS calls_after_update;
DROP TRIGGER IF EXISTS calls_after_update_attempt;
DROP TRIGGER IF EXISTS calls_before_delete;

DELIMITER //

-- The concerns of a client's status change, as named procedures -------------------------

CREATE OR REPLACE PROCEDURE client_status_campaigns(IN p_client_id INT UNSIGNED, IN p_suspended TINYINT)
  COMMENT 'Internal, for the clients UPDATE trigger: a suspension pauses the running campaigns (paused_by_suspension = 1); reactivation runs exactly those again'
BEGIN
  IF p_suspended THEN
    -- By the client's key (098's index, forced): in a DBA tool's REPEATABLE READ session
    -- another plan would lock other clients' campaigns.
    UPDATE campaigns FORCE INDEX (ix_campaigns_client_status)
       SET status = 'paused', paused_by_suspension = 1
     WHERE client_id = p_client_id AND status = 'running';
  ELSE
    UPDATE campaigns FORCE INDEX (ix_campaigns_client_status)
       SET status = 'running', paused_by_suspension = 0
     WHERE client_id = p_client_id AND paused_by_suspension = 1;
  END IF;
END//

CREATE OR REPLACE PROCEDURE client_suspended(IN p_client_id INT UNSIGNED)
  COMMENT 'Internal, for the clients UPDATE trigger: what a suspension does at once (campaigns paused, agent sessions ended, live calls ended over AMI through client_changes)'
BEGIN
  CALL client_status_campaigns(p_client_id, 1);
  CALL end_agent_sessions(p_client_id, NULL, NULL, 'suspended');
  INSERT INTO client_changes (client_id, kind, created_at)
    VALUES (p_client_id, 'suspended', UTC_TIMESTAMP(3));
END//

-- clients -----------------------------------------------------------------------------

CREATE TRIGGER clients_before_insert BEFORE INSERT ON clients FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('opening_balance'), 1, 'clients.opening_balance', 4),
    inexact_money_refusal(input_changed_by_server('credit_limit'), 1, 'clients.credit_limit', 4),
    inexact_money_refusal(input_changed_by_server('low_balance_threshold'),
                          NEW.low_balance_threshold IS NOT NULL, 'clients.low_balance_threshold', 4));
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

-- The client's account and its opening payment, in the INSERT's transaction (093).
CREATE TRIGGER clients_after_insert AFTER INSERT ON clients FOR EACH ROW
BEGIN
  CALL open_client_account(NEW.id, NEW.opening_balance);
END//

-- A form saved whole (Adminer) writes back every column as loaded: each rule below acts
-- only on a column that changed, so such a save does exactly what the admin changed.
CREATE TRIGGER clients_before_update BEFORE UPDATE ON clients FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  IF NOT (NEW.code <=> OLD.code) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.code cannot change: it names the client dialplan context and SIP usernames';
  END IF;
  -- A rounding note refuses credit_limit or low_balance_threshold (135) only when it
  -- changed; read only when the statement has conditions at all.
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('credit_limit'),
        NOT (NEW.credit_limit <=> OLD.credit_limit), 'clients.credit_limit', 4),
      inexact_money_refusal(input_changed_by_server('low_balance_threshold'),
        NOT (NEW.low_balance_threshold <=> OLD.low_balance_threshold), 'clients.low_balance_threshold', 4));
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

CREATE TRIGGER clients_after_update AFTER UPDATE ON clients FOR EACH ROW
BEGIN
  -- Alerts (135): suspension, reactivation, a threshold raised above the balance.
  IF NOT (NEW.status <=> OLD.status)
     OR NOT (NEW.low_balance_threshold <=> OLD.low_balance_threshold) THEN
    CALL note_client_change(NEW.id, OLD.status, NEW.status,
                            OLD.low_balance_threshold, NEW.low_balance_threshold);
  END IF;
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    CALL client_suspended(NEW.id);
  ELSE
    IF NEW.status = 'active' AND OLD.status = 'suspended' THEN
      CALL client_status_campaigns(NEW.id, 0);
    END IF;
    IF NEW.end_calls_without_credit = 1 AND OLD.end_calls_without_credit = 0 THEN
      CALL log_client_without_credit(NEW.id, NEW.credit_limit);
    END IF;
  END IF;
END//

-- client_accounts ---------------------------------------------------------------------

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

-- Where every balance move ends (payments, call charges, re-rated calls): the place for
-- anything that must happen when a balance moves.
CREATE TRIGGER client_accounts_after_update AFTER UPDATE ON client_accounts FOR EACH ROW
BEGIN
  DECLARE v_credit_limit DECIMAL(14,4);
  DECLARE v_threshold DECIMAL(14,4);
  -- The clients row is read once, without a lock in the server's READ COMMITTED sessions.
  IF NEW.balance < OLD.balance THEN
    -- SET v = (SELECT ...), never SELECT ... INTO after a write (schema 099: on Galera a
    -- causal read while holding the account row).
    SET v_credit_limit = (SELECT IF(end_calls_without_credit = 1, credit_limit, NULL)
                            FROM clients WHERE id = NEW.client_id);
    SET v_threshold = (SELECT low_balance_threshold FROM clients WHERE id = NEW.client_id);
    -- Fell below what the live calls hold: the change log, for clients with
    -- end_calls_without_credit = 1.
    IF v_credit_limit IS NOT NULL AND NEW.balance + v_credit_limit
       < (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = NEW.client_id AND state = 'live') THEN
      INSERT INTO client_changes (client_id, kind, created_at)
        VALUES (NEW.client_id, 'no-credit', UTC_TIMESTAMP(3));
    END IF;
    -- Fell below the low-balance threshold (135): an alert in the outbox, once per crossing.
    IF v_threshold IS NOT NULL AND OLD.balance >= v_threshold AND NEW.balance < v_threshold THEN
      CALL note_balance_move(NEW.client_id, OLD.balance, NEW.balance);
    END IF;
  END IF;
END//

-- Deleting the client deletes its account (ON DELETE CASCADE, which fires no trigger).
CREATE TRIGGER client_accounts_before_delete BEFORE DELETE ON client_accounts FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_accounts rows go with their client: DELETE FROM clients instead (refused while it has payments or calls)';
END//

-- payments ----------------------------------------------------------------------------

CREATE TRIGGER payments_before_insert BEFORE INSERT ON payments FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT inexact_money_refusal(input_changed_by_server('amount'), 1, 'payments.amount', 4);
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
  IF NEW.kind = 'topup' AND NEW.amount < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a topup is money received and must be positive: insert a negative amount as kind = ''correction''';
  END IF;
  IF NEW.kind = 'opening' AND NOT (@ict_opening_client <=> NEW.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kind opening is written only by INSERT INTO clients with an opening_balance: use kind topup or correction';
  END IF;
  SET NEW.created_by = USER();
END//

-- The move holds the account row, so no other transaction moves the balance between the
-- move and the floor check.
CREATE TRIGGER payments_after_insert AFTER INSERT ON payments FOR EACH ROW
BEGIN
  CALL ledger_move_balance(NEW.client_id, NEW.amount);
  -- IF (SELECT ...), never SELECT ... INTO after a write: on Galera with wsrep_sync_wait
  -- the latter is a causal read made while holding the account row (schema 099).
  IF NEW.amount < 0 AND NEW.allow_below_floor = 0
     AND (SELECT a.balance + c.credit_limit FROM client_accounts a JOIN clients c ON c.id = a.client_id
           WHERE a.client_id = NEW.client_id) < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this payment would take the balance below its floor (-credit_limit): correct by less, or set allow_below_floor = 1 to allow it';
  END IF;
END//

CREATE TRIGGER payments_before_update BEFORE UPDATE ON payments FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'payments are never changed: insert a correction row (kind=correction) instead';
END//

CREATE TRIGGER payments_before_delete BEFORE DELETE ON payments FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'payments are never deleted: insert a correction row (kind=correction) instead';
END//

-- calls (every admission inserts one, every settle updates one: inline) ----------------

CREATE TRIGGER calls_after_insert AFTER INSERT ON calls FOR EACH ROW
BEGIN
  -- The call-charge side of the ledger: the balance moves by every change of calls.cost.
  IF COALESCE(NEW.cost, 0) <> 0 THEN
    CALL ledger_move_balance(NEW.client_id, -NEW.cost);
  END IF;
  -- A dialer call (uniqueid ictc-...): its campaign attempt learns the call, or that it
  -- was rejected.
  IF NEW.uniqueid LIKE 'ictc-%' THEN
    IF NEW.state = 'rejected' THEN
      UPDATE campaign_attempts
        SET call_id = NEW.id, outcome = 'rejected', reason = NEW.reason, ended_at = NEW.authorized_at
        WHERE uniqueid = NEW.uniqueid AND outcome IS NULL;
    ELSE
      UPDATE campaign_attempts SET call_id = NEW.id WHERE uniqueid = NEW.uniqueid AND outcome IS NULL;
    END IF;
  END IF;
END//

CREATE TRIGGER calls_before_update BEFORE UPDATE ON calls FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  -- An admin re-rating a call gives an exact cost (settle writes it exact already, and
  -- pays only the read of the condition count).
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 THEN
    SET refusal = inexact_money_refusal(input_changed_by_server('cost'),
      NOT (NEW.cost <=> OLD.cost), 'calls.cost', 4);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a call cannot move to another client';
  END IF;
END//

CREATE TRIGGER calls_after_update AFTER UPDATE ON calls FOR EACH ROW
BEGIN
  IF COALESCE(NEW.cost, 0) <> COALESCE(OLD.cost, 0) THEN
    CALL ledger_move_balance(NEW.client_id, COALESCE(OLD.cost, 0) - COALESCE(NEW.cost, 0));
  END IF;
  -- settle (or the stale sweep) closed a dialer call: that is how its attempt ended.
  IF NEW.uniqueid LIKE 'ictc-%' AND OLD.state = 'live' AND NEW.state <> 'live' THEN
    UPDATE campaign_attempts
      SET outcome = CASE
            WHEN NEW.state = 'stale' THEN 'failed'
            WHEN NEW.dial_status = 'ANSWER' OR COALESCE(NEW.answered_seconds, 0) > 0 THEN 'answered'
            WHEN NEW.dial_status = 'BUSY' THEN 'busy'
            WHEN NEW.dial_status IN ('NOANSWER', 'CANCEL') THEN 'no-answer'
            ELSE 'failed' END,
          reason = IF(NEW.state = 'stale', 'stale: never settled', NEW.dial_status),
          answered_seconds = NEW.answered_seconds,
          cost = NEW.cost,
          ended_at = COALESCE(NEW.settled_at, UTC_TIMESTAMP(3))
      WHERE uniqueid = NEW.uniqueid AND outcome IS NULL;
  END IF;
END//

CREATE TRIGGER calls_before_delete BEFORE DELETE ON calls FOR EACH ROW
BEGIN
  IF COALESCE(OLD.cost, 0) <> 0 OR OLD.state = 'live' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a charged or live call cannot be deleted: it is part of the ledger';
  END IF;
END//

DELIMITER ;
