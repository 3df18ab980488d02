-- A buy deck import writes the route table's version once, not once per rate (issue 22:
-- schema 119 made every write of trunk_rates give route_table_version a new version, which
-- took 5.8 of the 10.4 s an INSERT of 100,000 buy rates ran on the test machine).
--
-- A session that sets @ict_route_version_deferred (`ictcontact rates import --trunk`,
-- around its writes) writes no version for each row; it calls route_table_changed() itself
-- once, in the same transaction, before its commit, and sets the variable back to NULL.
-- Whoever sets it takes that on: a transaction that commits rate changes without the call
-- leaves every server on its old copy of the buy rates until the next change of the route
-- table. Every other session writes the version with every row, as before.
--
-- Re-creates the trunk_rates AFTER INSERT / UPDATE / DELETE slots (119) with their bodies
-- kept, the route_version block guarded: a 17x file, the same result whichever order it
-- runs in with every other file. CREATE OR REPLACE: no write in between escapes the
-- history rule.

DELIMITER //

CREATE OR REPLACE TRIGGER trunk_rates_after_insert AFTER INSERT ON trunk_rates FOR EACH ROW
BEGIN
  route_version: BEGIN
    IF @ict_route_version_deferred IS NULL THEN
      CALL route_table_changed();
    END IF;
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
      IF @ict_route_version_deferred IS NULL THEN
        CALL route_table_changed();
      END IF;
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
    IF @ict_route_version_deferred IS NULL THEN
      CALL route_table_changed();
    END IF;
  END route_version;
END//

DELIMITER ;
