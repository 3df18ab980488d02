-- route_groups' BEFORE triggers (from 111), re-created with the refusal in words of
-- max_tries (114). Numbered after 150 so it runs after 111 on every database; the old body
-- is kept as it was, the new part is marked "issue 22 routing".

DROP TRIGGER IF EXISTS route_groups_before_insert;
DROP TRIGGER IF EXISTS route_groups_before_update;

DELIMITER //

CREATE TRIGGER route_groups_before_insert BEFORE INSERT ON route_groups FOR EACH ROW
BEGIN
  IF NEW.prefix IS NULL OR NOT (NEW.prefix = 'default' OR NEW.prefix REGEXP '^[0-9]{1,32}$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_groups.prefix is 1-32 digits (no + or spaces) or the word default for every other number: e.g. 44 or default';
  END IF;
  -- issue 22 routing: failover tries
  IF NEW.max_tries IS NULL OR NEW.max_tries NOT BETWEEN 1 AND 10 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_groups.max_tries is how many trunks one call may try, 1-10: e.g. 3 (1: no failover)';
  END IF;
END//

CREATE TRIGGER route_groups_before_update BEFORE UPDATE ON route_groups FOR EACH ROW
BEGIN
  IF NEW.prefix IS NULL OR NOT (NEW.prefix = 'default' OR NEW.prefix REGEXP '^[0-9]{1,32}$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_groups.prefix is 1-32 digits (no + or spaces) or the word default for every other number: e.g. 44 or default';
  END IF;
  -- issue 22 routing: failover tries
  IF NEW.max_tries IS NULL OR NEW.max_tries NOT BETWEEN 1 AND 10 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_groups.max_tries is how many trunks one call may try, 1-10: e.g. 3 (1: no failover)';
  END IF;
END//

DELIMITER ;
