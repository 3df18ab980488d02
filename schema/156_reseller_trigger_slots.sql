-- Resellers (issue 23, tables in 120): the rules on the trigger slots landed files define.
-- Re-created here, after 147 and 150 on every database, with their old bodies kept and a
-- labelled "Resellers (120)" block added:
--   clients BEFORE INSERT  a client given no parent is master's; depth; plan sold by the parent
--   clients AFTER INSERT   its rows of client_tree
--   clients BEFORE UPDATE  parent_id only through move_client (@ict_move_client), no cycle,
--                          depth; plan sold by the parent
--   clients AFTER UPDATE   a moved subtree's client_tree rows
--   calls   AFTER UPDATE   a call that ends releases its reseller charges (call_charges.live)
-- 120's data migration runs again for clients inserted between 120 and here.

DROP TRIGGER IF EXISTS clients_before_insert;
DROP TRIGGER IF EXISTS clients_after_insert;
DROP TRIGGER IF EXISTS clients_before_update;
DROP TRIGGER IF EXISTS clients_after_update;
DROP TRIGGER IF EXISTS calls_after_update;

-- 120's data migration again, while the slots are empty (the parent rule below would
-- refuse it): existing clients are master's children, each with its tree rows.
UPDATE clients c JOIN clients m ON m.code = 'master'
  SET c.parent_id = m.id, c.updated_at = c.updated_at
  WHERE c.parent_id IS NULL AND c.id <> m.id;
SET @ict_tree_write = 1;
INSERT IGNORE INTO client_tree (ancestor_id, client_id, depth) SELECT id, id, 0 FROM clients;
INSERT IGNORE INTO client_tree (ancestor_id, client_id, depth)
  SELECT parent_id, id, 1 FROM clients WHERE parent_id IS NOT NULL;
SET @ict_tree_write = NULL;

DELIMITER //

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
  -- Resellers (120): a client given no parent is master's; not deeper than 6 levels below
  -- master; on a plan its parent sells.
  IF NEW.parent_id IS NULL AND NEW.code <> 'master' THEN
    SET NEW.parent_id = (SELECT id FROM clients WHERE code = 'master');
  END IF;
  IF NEW.parent_id IS NOT NULL
     AND (SELECT MAX(depth) FROM client_tree WHERE client_id = NEW.parent_id) >= 6 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.parent_id: a client is at most 6 levels below master; give a parent higher up';
  END IF;
  SET refusal = plan_owner_refusal(NEW.rate_plan_id, NEW.parent_id);
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER clients_after_insert AFTER INSERT ON clients FOR EACH ROW
BEGIN
  CALL open_client_account(NEW.id, NEW.opening_balance);
  -- Resellers (120): its rows of client_tree.
  CALL client_tree_add(NEW.id, NEW.parent_id);
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
  -- Resellers (120): a client moves only through move_client (which checks its live calls
  -- and sets @ict_move_client to the client's id for its UPDATE), never into its own
  -- subtree, never deeper than 6 levels below master; its plan is sold by its parent.
  IF NOT (NEW.parent_id <=> OLD.parent_id) THEN
    IF NOT (@ict_move_client <=> OLD.id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.parent_id changes only through CALL move_client(client code, new parent code): it moves the client''s whole subtree and its plan with it';
    ELSEIF NEW.parent_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.parent_id: only master has no parent; give the reseller the client belongs to';
    ELSEIF EXISTS (SELECT 1 FROM client_tree WHERE ancestor_id = OLD.id AND client_id = NEW.parent_id) THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.parent_id: a client cannot move under itself or one of its own clients (a cycle); give a parent outside its subtree';
    ELSEIF (SELECT MAX(depth) FROM client_tree WHERE client_id = NEW.parent_id) + 1
           + (SELECT MAX(depth) FROM client_tree WHERE ancestor_id = OLD.id) > 6 THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.parent_id: the client''s subtree would reach more than 6 levels below master; give a parent higher up';
    END IF;
  END IF;
  IF NOT (NEW.parent_id <=> OLD.parent_id AND NEW.rate_plan_id <=> OLD.rate_plan_id) THEN
    SET refusal = plan_owner_refusal(NEW.rate_plan_id, NEW.parent_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
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
  -- Reactivation writes nothing: the dialer dials the running campaigns again by itself.
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    CALL client_suspended(NEW.id);
  ELSEIF NEW.end_calls_without_credit = 1 AND OLD.end_calls_without_credit = 0 THEN
    CALL log_client_without_credit(NEW.id, NEW.credit_limit);
  END IF;
  -- Resellers (120): a moved client's subtree hangs under its new parent.
  IF NOT (NEW.parent_id <=> OLD.parent_id) THEN
    CALL client_tree_move(NEW.id, NEW.parent_id);
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
  -- Resellers (120): settle or the stale sweep ended the call, so its channel and credit
  -- are released at every reseller level too (only calls of a reseller's client have any).
  IF NEW.reseller_levels > 0 AND OLD.state = 'live' AND NEW.state <> 'live' THEN
    UPDATE call_charges SET live = 0 WHERE call_id = NEW.id;
  END IF;
END//

DELIMITER ;
