-- The operator's SQL for resellers (issue 23): move a client (and its whole subtree) under
-- another reseller, and see each reseller's margin per day. Only new objects (procedures,
-- a view, an index): the same result before or after 140-150. The reseller_tree view
-- (which reads client_accounts, 093) is in 166, so it is made after 093 whatever order
-- a database gets the files in.
--
-- move_client(client code, new parent code) / move_client_to_plan(..., plan name):
-- * refused in words while the client or anyone in its subtree has a live call (a live
--   call holds credit and channels at every level above it, as admitted: moving it would
--   release them from the wrong resellers), into its own subtree (a cycle: 156 refuses
--   too), for master, and when the client's plan is not sold by the new parent (then move
--   it onto one of the new parent's plans in the same step: move_client_to_plan);
-- * the subtree's client rows are locked (FOR UPDATE, deepest first, as an admission
--   locks levels from the calling client up) before the live calls are counted: an
--   admission locks its client's row first, so none can start in the subtree until the
--   move commits; the new parent's path is locked too (nearest first, master's row not),
--   so two moves crossing each other (A under B, B under A) take turns and the second
--   is refused;
-- * the UPDATE of clients.parent_id passes 156's guard through @ict_move_client and its
--   trigger moves the subtree's client_tree rows; nothing else of the subtree is written
--   (its statuses, plans, balances stay), and a suspended reseller above the new place
--   stops the moved subtree at once (163 reads the tree, it stores nothing).
-- Called with autocommit on (Adminer's Call form, the mariadb client) it runs as one
-- transaction of its own and retries a deadlock (1213) up to 10 times, as 099's
-- procedures do; inside the caller's transaction it joins it and passes a 1213 on.

DELIMITER //

CREATE PROCEDURE lock_clients_bottom_up(IN p_subtree_of INT UNSIGNED, IN p_path_of INT UNSIGNED)
  COMMENT 'Internal, for move_client: locks (FOR UPDATE) the clients rows of p_subtree_of''s subtree deepest first, then of p_path_of and the resellers above it nearest first (master''s row is not locked)'
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_id INT UNSIGNED;
  DECLARE v_got INT UNSIGNED;
  DECLARE levels CURSOR FOR
    SELECT client_id FROM (
      SELECT t.client_id, 0 AS part, 255 - t.depth AS rank_in_part
        FROM client_tree t JOIN clients c ON c.id = t.client_id
       WHERE t.ancestor_id = p_subtree_of AND c.parent_id IS NOT NULL
      UNION ALL
      SELECT t.ancestor_id, 1, t.depth
        FROM client_tree t JOIN clients c ON c.id = t.ancestor_id
       WHERE t.client_id = p_path_of AND c.parent_id IS NOT NULL) levels
    ORDER BY part, rank_in_part, client_id;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN levels;
  lock_loop: LOOP
    FETCH levels INTO v_id;
    IF done THEN LEAVE lock_loop; END IF;
    SELECT id INTO v_got FROM clients WHERE id = v_id FOR UPDATE;
    SET done = 0;
  END LOOP;
  CLOSE levels;
END//

CREATE PROCEDURE move_client_to_plan(IN p_code VARCHAR(32), IN p_parent_code VARCHAR(32),
                                     IN p_plan_name VARCHAR(64))
  COMMENT 'move_client_to_plan(client code, new parent code, plan name or empty): move a client and its subtree under another reseller, onto one of the new parent''s plans (empty: keep its plan); refused while the subtree has live calls'
BEGIN
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  DECLARE pid INT UNSIGNED DEFAULT NULL;
  DECLARE v_plan INT UNSIGNED DEFAULT NULL;
  DECLARE v_parent_of INT UNSIGNED DEFAULT NULL;
  DECLARE v_live INT DEFAULT 0;
  DECLARE v_cycle INT DEFAULT 0;
  DECLARE v_refusal VARCHAR(255) DEFAULT NULL;
  DECLARE v_own_tx TINYINT DEFAULT @@SESSION.autocommit = 1 AND @@SESSION.in_transaction = 0;
  DECLARE may_retry TINYINT DEFAULT v_own_tx;
  DECLARE tries INT DEFAULT 0;
  DECLARE done TINYINT DEFAULT 0;

  SELECT id INTO cid FROM clients WHERE code = CONVERT(p_code USING ascii) COLLATE ascii_bin;
  IF cid IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'move_client: no client with that code: see SELECT code, path FROM reseller_tree';
  END IF;
  SELECT id INTO pid FROM clients WHERE code = CONVERT(p_parent_code USING ascii) COLLATE ascii_bin;
  IF pid IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'move_client: no new parent with that code: see SELECT code, path FROM reseller_tree';
  END IF;
  SELECT parent_id INTO v_parent_of FROM clients WHERE id = cid;
  IF v_parent_of IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'move_client: master is the root of the tree and cannot move';
  END IF;
  IF COALESCE(p_plan_name, '') <> '' THEN
    SELECT id INTO v_plan FROM rate_plans WHERE name = p_plan_name;
    IF v_plan IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'move_client: no rate plan with that name: see SELECT name, owner_client_id FROM rate_plans';
    END IF;
  END IF;

  WHILE NOT done DO
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_errno INT DEFAULT 0;
        GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO;
        SET @ict_move_client = NULL;
        IF v_own_tx THEN
          ROLLBACK;
        END IF;
        SET tries = tries + 1;
        IF v_errno <> 1213 OR NOT may_retry OR tries >= 10 THEN
          RESIGNAL;
        END IF;
        DO SLEEP(0.01 * tries);
      END;

      IF v_own_tx THEN
        START TRANSACTION;
      END IF;
      -- the subtree (the client and everyone below it), deepest first, then the new
      -- parent and the resellers above it, nearest first: the order an admission locks
      -- levels in (from the calling client up), so a move and a call wait for each other
      -- instead of deadlocking
      CALL lock_clients_bottom_up(cid, pid);
      SELECT COUNT(*) INTO v_cycle FROM client_tree
       WHERE ancestor_id = cid AND client_id = pid LOCK IN SHARE MODE;
      IF v_cycle > 0 THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'move_client: a client cannot move under itself or one of its own clients (a cycle): give a new parent outside its subtree (SELECT code, path FROM reseller_tree)';
      END IF;
      SELECT COUNT(*) INTO v_live FROM client_tree t
        JOIN calls k ON k.client_id = t.client_id AND k.state = 'live'
       WHERE t.ancestor_id = cid LOCK IN SHARE MODE;
      IF v_live > 0 THEN
        SET v_refusal = CONCAT('move_client: ', p_code, ' and its clients have ', v_live,
          ' live call(s), which hold credit and channels of the resellers above them: wait until they end (SELECT subtree_live_calls FROM reseller_tree WHERE code = ''', p_code, '''), or suspend ', p_code, ' first to stop new ones');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_refusal;
      END IF;
      SET v_refusal = plan_owner_refusal(COALESCE(v_plan, (SELECT rate_plan_id FROM clients WHERE id = cid)), pid);
      IF v_refusal IS NOT NULL THEN
        SET v_refusal = CONCAT('move_client: ', p_code, '''s plan is not sold by ', p_parent_code,
          ': CALL move_client_to_plan(''', p_code, ''', ''', p_parent_code,
          ''', <a plan of ', p_parent_code, '>) instead (SELECT name FROM rate_plans WHERE owner_client_id ',
          IF((SELECT parent_id FROM clients WHERE id = pid) IS NULL, 'IS NULL', CONCAT('= ', pid)), ')');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v_refusal;
      END IF;
      SET @ict_move_client = cid;
      UPDATE clients SET parent_id = pid, rate_plan_id = COALESCE(v_plan, rate_plan_id),
                         updated_at = updated_at
       WHERE id = cid;
      SET @ict_move_client = NULL;
      IF v_own_tx THEN
        COMMIT;
      END IF;
      SET done = 1;
    END;
  END WHILE;
  SELECT * FROM reseller_tree WHERE client_id = cid;
END//

CREATE PROCEDURE move_client(IN p_code VARCHAR(32), IN p_parent_code VARCHAR(32))
  COMMENT 'move_client(client code, new parent code): move a client and its whole subtree under another reseller (its plan must be one the new parent sells); refused while the subtree has live calls'
BEGIN
  CALL move_client_to_plan(p_code, p_parent_code, NULL);
END//

DELIMITER ;

-- Margins: per reseller per day (UTC, the day the call was billed): calls billed to it,
-- minutes (the seconds its own plan billed it for), what its clients paid it (sell), what
-- it paid its parent (cost), and the difference. Only settled charges count; an emergency
-- call counts with 0 everywhere. A WHERE on reseller and day is pushed into the grouping
-- and read through the index below (client_id, settled_at range).
ALTER TABLE call_charges
  ADD KEY ix_call_charges_margin (client_id, settled_at, billable_seconds, sell, cost);

CREATE VIEW reseller_margins_daily AS
SELECT
  h.client_id AS reseller_id,
  r.code AS reseller,
  CAST(h.settled_at AS DATE) AS day,
  COUNT(*) AS calls,
  ROUND(SUM(COALESCE(h.billable_seconds, 0)) / 60, 2) AS minutes,
  SUM(COALESCE(h.sell, 0)) AS sell,
  SUM(COALESCE(h.cost, 0)) AS cost,
  SUM(COALESCE(h.sell, 0)) - SUM(COALESCE(h.cost, 0)) AS margin
FROM call_charges h
JOIN clients r ON r.id = h.client_id
WHERE h.settled_at IS NOT NULL
GROUP BY h.client_id, r.code, CAST(h.settled_at AS DATE);
