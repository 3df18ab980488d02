-- Rate decks load fast, and money stays exact or refused (issue 22).
--
-- 090's exactness check called input_changed_by_server() (a stored function walking the
-- statement's diagnostics) twice per row: 100,000 rows into `rates` cost 4.4-5.8 s with
-- it against 0.5-0.7 s without (INSERT ... SELECT from seq_1_to_100000, docs/benchmark.md).
-- MariaDB records a rounding (or clipping, or a string that is not a number) as a note or
-- warning in the statement's diagnostics area before the BEFORE trigger runs; a row whose
-- statement has no condition at all, with sql_notes on and room for conditions
-- (max_error_count > 0), was not rounded, and input_changed_by_server() returns NULL for
-- it. So each trigger below first reads the condition count (one GET DIAGNOSTICS) and
-- calls the functions only when there is a condition or a note could not have been kept:
-- the same refusals, in the same words, for every row; a clean row (every row an import
-- writes: it checks the decimals itself and sends exact values) skips the calls
-- (1.0-1.1 s for the same 100,000 rows). The trunk decks' rule check
-- (deck_rate_refusal) is likewise called only for a row that breaks it, to word the
-- refusal.
-- calls_before_update also checks buy_cost (117) as it checks cost, and counts
-- max_error_count = 0 as "could not see" like input_changed_by_server() does.
--
-- Re-creates landed trigger slots (one trigger per slot): rates BEFORE INSERT / UPDATE
-- (090), trunk_rates BEFORE INSERT / UPDATE (110), rate_pending and trunk_rate_pending
-- BEFORE INSERT (112), calls BEFORE UPDATE (147). Each keeps its old body, guarded.

DROP TRIGGER IF EXISTS rates_before_insert_exact;
DROP TRIGGER IF EXISTS rates_before_update_exact;
DROP TRIGGER IF EXISTS trunk_rates_before_insert;
DROP TRIGGER IF EXISTS trunk_rates_before_update;
DROP TRIGGER IF EXISTS rate_pending_before_insert;
DROP TRIGGER IF EXISTS trunk_rate_pending_before_insert;
DROP TRIGGER IF EXISTS calls_before_update;

DELIMITER //

-- Rates: exact, so a rate can never round to free (090).
CREATE TRIGGER rates_before_insert_exact BEFORE INSERT ON rates FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'rates.rate_per_min', 6),
      inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'rates.connection_fee', 6));
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
END//

-- On UPDATE a rounding note refuses the row even when the rounded value equals the old one
-- (the admin meant a change); with notes off only a changed value is refused, so a
-- full-row save (Adminer) that writes back what it read still goes through.
CREATE TRIGGER rates_before_update_exact BEFORE UPDATE ON rates FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('rate_per_min'),
                            NOT (NEW.rate_per_min <=> OLD.rate_per_min), 'rates.rate_per_min', 6),
      inexact_money_refusal(input_changed_by_server('connection_fee'),
                            NOT (NEW.connection_fee <=> OLD.connection_fee), 'rates.connection_fee', 6));
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
END//

-- Buy rates are money: exact or refused, as rates (110); then the deck's rules in words.
CREATE TRIGGER trunk_rates_before_insert BEFORE INSERT ON trunk_rates FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'trunk_rates.rate_per_min', 6),
      inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'trunk_rates.connection_fee', 6));
  END IF;
  -- deck_rate_refusal() returns NULL exactly when this holds: called to word a refusal
  IF refusal IS NULL AND NOT COALESCE(NEW.prefix REGEXP '^[0-9]{1,32}$' AND NEW.rate_per_min >= 0
       AND NEW.connection_fee >= 0 AND NEW.initial_increment BETWEEN 1 AND 3600
       AND NEW.subsequent_increment BETWEEN 1 AND 3600, FALSE) THEN
    SET refusal = deck_rate_refusal('trunk_rates', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                                    NEW.initial_increment, NEW.subsequent_increment);
  END IF;
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER trunk_rates_before_update BEFORE UPDATE ON trunk_rates FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('rate_per_min'),
                            NOT (NEW.rate_per_min <=> OLD.rate_per_min), 'trunk_rates.rate_per_min', 6),
      inexact_money_refusal(input_changed_by_server('connection_fee'),
                            NOT (NEW.connection_fee <=> OLD.connection_fee), 'trunk_rates.connection_fee', 6));
  END IF;
  IF refusal IS NULL AND NOT COALESCE(NEW.prefix REGEXP '^[0-9]{1,32}$' AND NEW.rate_per_min >= 0
       AND NEW.connection_fee >= 0 AND NEW.initial_increment BETWEEN 1 AND 3600
       AND NEW.subsequent_increment BETWEEN 1 AND 3600, FALSE) THEN
    SET refusal = deck_rate_refusal('trunk_rates', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                                    NEW.initial_increment, NEW.subsequent_increment);
  END IF;
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

-- Pending changes are money too: exact or refused, with the rule in words (112).
CREATE TRIGGER rate_pending_before_insert BEFORE INSERT ON rate_pending FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'rate_pending.rate_per_min', 6),
      inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'rate_pending.connection_fee', 6));
  END IF;
  IF refusal IS NULL AND NEW.change_kind = 'set' AND NOT COALESCE(NEW.prefix REGEXP '^[0-9]{1,32}$'
       AND NEW.rate_per_min >= 0 AND NEW.connection_fee >= 0
       AND NEW.initial_increment BETWEEN 1 AND 3600 AND NEW.subsequent_increment BETWEEN 1 AND 3600,
       FALSE) THEN
    SET refusal = deck_rate_refusal('rate_pending', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                                    NEW.initial_increment, NEW.subsequent_increment);
  END IF;
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER trunk_rate_pending_before_insert BEFORE INSERT ON trunk_rate_pending FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'trunk_rate_pending.rate_per_min', 6),
      inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'trunk_rate_pending.connection_fee', 6));
  END IF;
  IF refusal IS NULL AND NEW.change_kind = 'set' AND NOT COALESCE(NEW.prefix REGEXP '^[0-9]{1,32}$'
       AND NEW.rate_per_min >= 0 AND NEW.connection_fee >= 0
       AND NEW.initial_increment BETWEEN 1 AND 3600 AND NEW.subsequent_increment BETWEEN 1 AND 3600,
       FALSE) THEN
    SET refusal = deck_rate_refusal('trunk_rate_pending', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                                    NEW.initial_increment, NEW.subsequent_increment);
  END IF;
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER calls_before_update BEFORE UPDATE ON calls FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  -- An admin re-rating a call gives an exact cost (settle writes it exact already, and
  -- pays only the read of the condition count); the carrier's cost likewise (117).
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 OR @@max_error_count = 0 THEN
    SET refusal = COALESCE(
      inexact_money_refusal(input_changed_by_server('cost'),
        NOT (NEW.cost <=> OLD.cost), 'calls.cost', 4),
      inexact_money_refusal(input_changed_by_server('buy_cost'),
        NOT (NEW.buy_cost <=> OLD.buy_cost), 'calls.buy_cost', 4));
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a call cannot move to another client';
  END IF;
END//

DELIMITER ;
