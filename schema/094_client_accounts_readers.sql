-- What reads a client's balance, after 093 moved it to client_accounts: the admin's
-- overview shows what people set and what the system keeps side by side, under the column
-- names it always had; create_client gives the opening balance as opening_balance. The
-- signatures of the procedures do not change.

CREATE OR REPLACE VIEW client_list AS
SELECT
  c.id AS id,
  c.code AS code,
  c.name AS name,
  a.balance AS balance,
  p.name AS plan,
  c.channel_limit AS channels,
  c.status AS status,
  (SELECT COUNT(*) FROM calls k WHERE k.client_id = c.id AND k.state = 'live') AS live_calls,
  a.balance + c.credit_limit
    - (SELECT COALESCE(SUM(k.reserved), 0) FROM calls k WHERE k.client_id = c.id AND k.state = 'live')
    AS available_credit
FROM clients c
JOIN client_accounts a ON a.client_id = c.id
JOIN rate_plans p ON p.id = c.rate_plan_id;

DROP PROCEDURE create_client;

-- Text parameters are declared with their type only (no COLLATE): Adminer's Call form
-- parses the parameter list and finds none after a COLLATE (see 097).

DELIMITER //

CREATE PROCEDURE create_client(IN p_code VARCHAR(32),
                               IN p_name VARCHAR(128),
                               IN p_plan VARCHAR(64),
                               IN p_channels INT,
                               IN p_opening_balance DECIMAL(65,30))
  COMMENT 'create_client(code, name, plan name or NULL/empty for the default, channel limit, opening balance)'
BEGIN
  DECLARE plan_id INT UNSIGNED DEFAULT NULL;
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  IF NULLIF(p_plan, '') IS NOT NULL THEN
    SET plan_id = (SELECT id FROM rate_plans WHERE name = p_plan);
    IF plan_id IS NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no rate plan with that name: see SELECT name FROM rate_plans, or give NULL for the default plan';
    END IF;
  END IF;
  INSERT INTO clients (code, name, rate_plan_id, channel_limit, opening_balance)
    VALUES (p_code, p_name, plan_id, COALESCE(p_channels, 10), COALESCE(p_opening_balance, 0));
  -- Into a variable first: a stored function in a WHERE is called for every row.
  SET cid = client_id_of(p_code);
  SELECT * FROM client_list WHERE id = cid;
END//

DELIMITER ;
