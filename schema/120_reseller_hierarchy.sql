-- Resellers (issue 23): a hierarchy of clients. Every client but the root `master` (the
-- operator's own account) has a parent; a client with children of its own is a reseller.
-- A reseller sells at its own rate plans (rate_plans.owner_client_id) and pays its parent
-- at the plan its parent gave it. A call is billed to its client at the client's plan
-- (calls.cost, as before) and to every reseller above it except master at that
-- reseller's own plan (call_charges), in the transaction that settles it.
--
-- This file only ADDS objects (columns, tables, new trigger slots, routines with new
-- names) and migrates data idempotently: it gives the same result before or after
-- 140-150. The rules on the clients and calls trigger slots that landed files define
-- (parent given or master, depth, cycles, plan owner, moves only through move_client,
-- the tree kept, live charges released) are in 156, which runs after 147-150 everywhere;
-- 156 runs this file's data migration again for clients inserted in between.

ALTER TABLE clients
  ADD COLUMN parent_id INT UNSIGNED NULL
    COMMENT 'The reseller this client belongs to; NULL only for the root master (the operator). Given NULL at INSERT it becomes master. Changed only by CALL move_client'
    AFTER id,
  ADD KEY ix_clients_parent (parent_id),
  ADD CONSTRAINT fk_clients_parent FOREIGN KEY (parent_id) REFERENCES clients (id);

ALTER TABLE rate_plans
  ADD COLUMN owner_client_id INT UNSIGNED NULL
    COMMENT 'Who sells at this plan: NULL = the operator (plans for master''s children); else the reseller (clients.id) whose own clients may be on it'
    AFTER id,
  ADD KEY ix_rate_plans_owner (owner_client_id),
  ADD CONSTRAINT fk_rate_plans_owner FOREIGN KEY (owner_client_id) REFERENCES clients (id);

ALTER TABLE calls
  ADD COLUMN rejected_by VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Code of the client whose level refused the attempt (the calling client or a reseller above it); NULL unless rejected'
    AFTER reason,
  ADD COLUMN reseller_levels TINYINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'How many resellers above the client (master not counted) hold a charge of this call in call_charges; 0 for a client of master'
    AFTER rejected_by;

CREATE TABLE client_tree (
  ancestor_id INT UNSIGNED NOT NULL COMMENT 'A client above client_id, or client_id itself (depth 0)',
  client_id INT UNSIGNED NOT NULL COMMENT 'The client',
  depth TINYINT UNSIGNED NOT NULL COMMENT 'Levels from ancestor_id down to client_id: 0 itself, 1 its parent, 2 its grandparent...',
  PRIMARY KEY (ancestor_id, client_id),
  KEY ix_client_tree_client (client_id, depth),
  CONSTRAINT fk_client_tree_ancestor FOREIGN KEY (ancestor_id) REFERENCES clients (id) ON DELETE CASCADE,
  CONSTRAINT fk_client_tree_client FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Every (ancestor, client) pair of the reseller hierarchy, self included: kept by the system from clients.parent_id';

CREATE TABLE call_charges (
  call_id BIGINT UNSIGNED NOT NULL COMMENT 'The call (calls.id)',
  client_id INT UNSIGNED NOT NULL COMMENT 'The reseller charged at this level',
  depth TINYINT UNSIGNED NOT NULL COMMENT 'Levels above the calling client: 1 its parent, 2 its grandparent...',
  live TINYINT(1) NOT NULL DEFAULT 1 COMMENT '1 while the call is live: it holds a channel and this reservation of the reseller',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Prefix of the reseller''s own plan applied (longest match); empty when free',
  rate_per_min DECIMAL(12,6) NOT NULL COMMENT 'USD per minute the reseller pays its parent, copied at authorization',
  connection_fee DECIMAL(12,6) NOT NULL COMMENT 'USD the reseller pays once if answered',
  initial_increment INT NOT NULL COMMENT 'Initial billing increment of the reseller''s rate (s)',
  subsequent_increment INT NOT NULL COMMENT 'Subsequent billing increment of the reseller''s rate (s)',
  reserved DECIMAL(14,4) NOT NULL DEFAULT 0 COMMENT 'USD held from the reseller''s credit while the call is live',
  billable_seconds INT NULL COMMENT 'Seconds billed to the reseller after its increments',
  cost DECIMAL(14,4) NULL COMMENT 'USD the reseller pays for the call (its plan); changing it moves the reseller''s balance by the difference',
  sell DECIMAL(14,4) NULL COMMENT 'USD the level below pays for the call (the calling client''s calls.cost at depth 1)',
  margin DECIMAL(14,4) AS (sell - cost) STORED COMMENT 'sell - cost: what the reseller earned on the call (negative: it sold below its buy price)',
  authorized_at DATETIME(3) NOT NULL COMMENT 'When the call was admitted (UTC)',
  settled_at DATETIME(3) NULL COMMENT 'When it was billed (UTC)',
  PRIMARY KEY (call_id, client_id),
  -- The foreign key's own index, first so InnoDB picks it: its entries never change, so
  -- settle's updates (live, cost, settled_at) take no shared lock on the clients rows,
  -- which would come root-most first (by client id) against authorize's deepest first.
  KEY ix_call_charges_client (client_id),
  KEY ix_call_charges_live (client_id, live, reserved),
  KEY ix_call_charges_settled (client_id, settled_at),
  CONSTRAINT fk_call_charges_call FOREIGN KEY (call_id) REFERENCES calls (id),
  CONSTRAINT fk_call_charges_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_call_charges_live CHECK (live IN (0, 1)),
  CONSTRAINT ck_call_charges_reserved CHECK (reserved >= 0),
  CONSTRAINT ck_call_charges_cost CHECK (cost IS NULL OR cost >= 0),
  CONSTRAINT ck_call_charges_depth CHECK (depth >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='What each reseller above a call''s client pays for it (its own plan) and sells it for: one row per call and reseller';

DELIMITER //

-- The tree, kept by the system ---------------------------------------------------------

CREATE PROCEDURE client_tree_add(IN p_client_id INT UNSIGNED, IN p_parent_id INT UNSIGNED)
  COMMENT 'Internal, for the clients INSERT trigger: the new client''s rows of client_tree'
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_tree_write = NULL;
    RESIGNAL;
  END;
  SET @ict_tree_write = 1;
  INSERT IGNORE INTO client_tree (ancestor_id, client_id, depth) VALUES (p_client_id, p_client_id, 0);
  INSERT IGNORE INTO client_tree (ancestor_id, client_id, depth)
    SELECT ancestor_id, p_client_id, depth + 1 FROM client_tree WHERE client_id = p_parent_id;
  SET @ict_tree_write = NULL;
END//

CREATE PROCEDURE client_tree_move(IN p_client_id INT UNSIGNED, IN p_parent_id INT UNSIGNED)
  COMMENT 'Internal, for the clients UPDATE trigger (through move_client): the client''s subtree hangs under its new parent'
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_tree_write = NULL;
    RESIGNAL;
  END;
  SET @ict_tree_write = 1;
  -- the paths from the old ancestors (above the client) to every client of its subtree
  DELETE t FROM client_tree t
    JOIN client_tree s ON s.client_id = t.client_id AND s.ancestor_id = p_client_id
    WHERE t.depth > s.depth;
  INSERT INTO client_tree (ancestor_id, client_id, depth)
    SELECT p.ancestor_id, s.client_id, p.depth + s.depth + 1
      FROM client_tree p JOIN client_tree s ON s.ancestor_id = p_client_id
      WHERE p.client_id = p_parent_id;
  SET @ict_tree_write = NULL;
END//

CREATE TRIGGER client_tree_before_insert BEFORE INSERT ON client_tree FOR EACH ROW
BEGIN
  IF @ict_tree_write IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_tree is kept by the system from clients.parent_id: INSERT INTO clients (..., parent_id) or CALL move_client instead';
  END IF;
END//

CREATE TRIGGER client_tree_before_update BEFORE UPDATE ON client_tree FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_tree is kept by the system from clients.parent_id: CALL move_client to move a client instead';
END//

CREATE TRIGGER client_tree_before_delete BEFORE DELETE ON client_tree FOR EACH ROW
BEGIN
  IF @ict_tree_write IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'client_tree is kept by the system from clients.parent_id: CALL move_client to move a client, or DELETE FROM clients instead';
  END IF;
END//

-- Who may sell at a plan --------------------------------------------------------------

CREATE FUNCTION plan_owner_refusal(p_plan_id INT UNSIGNED, p_parent_id INT UNSIGNED)
  RETURNS VARCHAR(255) READS SQL DATA
  COMMENT 'The refusal in words when a client under p_parent_id may not be on plan p_plan_id, or NULL'
BEGIN
  -- the plan must be sold by the client's parent; master's children (and master) are on
  -- the operator's plans (owner NULL)
  DECLARE v_owner INT UNSIGNED DEFAULT (SELECT owner_client_id FROM rate_plans WHERE id = p_plan_id);
  DECLARE v_seller INT UNSIGNED DEFAULT IF(p_parent_id IS NULL
    OR (SELECT parent_id FROM clients WHERE id = p_parent_id) IS NULL, NULL, p_parent_id);
  IF v_owner <=> v_seller THEN
    RETURN NULL;
  ELSEIF v_seller IS NULL THEN
    RETURN 'clients.rate_plan_id: a client of master is on one of the operator''s plans (rate_plans.owner_client_id NULL): give one of those';
  END IF;
  RETURN CONCAT('clients.rate_plan_id: a client of reseller ',
                (SELECT code FROM clients WHERE id = v_seller),
                ' is on one of its plans (rate_plans.owner_client_id = ', v_seller, '): give one of those');
END//

CREATE TRIGGER rate_plans_before_insert BEFORE INSERT ON rate_plans FOR EACH ROW
BEGIN
  IF NEW.owner_client_id IS NOT NULL AND NEW.is_default = 1 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rate_plans.is_default: the default plan is the operator''s (owner_client_id NULL); a reseller''s plan cannot be it';
  END IF;
END//

CREATE TRIGGER rate_plans_before_update BEFORE UPDATE ON rate_plans FOR EACH ROW
BEGIN
  IF NEW.owner_client_id IS NOT NULL AND NEW.is_default = 1 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rate_plans.is_default: the default plan is the operator''s (owner_client_id NULL); a reseller''s plan cannot be it';
  END IF;
  IF NOT (NEW.owner_client_id <=> OLD.owner_client_id)
     AND EXISTS (SELECT 1 FROM clients WHERE rate_plan_id = NEW.id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rate_plans.owner_client_id cannot change while clients are on the plan: move them to another plan first, or make a new plan for the new owner';
  END IF;
END//

-- What each reseller pays for a call: its ledger ---------------------------------------

CREATE TRIGGER call_charges_before_insert BEFORE INSERT ON call_charges FOR EACH ROW
BEGIN
  IF NEW.cost IS NOT NULL OR NEW.sell IS NOT NULL OR NEW.live <> 1 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'call_charges rows are written by the server when it admits a call (live, not yet billed): leave them to it';
  END IF;
END//

CREATE TRIGGER call_charges_before_update BEFORE UPDATE ON call_charges FOR EACH ROW
BEGIN
  DECLARE conditions INT DEFAULT 0;
  DECLARE refusal VARCHAR(255) DEFAULT NULL;
  -- a cost the column would round is refused (as calls.cost), read only when the
  -- statement has conditions at all
  GET DIAGNOSTICS conditions = NUMBER;
  IF conditions > 0 OR @@sql_notes = 0 THEN
    SET refusal = inexact_money_refusal(input_changed_by_server('cost'),
      NOT (NEW.cost <=> OLD.cost), 'call_charges.cost', 4);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  IF NOT (NEW.call_id <=> OLD.call_id AND NEW.client_id <=> OLD.client_id AND NEW.depth <=> OLD.depth) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a call charge cannot move to another call, reseller or level';
  END IF;
  IF NEW.live > OLD.live THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'call_charges.live only ends (with its call): a finished call cannot hold a channel again';
  END IF;
END//

CREATE TRIGGER call_charges_after_update AFTER UPDATE ON call_charges FOR EACH ROW
BEGIN
  IF COALESCE(NEW.cost, 0) <> COALESCE(OLD.cost, 0) THEN
    CALL ledger_move_balance(NEW.client_id, COALESCE(OLD.cost, 0) - COALESCE(NEW.cost, 0));
  END IF;
END//

CREATE TRIGGER call_charges_before_delete BEFORE DELETE ON call_charges FOR EACH ROW
BEGIN
  IF COALESCE(OLD.cost, 0) <> 0 OR OLD.live = 1 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a charged or live call charge cannot be deleted: it is part of the reseller''s ledger';
  END IF;
END//

DELIMITER ;

-- Existing clients: children of master, as they were (order-independent, run again by 156).
UPDATE clients c JOIN clients m ON m.code = 'master'
  SET c.parent_id = m.id, c.updated_at = c.updated_at
  WHERE c.parent_id IS NULL AND c.id <> m.id;
SET @ict_tree_write = 1;
INSERT IGNORE INTO client_tree (ancestor_id, client_id, depth) SELECT id, id, 0 FROM clients;
INSERT IGNORE INTO client_tree (ancestor_id, client_id, depth)
  SELECT parent_id, id, 1 FROM clients WHERE parent_id IS NOT NULL;
SET @ict_tree_write = NULL;
