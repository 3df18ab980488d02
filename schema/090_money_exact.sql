-- Money is exact or refused. MariaDB rounds a value with more decimals than a DECIMAL
-- column keeps BEFORE any trigger sees it, in every sql_mode, and says so only with a note
-- (1265 "Data truncated"); a rate of 0.0000004/min would be stored as 0.000000 and rate
-- free. The statement's diagnostics area still holds that note when the row's BEFORE
-- triggers run (also for a value passed through a procedure parameter), so the triggers
-- below read it and refuse the row. Notes are recorded only with sql_notes on, so money
-- written with sql_notes off is refused too (its rounding could not be seen).
-- Also here, in the same input triggers: a payment's sign fits its kind; channel limits
-- have an upper bound; an emptied plan is the default plan; and a form saved whole
-- (Adminer) cannot put back what the system moved since it was loaded (a client's balance
-- and admitted_calls, a campaign's pacing clock and finish): it is refused with what to do.

ALTER TABLE payments
  ADD COLUMN allow_below_floor TINYINT(1) NOT NULL DEFAULT 0
    COMMENT '1: the operator says this negative correction may take the balance below its floor (-credit_limit); 0 refuses that'
    AFTER kind,
  ADD CONSTRAINT ck_payments_allow_below_floor CHECK (allow_below_floor IN (0, 1));

-- The bound is a documented upper limit a server can honour; comments only change here.
ALTER TABLE clients
  MODIFY channel_limit INT NOT NULL DEFAULT 10
    COMMENT 'Most simultaneous calls, 0-10000 (0 blocks all calls but emergency)';
ALTER TABLE campaigns
  MODIFY max_channels INT NULL
    COMMENT 'Most simultaneous campaign calls, 0-10000 (within the client channel limit); NULL = no extra cap';

DELIMITER //

CREATE FUNCTION input_changed_by_server(p_column VARCHAR(64)) RETURNS VARCHAR(9)
  READS SQL DATA
  COMMENT 'For BEFORE triggers: rounded if the server rounded, cut or replaced the value written to column p_column in this statement, unchecked if it could not tell, else NULL'
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE i INT DEFAULT 1;
  DECLARE errno INT;
  DECLARE message TEXT;
  GET DIAGNOSTICS conditions = NUMBER;
  -- With notes off, or a diagnostics area already full, a rounding note may be missing.
  IF @@sql_notes = 0 OR conditions >= @@max_error_count THEN
    RETURN 'unchecked';
  END IF;
  WHILE i <= conditions DO
    GET DIAGNOSTICS CONDITION i errno = MYSQL_ERRNO, message = MESSAGE_TEXT;
    -- 1264 out of range (clipped), 1265 data truncated (rounded), 1366 not a number.
    -- The column is named 'col' in the first two, `db`.`table`.`col` in the third.
    IF errno IN (1264, 1265, 1366)
       AND (LOCATE(CONCAT('column ''', p_column, ''''), message) > 0
            OR LOCATE(CONCAT('.`', p_column, '` at row'), message) > 0) THEN
      RETURN 'rounded';
    END IF;
    SET i = i + 1;
  END WHILE;
  RETURN NULL;
END//

CREATE FUNCTION inexact_money_refusal(p_problem VARCHAR(9), p_changed TINYINT, p_column VARCHAR(64),
                                      p_decimals INT)
  RETURNS VARCHAR(255)
  DETERMINISTIC NO SQL
  COMMENT 'The refusal text for a money value input_changed_by_server() flagged, or NULL; p_changed 0: an UPDATE left the value as it was'
BEGIN
  IF p_problem = 'rounded' THEN
    RETURN CONCAT(p_column, ' takes at most ', p_decimals, ' decimals and is never rounded: ',
                  'give the exact number with ', p_decimals, ' decimals or fewer');
  ELSEIF p_problem = 'unchecked' AND p_changed THEN
    RETURN CONCAT(p_column, ' is not written with sql_notes off (its rounding could not be seen): ',
                  'SET sql_notes = 1 and repeat the statement');
  END IF;
  RETURN NULL;
END//

-- Payments: exact amount, sign fits the kind. Runs before payments_before_insert.
CREATE TRIGGER payments_before_insert_exact BEFORE INSERT ON payments FOR EACH ROW
  PRECEDES payments_before_insert
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT inexact_money_refusal(input_changed_by_server('amount'), 1, 'payments.amount', 4);
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
  IF NEW.kind = 'topup' AND NEW.amount < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a topup is money received and must be positive: insert a negative amount as kind = ''correction''';
  END IF;
  IF NEW.kind = 'opening' AND NOT (@ict_opening_client <=> NEW.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kind opening is written only by INSERT INTO clients with a balance: use kind topup or correction';
  END IF;
END//

-- A negative payment may not take the balance below its floor (-credit_limit) unless the
-- row says so (allow_below_floor = 1). Checked after the balance moved: that UPDATE holds
-- the client's row, so no other transaction moves it in between.
CREATE TRIGGER payments_after_insert_floor AFTER INSERT ON payments FOR EACH ROW
  FOLLOWS payments_after_insert
BEGIN
  DECLARE new_balance DECIMAL(14,4);
  DECLARE floor_limit DECIMAL(14,4);
  IF NEW.amount < 0 AND NEW.allow_below_floor = 0 THEN
    SELECT balance, -credit_limit INTO new_balance, floor_limit FROM clients WHERE id = NEW.client_id;
    IF new_balance < floor_limit THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this payment would take the balance below its floor (-credit_limit): correct by less, or set allow_below_floor = 1 to allow it';
    END IF;
  END IF;
END//

-- Rates: exact, so a rate can never round to free.
CREATE TRIGGER rates_before_insert_exact BEFORE INSERT ON rates FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'rates.rate_per_min', 6),
    inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'rates.connection_fee', 6));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

-- On UPDATE a rounding note refuses the row even when the rounded value equals the old one
-- (the admin meant a change); with notes off only a changed value is refused, so a
-- full-row save (Adminer) that writes back what it read still goes through.
CREATE TRIGGER rates_before_update_exact BEFORE UPDATE ON rates FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('rate_per_min'),
                          NOT (NEW.rate_per_min <=> OLD.rate_per_min), 'rates.rate_per_min', 6),
    inexact_money_refusal(input_changed_by_server('connection_fee'),
                          NOT (NEW.connection_fee <=> OLD.connection_fee), 'rates.connection_fee', 6));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

-- Clients: exact opening balance and credit limit; a channel limit a server can honour.
CREATE TRIGGER clients_before_insert_input BEFORE INSERT ON clients FOR EACH ROW
  PRECEDES clients_before_insert
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('balance'), 1, 'clients.balance', 4),
    inexact_money_refusal(input_changed_by_server('credit_limit'), 1, 'clients.credit_limit', 4));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
  IF NEW.channel_limit > 10000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.channel_limit is at most 10000 simultaneous calls: give 0-10000';
  END IF;
END//

-- Every admission and every ledger move updates a client row: the function is called only
-- when the statement has conditions at all (or notes are off), so they pay one cheap read.
CREATE TRIGGER clients_before_update_input BEFORE UPDATE ON clients FOR EACH ROW
  PRECEDES clients_before_update
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
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
  -- What the system keeps on this row, written back by a form loaded before it moved
  -- (Adminer saves every column): refused with what to do, never taken.
  IF NOT (NEW.balance <=> OLD.balance) AND NOT (@ict_ledger_client <=> OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.balance is kept by the ledger: INSERT INTO payments (client_id, amount, reference) instead; if you did not change it, it moved after your form was loaded: reload the form and save again';
  END IF;
  IF NOT (NEW.admitted_calls <=> OLD.admitted_calls) AND NOT (NEW.admitted_calls <=> OLD.admitted_calls + 1) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'clients.admitted_calls is counted by the server, one admission at a time: leave it; if you did not change it, calls were admitted after your form was loaded: reload the form and save again';
  END IF;
  -- An emptied plan means the default plan, as at INSERT (the column is NULL-able from 092).
  IF NEW.rate_plan_id IS NULL THEN
    SET NEW.rate_plan_id = (SELECT id FROM rate_plans WHERE is_default = 1);
    IF NEW.rate_plan_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no default rate plan: set rate_plans.is_default = 1 on one plan or give rate_plan_id';
    END IF;
  END IF;
END//

-- Calls: an admin re-rating a call gives an exact cost (settle writes it exact already,
-- and pays only the read of the condition count).
CREATE TRIGGER calls_before_update_exact BEFORE UPDATE ON calls FOR EACH ROW
  PRECEDES calls_before_update
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 THEN
    SET refusal = inexact_money_refusal(input_changed_by_server('cost'),
      NOT (NEW.cost <=> OLD.cost), 'calls.cost', 4);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
END//

CREATE TRIGGER campaigns_before_insert_limits BEFORE INSERT ON campaigns FOR EACH ROW
  PRECEDES campaigns_before_insert
BEGIN
  IF NEW.max_channels > 10000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
END//

CREATE TRIGGER campaigns_before_update_input BEFORE UPDATE ON campaigns FOR EACH ROW
  PRECEDES campaigns_before_update
BEGIN
  IF NEW.max_channels > 10000 AND NOT (NEW.max_channels <=> OLD.max_channels) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
  -- The dialer only moves pacing_clock forward and stamps finished_at when it finishes a
  -- campaign: either written back older (or emptied) is a form loaded before the dialer
  -- worked the campaign (Adminer saves every column), which would put back 'running'.
  IF (OLD.pacing_clock IS NOT NULL AND (NEW.pacing_clock IS NULL OR NEW.pacing_clock < OLD.pacing_clock))
     OR (OLD.finished_at IS NOT NULL AND (NEW.finished_at IS NULL OR NEW.finished_at < OLD.finished_at)) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.pacing_clock and finished_at are kept by the dialer: leave them; if you did not change them, the dialer worked this campaign after your form was loaded: reload the form and save again';
  END IF;
END//

DELIMITER ;
