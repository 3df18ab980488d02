-- Effective dates for rate decks (issue 22), sell (rates) and buy (trunk_rates) alike.
--
-- `rates` and `trunk_rates` keep holding exactly the rates in effect now, so authorize
-- reads them as before (longest prefix, one indexed lookup) and a call copies the rate it
-- was authorized with into its own row (calls.prefix, rate_per_min, connection_fee,
-- increments), which settle rates it by: a call is rated by the rates in effect when it
-- was authorized, whatever changes after.
--
-- * A change that takes effect later waits in rate_pending / trunk_rate_pending (one row
--   per prefix: set it to these values, or remove it) until its effective_at (UTC);
--   apply_due_rates() moves every due change into the live table, latest change of a
--   prefix winning. The event apply_due_rates runs it every 5 seconds (event_scheduler on,
--   as for db_login_sync; it runs with its definer's privileges, so the server's account
--   needs nothing more); `ictcontact rates import` runs it before it reads a deck, and
--   `ictcontact rates apply-due` by hand or from cron (on Galera a replicated event runs
--   on the node that created it only: cron it on the others).
-- * Every rate changed or removed, by an import, a due change or by hand, is copied first
--   into rate_history / trunk_rate_history with when it took effect and when it stopped:
--   replaced rates are kept for audit.
-- Touches no table that files 100-103/140 change (only new triggers on rates), so it gives
-- the same result before or after them.

CREATE TABLE rate_pending (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Pending change id',
  rate_plan_id INT UNSIGNED NOT NULL COMMENT 'Rate plan the change is for',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Destination prefix, digits only',
  change_kind ENUM('set','remove') NOT NULL
    COMMENT 'set: the prefix gets the values of this row (added or changed); remove: the prefix leaves the plan',
  description VARCHAR(128) NULL COMMENT 'Destination name (set only)',
  rate_per_min DECIMAL(12,6) NULL COMMENT 'USD per minute (set only)',
  connection_fee DECIMAL(12,6) NULL COMMENT 'USD once per answered call (set only)',
  initial_increment INT NULL COMMENT 'Seconds billed first (set only)',
  subsequent_increment INT NULL COMMENT 'Seconds of each further billing step (set only)',
  effective_at DATETIME NOT NULL COMMENT 'When the change takes effect (UTC)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the change was imported (UTC)',
  PRIMARY KEY (id),
  KEY ix_rate_pending_due (effective_at),
  KEY ix_rate_pending_plan_prefix (rate_plan_id, prefix, effective_at),
  CONSTRAINT fk_rate_pending_rate_plan FOREIGN KEY (rate_plan_id) REFERENCES rate_plans (id) ON DELETE CASCADE,
  CONSTRAINT ck_rate_pending_prefix_digits CHECK (prefix REGEXP '^[0-9]{1,32}$'),
  CONSTRAINT ck_rate_pending_set_has_values CHECK (change_kind = 'remove' OR (
    rate_per_min >= 0 AND connection_fee >= 0 AND initial_increment BETWEEN 1 AND 3600
    AND subsequent_increment BETWEEN 1 AND 3600))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Sell rate changes waiting for their effective time; apply_due_rates() moves them into rates';

CREATE TABLE rate_history (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'History row id',
  rate_plan_id INT UNSIGNED NOT NULL COMMENT 'Rate plan the rate belonged to',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Destination prefix',
  description VARCHAR(128) NULL COMMENT 'Destination name the rate had',
  rate_per_min DECIMAL(12,6) NOT NULL COMMENT 'USD per minute the rate had',
  connection_fee DECIMAL(12,6) NOT NULL COMMENT 'Connection fee the rate had (USD)',
  initial_increment INT NOT NULL COMMENT 'Initial increment the rate had (s)',
  subsequent_increment INT NOT NULL COMMENT 'Subsequent increment the rate had (s)',
  in_effect_from DATETIME NOT NULL COMMENT 'When these values took effect (the rate''s last change, UTC)',
  replaced_at DATETIME NOT NULL COMMENT 'When they stopped being in effect (UTC)',
  how ENUM('changed','removed') NOT NULL COMMENT 'changed: new values replaced them; removed: the prefix left the plan',
  PRIMARY KEY (id),
  KEY ix_rate_history_plan_prefix (rate_plan_id, prefix, replaced_at),
  CONSTRAINT fk_rate_history_rate_plan FOREIGN KEY (rate_plan_id) REFERENCES rate_plans (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Sell rates as they were before a change or removal, with when they were in effect (audit)';

CREATE TABLE trunk_rate_pending (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Pending change id',
  trunk_id INT UNSIGNED NOT NULL COMMENT 'Trunk the change is for',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Destination prefix, digits only',
  change_kind ENUM('set','remove') NOT NULL
    COMMENT 'set: the prefix gets the values of this row (added or changed); remove: the prefix leaves the deck',
  description VARCHAR(128) NULL COMMENT 'Destination name (set only)',
  rate_per_min DECIMAL(12,6) NULL COMMENT 'USD per minute (set only)',
  connection_fee DECIMAL(12,6) NULL COMMENT 'USD once per answered call (set only)',
  initial_increment INT NULL COMMENT 'Seconds billed first (set only)',
  subsequent_increment INT NULL COMMENT 'Seconds of each further billing step (set only)',
  effective_at DATETIME NOT NULL COMMENT 'When the change takes effect (UTC)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the change was imported (UTC)',
  PRIMARY KEY (id),
  KEY ix_trunk_rate_pending_due (effective_at),
  KEY ix_trunk_rate_pending_trunk_prefix (trunk_id, prefix, effective_at),
  CONSTRAINT fk_trunk_rate_pending_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id) ON DELETE CASCADE,
  CONSTRAINT ck_trunk_rate_pending_prefix_digits CHECK (prefix REGEXP '^[0-9]{1,32}$'),
  CONSTRAINT ck_trunk_rate_pending_set_has_values CHECK (change_kind = 'remove' OR (
    rate_per_min >= 0 AND connection_fee >= 0 AND initial_increment BETWEEN 1 AND 3600
    AND subsequent_increment BETWEEN 1 AND 3600))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Buy rate changes waiting for their effective time; apply_due_rates() moves them into trunk_rates';

CREATE TABLE trunk_rate_history (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'History row id',
  trunk_id INT UNSIGNED NOT NULL COMMENT 'Trunk the rate belonged to',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Destination prefix',
  description VARCHAR(128) NULL COMMENT 'Destination name the rate had',
  rate_per_min DECIMAL(12,6) NOT NULL COMMENT 'USD per minute the rate had',
  connection_fee DECIMAL(12,6) NOT NULL COMMENT 'Connection fee the rate had (USD)',
  initial_increment INT NOT NULL COMMENT 'Initial increment the rate had (s)',
  subsequent_increment INT NOT NULL COMMENT 'Subsequent increment the rate had (s)',
  in_effect_from DATETIME NOT NULL COMMENT 'When these values took effect (the rate''s last change, UTC)',
  replaced_at DATETIME NOT NULL COMMENT 'When they stopped being in effect (UTC)',
  how ENUM('changed','removed') NOT NULL COMMENT 'changed: new values replaced them; removed: the prefix left the deck',
  PRIMARY KEY (id),
  KEY ix_trunk_rate_history_trunk_prefix (trunk_id, prefix, replaced_at),
  CONSTRAINT fk_trunk_rate_history_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Buy rates as they were before a change or removal, with when they were in effect (audit)';

DELIMITER //

-- Pending changes are money too: exact or refused, with the rule in words.
CREATE TRIGGER rate_pending_before_insert BEFORE INSERT ON rate_pending FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'rate_pending.rate_per_min', 6),
    inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'rate_pending.connection_fee', 6),
    IF(NEW.change_kind = 'set',
       deck_rate_refusal('rate_pending', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                         NEW.initial_increment, NEW.subsequent_increment), NULL));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER trunk_rate_pending_before_insert BEFORE INSERT ON trunk_rate_pending FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'trunk_rate_pending.rate_per_min', 6),
    inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'trunk_rate_pending.connection_fee', 6),
    IF(NEW.change_kind = 'set',
       deck_rate_refusal('trunk_rate_pending', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                         NEW.initial_increment, NEW.subsequent_increment), NULL));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

-- History: the values a rate had, copied when they change or the rate is removed.
CREATE TRIGGER rates_after_update_history AFTER UPDATE ON rates FOR EACH ROW
BEGIN
  IF NOT (NEW.rate_per_min <=> OLD.rate_per_min AND NEW.connection_fee <=> OLD.connection_fee
          AND NEW.initial_increment <=> OLD.initial_increment
          AND NEW.subsequent_increment <=> OLD.subsequent_increment
          AND NEW.description <=> OLD.description AND NEW.prefix <=> OLD.prefix
          AND NEW.rate_plan_id <=> OLD.rate_plan_id) THEN
    INSERT INTO rate_history (rate_plan_id, prefix, description, rate_per_min, connection_fee,
                              initial_increment, subsequent_increment, in_effect_from, replaced_at, how)
    VALUES (OLD.rate_plan_id, OLD.prefix, OLD.description, OLD.rate_per_min, OLD.connection_fee,
            OLD.initial_increment, OLD.subsequent_increment, OLD.updated_at, UTC_TIMESTAMP(), 'changed');
  END IF;
END//

CREATE TRIGGER rates_after_delete_history AFTER DELETE ON rates FOR EACH ROW
BEGIN
  INSERT INTO rate_history (rate_plan_id, prefix, description, rate_per_min, connection_fee,
                            initial_increment, subsequent_increment, in_effect_from, replaced_at, how)
  VALUES (OLD.rate_plan_id, OLD.prefix, OLD.description, OLD.rate_per_min, OLD.connection_fee,
          OLD.initial_increment, OLD.subsequent_increment, OLD.updated_at, UTC_TIMESTAMP(), 'removed');
END//

CREATE TRIGGER trunk_rates_after_update_history AFTER UPDATE ON trunk_rates FOR EACH ROW
BEGIN
  IF NOT (NEW.rate_per_min <=> OLD.rate_per_min AND NEW.connection_fee <=> OLD.connection_fee
          AND NEW.initial_increment <=> OLD.initial_increment
          AND NEW.subsequent_increment <=> OLD.subsequent_increment
          AND NEW.description <=> OLD.description AND NEW.prefix <=> OLD.prefix
          AND NEW.trunk_id <=> OLD.trunk_id) THEN
    INSERT INTO trunk_rate_history (trunk_id, prefix, description, rate_per_min, connection_fee,
                                    initial_increment, subsequent_increment, in_effect_from, replaced_at, how)
    VALUES (OLD.trunk_id, OLD.prefix, OLD.description, OLD.rate_per_min, OLD.connection_fee,
            OLD.initial_increment, OLD.subsequent_increment, OLD.updated_at, UTC_TIMESTAMP(), 'changed');
  END IF;
END//

CREATE TRIGGER trunk_rates_after_delete_history AFTER DELETE ON trunk_rates FOR EACH ROW
BEGIN
  INSERT INTO trunk_rate_history (trunk_id, prefix, description, rate_per_min, connection_fee,
                                  initial_increment, subsequent_increment, in_effect_from, replaced_at, how)
  VALUES (OLD.trunk_id, OLD.prefix, OLD.description, OLD.rate_per_min, OLD.connection_fee,
          OLD.initial_increment, OLD.subsequent_increment, OLD.updated_at, UTC_TIMESTAMP(), 'removed');
END//

-- Moves every due change into rates / trunk_rates (the latest due change of a prefix
-- wins) and drops the due rows. Opens no transaction: the caller's, or the event's, holds
-- it whole.
CREATE PROCEDURE apply_due_rates()
  MODIFIES SQL DATA
  COMMENT 'Moves the rate changes whose effective_at has come from rate_pending/trunk_rate_pending into rates/trunk_rates'
BEGIN
  DECLARE v_now DATETIME DEFAULT UTC_TIMESTAMP();
  IF EXISTS (SELECT 1 FROM rate_pending WHERE effective_at <= v_now) THEN
    INSERT INTO rates (rate_plan_id, prefix, description, rate_per_min, connection_fee,
                       initial_increment, subsequent_increment)
    SELECT p.rate_plan_id, p.prefix, p.description, p.rate_per_min, p.connection_fee,
           p.initial_increment, p.subsequent_increment
    FROM rate_pending p
    WHERE p.effective_at <= v_now AND p.change_kind = 'set'
      AND NOT EXISTS (SELECT 1 FROM rate_pending q
                      WHERE q.rate_plan_id = p.rate_plan_id AND q.prefix = p.prefix
                        AND q.effective_at <= v_now
                        AND (q.effective_at > p.effective_at OR (q.effective_at = p.effective_at AND q.id > p.id)))
    ON DUPLICATE KEY UPDATE description = VALUES(description), rate_per_min = VALUES(rate_per_min),
      connection_fee = VALUES(connection_fee), initial_increment = VALUES(initial_increment),
      subsequent_increment = VALUES(subsequent_increment);
    DELETE r FROM rates r JOIN rate_pending p ON p.rate_plan_id = r.rate_plan_id AND p.prefix = r.prefix
    WHERE p.effective_at <= v_now AND p.change_kind = 'remove'
      AND NOT EXISTS (SELECT 1 FROM rate_pending q
                      WHERE q.rate_plan_id = p.rate_plan_id AND q.prefix = p.prefix
                        AND q.effective_at <= v_now
                        AND (q.effective_at > p.effective_at OR (q.effective_at = p.effective_at AND q.id > p.id)));
    DELETE FROM rate_pending WHERE effective_at <= v_now;
  END IF;
  IF EXISTS (SELECT 1 FROM trunk_rate_pending WHERE effective_at <= v_now) THEN
    INSERT INTO trunk_rates (trunk_id, prefix, description, rate_per_min, connection_fee,
                             initial_increment, subsequent_increment)
    SELECT p.trunk_id, p.prefix, p.description, p.rate_per_min, p.connection_fee,
           p.initial_increment, p.subsequent_increment
    FROM trunk_rate_pending p
    WHERE p.effective_at <= v_now AND p.change_kind = 'set'
      AND NOT EXISTS (SELECT 1 FROM trunk_rate_pending q
                      WHERE q.trunk_id = p.trunk_id AND q.prefix = p.prefix
                        AND q.effective_at <= v_now
                        AND (q.effective_at > p.effective_at OR (q.effective_at = p.effective_at AND q.id > p.id)))
    ON DUPLICATE KEY UPDATE description = VALUES(description), rate_per_min = VALUES(rate_per_min),
      connection_fee = VALUES(connection_fee), initial_increment = VALUES(initial_increment),
      subsequent_increment = VALUES(subsequent_increment);
    DELETE r FROM trunk_rates r JOIN trunk_rate_pending p ON p.trunk_id = r.trunk_id AND p.prefix = r.prefix
    WHERE p.effective_at <= v_now AND p.change_kind = 'remove'
      AND NOT EXISTS (SELECT 1 FROM trunk_rate_pending q
                      WHERE q.trunk_id = p.trunk_id AND q.prefix = p.prefix
                        AND q.effective_at <= v_now
                        AND (q.effective_at > p.effective_at OR (q.effective_at = p.effective_at AND q.id > p.id)));
    DELETE FROM trunk_rate_pending WHERE effective_at <= v_now;
  END IF;
END//

-- The event holds the whole move in one transaction.
CREATE EVENT apply_due_rates
  ON SCHEDULE EVERY 5 SECOND
  ON COMPLETION PRESERVE ENABLE
  COMMENT 'Puts rate deck changes into effect within 5 seconds of their effective_at'
  DO BEGIN
    START TRANSACTION;
    CALL apply_due_rates();
    COMMIT;
  END//

DELIMITER ;
