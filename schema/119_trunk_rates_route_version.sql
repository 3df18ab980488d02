-- Buy rates join the route table's version (issue 22 performance). Each FastAGI server's
-- copy of the route table (schema 116) now also holds the buy rates of the routed trunks,
-- so every change of trunk_rates gives route_table_version a new version too, whoever
-- writes it: `ictcontact rates import --trunk`, apply_due_rates() moving a due rate in,
-- a DBA's INSERT / UPDATE / DELETE. A copy made before the change is then never used
-- again: the next call on every server reads the buy rates from the table.
--
-- The version is written through route_table_changed() (116), the one way the rows of
-- route_table_version change. One trigger per slot (147-149): AFTER INSERT was free; the
-- AFTER UPDATE and AFTER DELETE slots held the history triggers of 112, re-created here
-- as one trigger each, their former bodies unchanged in the block `history`. An UPDATE
-- that changes nothing the copy holds (a description) keeps the version.
--
-- CREATE OR REPLACE before DROP: no write in between escapes the history rule.

DELIMITER //

CREATE OR REPLACE TRIGGER trunk_rates_after_insert AFTER INSERT ON trunk_rates FOR EACH ROW
BEGIN
  route_version: BEGIN
    CALL route_table_changed();
  END route_version;
END//

CREATE OR REPLACE TRIGGER trunk_rates_after_update AFTER UPDATE ON trunk_rates FOR EACH ROW
BEGIN
  history: BEGIN
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
  END history;
  route_version: BEGIN
    IF NOT (NEW.rate_per_min <=> OLD.rate_per_min AND NEW.connection_fee <=> OLD.connection_fee
            AND NEW.initial_increment <=> OLD.initial_increment
            AND NEW.subsequent_increment <=> OLD.subsequent_increment
            AND NEW.prefix <=> OLD.prefix AND NEW.trunk_id <=> OLD.trunk_id) THEN
      CALL route_table_changed();
    END IF;
  END route_version;
END//

CREATE OR REPLACE TRIGGER trunk_rates_after_delete AFTER DELETE ON trunk_rates FOR EACH ROW
BEGIN
  history: BEGIN
    INSERT INTO trunk_rate_history (trunk_id, prefix, description, rate_per_min, connection_fee,
                                    initial_increment, subsequent_increment, in_effect_from, replaced_at, how)
    VALUES (OLD.trunk_id, OLD.prefix, OLD.description, OLD.rate_per_min, OLD.connection_fee,
            OLD.initial_increment, OLD.subsequent_increment, OLD.updated_at, UTC_TIMESTAMP(), 'removed');
  END history;
  route_version: BEGIN
    CALL route_table_changed();
  END route_version;
END//

DELIMITER ;

DROP TRIGGER IF EXISTS trunk_rates_after_update_history;
DROP TRIGGER IF EXISTS trunk_rates_after_delete_history;
