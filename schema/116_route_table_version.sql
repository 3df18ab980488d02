-- The route table's version (issue 22 performance). Each FastAGI server keeps a copy of
-- what authorize reads of route_groups, routes and trunks (not capacity, live counts,
-- cool-downs or buy rates: those are read by every call), and uses it only while the
-- version it was made from is still the one in this row. Every call reads the row in its
-- own transaction (in the query that already reads the client's usage and rate), so a
-- change is seen by the next call on every server, as if the tables were read.
--
-- The version is a fresh UUID at every change, never a counter: a database restored from
-- a dump brings back the version that went with its rows, and a counter could come back
-- to a number a server had kept for other rows.
--
-- The triggers are AFTER triggers on slots no earlier file uses (route_groups, routes and
-- trunks: AFTER INSERT/UPDATE/DELETE as listed; rate_plans: AFTER DELETE, whose cascade
-- deletes a plan's route groups without firing their triggers). A new trunk changes no
-- route until a routes row names it; a trunk named by a route cannot be deleted. A write
-- that fires no trigger (TRUNCATE) is picked up when a server's copy is a minute old.
-- New objects only: the same result before or after every later file.

CREATE TABLE route_table_version (
  id TINYINT UNSIGNED NOT NULL DEFAULT 1 COMMENT 'Always 1: the table has one row',
  version CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'UUID set by every change of route_groups, routes or trunks (system-kept)',
  changed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
    COMMENT 'When the route table last changed (the database clock)',
  PRIMARY KEY (id),
  CONSTRAINT ck_route_table_version_one_row CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='System-kept version of the route table: FastAGI servers use their copy of routes only while it matches; never edit by hand';

INSERT IGNORE INTO route_table_version (id, version) VALUES (1, UUID());

DELIMITER //

CREATE PROCEDURE route_table_changed()
  MODIFIES SQL DATA
  COMMENT 'Gives the route table a new version (called by the triggers of route_groups, routes and trunks)'
BEGIN
  -- the BEFORE triggers set the new version; the row comes back if it was ever lost
  INSERT INTO route_table_version (id, version) VALUES (1, UUID())
    ON DUPLICATE KEY UPDATE version = UUID();
END//

CREATE TRIGGER route_table_version_before_delete BEFORE DELETE ON route_table_version FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_table_version is kept by the system (every change of route_groups, routes or trunks sets it): leave its row alone';
END//

CREATE TRIGGER route_table_version_before_insert BEFORE INSERT ON route_table_version FOR EACH ROW
BEGIN
  -- whatever a hand edit (or a tool's full-row save) writes, the row gets a version never
  -- seen before: the row is the servers' proof that their copy of the routes is current,
  -- and an old version written back would make an old copy look current
  SET NEW.version = UUID(), NEW.changed_at = NOW(6);
END//

CREATE TRIGGER route_table_version_before_update BEFORE UPDATE ON route_table_version FOR EACH ROW
BEGIN
  SET NEW.version = UUID(), NEW.changed_at = NOW(6);
END//

CREATE TRIGGER route_groups_after_insert AFTER INSERT ON route_groups FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER route_groups_after_update AFTER UPDATE ON route_groups FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER route_groups_after_delete AFTER DELETE ON route_groups FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER routes_after_insert AFTER INSERT ON routes FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER routes_after_update AFTER UPDATE ON routes FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER routes_after_delete AFTER DELETE ON routes FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER trunks_after_update AFTER UPDATE ON trunks FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

CREATE TRIGGER rate_plans_after_delete AFTER DELETE ON rate_plans FOR EACH ROW
BEGIN
  CALL route_table_changed();
END//

DELIMITER ;
