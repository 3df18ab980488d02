-- Routes (issue 22): which trunks carry a call to a destination, in which order. A route
-- group is a destination prefix ('default' for every number no other prefix matches) for
-- every rate plan or for one plan (premium plans on premium carriers); the longest prefix
-- wins, and a plan's own group wins over the group for every plan at the same prefix. Its
-- routes are the trunks to try; the group's ordering says how: by priority (lower first)
-- or least cost (the cheapest buy rate of each trunk for the dialled number first,
-- priority breaking ties). Routing by authorize and the dialplan's failover come with the
-- next steps of issue 22.
-- Touches no table of an earlier file, so it gives the same result before or after 100-103/140.

CREATE TABLE route_groups (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Route group id',
  rate_plan_id INT UNSIGNED NULL COMMENT 'Rate plan whose calls use this group; NULL: every plan without its own group here',
  plan_key INT UNSIGNED GENERATED ALWAYS AS (COALESCE(rate_plan_id, 0)) STORED
    COMMENT 'Derived from rate_plan_id (0 for every plan): its unique key allows one group per prefix and plan',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Destination prefix, digits only, or default for every number no longer prefix matches',
  ordering ENUM('priority','least-cost') NOT NULL DEFAULT 'priority'
    COMMENT 'priority: trunks by routes.priority, lower first; least-cost: by the trunk''s buy rate for the number, then priority',
  description VARCHAR(128) NULL COMMENT 'Free text for admins, e.g. UK mobiles, premium carriers',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the group was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_route_groups_plan_prefix (plan_key, prefix),
  KEY ix_route_groups_rate_plan (rate_plan_id),
  CONSTRAINT fk_route_groups_rate_plan FOREIGN KEY (rate_plan_id) REFERENCES rate_plans (id) ON DELETE CASCADE,
  CONSTRAINT ck_route_groups_prefix CHECK (prefix = 'default' OR prefix REGEXP '^[0-9]{1,32}$'),
  CONSTRAINT ck_route_groups_ordering CHECK (ordering IN ('priority', 'least-cost'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Route groups: a destination prefix (or default), for every plan or one, and how its trunks are ordered';

CREATE TABLE routes (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Route id',
  route_group_id INT UNSIGNED NOT NULL COMMENT 'Route group (destination prefix and plan) this trunk serves',
  trunk_id INT UNSIGNED NOT NULL COMMENT 'Trunk to try',
  priority INT NOT NULL DEFAULT 10 COMMENT 'Order of the trunks of a group, lower first (0-1000); ties broken by least cost in a least-cost group',
  allow_loss TINYINT(1) NOT NULL DEFAULT 0
    COMMENT '1: this trunk may carry the call even when its buy cost exceeds what the client pays; 0: skipped then (margin protection)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the route was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_routes_group_trunk (route_group_id, trunk_id),
  KEY ix_routes_trunk (trunk_id),
  CONSTRAINT fk_routes_route_group FOREIGN KEY (route_group_id) REFERENCES route_groups (id) ON DELETE CASCADE,
  CONSTRAINT fk_routes_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id),
  CONSTRAINT ck_routes_priority CHECK (priority BETWEEN 0 AND 1000),
  CONSTRAINT ck_routes_allow_loss CHECK (allow_loss IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Routes: the trunks of a route group, each with its priority and margin rule';

DELIMITER //

CREATE TRIGGER route_groups_before_insert BEFORE INSERT ON route_groups FOR EACH ROW
BEGIN
  IF NEW.prefix IS NULL OR NOT (NEW.prefix = 'default' OR NEW.prefix REGEXP '^[0-9]{1,32}$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_groups.prefix is 1-32 digits (no + or spaces) or the word default for every other number: e.g. 44 or default';
  END IF;
END//

CREATE TRIGGER route_groups_before_update BEFORE UPDATE ON route_groups FOR EACH ROW
BEGIN
  IF NEW.prefix IS NULL OR NOT (NEW.prefix = 'default' OR NEW.prefix REGEXP '^[0-9]{1,32}$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'route_groups.prefix is 1-32 digits (no + or spaces) or the word default for every other number: e.g. 44 or default';
  END IF;
END//

CREATE TRIGGER routes_before_insert BEFORE INSERT ON routes FOR EACH ROW
BEGIN
  IF NEW.priority IS NULL OR NEW.priority NOT BETWEEN 0 AND 1000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'routes.priority is 0-1000, lower tried first: e.g. 10 for the first trunk, 20 for the next';
  END IF;
  IF NEW.allow_loss IS NULL OR NEW.allow_loss NOT IN (0, 1) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'routes.allow_loss is 1 (this trunk may cost more than the client pays) or 0 (skip it then)';
  END IF;
END//

CREATE TRIGGER routes_before_update BEFORE UPDATE ON routes FOR EACH ROW
BEGIN
  IF NEW.priority IS NULL OR NEW.priority NOT BETWEEN 0 AND 1000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'routes.priority is 0-1000, lower tried first: e.g. 10 for the first trunk, 20 for the next';
  END IF;
  IF NEW.allow_loss IS NULL OR NEW.allow_loss NOT IN (0, 1) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'routes.allow_loss is 1 (this trunk may cost more than the client pays) or 0 (skip it then)';
  END IF;
END//

-- A trunk that routes still use is disabled, not deleted: the FK would name a constraint.
CREATE TRIGGER trunks_before_delete BEFORE DELETE ON trunks FOR EACH ROW
BEGIN
  IF EXISTS (SELECT 1 FROM routes WHERE trunk_id = OLD.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this trunk is used by routes: set trunks.status = ''disabled'' to stop using it, or delete its routes first';
  END IF;
END//

DELIMITER ;
