-- A reseller short of credit ends its subtree's live calls over AMI (issue 23), as a
-- client's shortage ends its own (051/093/147). What a reseller's level holds is its own
-- live calls' reservations plus what its subtree's live calls hold of it
-- (call_charges.reserved, live = 1, schema/120). The change-log row names the reseller;
-- AMI enforcement (store/call_watch.py) ends the calls of its whole subtree.
--
-- Re-creates the client_accounts AFTER UPDATE slot (147) and log_client_without_credit
-- (093) with their old bodies plus the reseller's charges. Runs after 147-150 (and 120)
-- on every database.

DELIMITER //

CREATE OR REPLACE PROCEDURE log_client_without_credit(IN p_client_id INT UNSIGNED, IN p_credit_limit DECIMAL(14,4))
  COMMENT 'Internal: writes a no-credit row to client_changes when the balance plus p_credit_limit is below the credit the client''s live calls (and, for a reseller, its subtree''s) hold'
BEGIN
  IF (SELECT balance FROM client_accounts WHERE client_id = p_client_id) + p_credit_limit
     < (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = p_client_id AND state = 'live')
       + (SELECT COALESCE(SUM(reserved), 0) FROM call_charges WHERE client_id = p_client_id AND live = 1) THEN
    INSERT INTO client_changes (client_id, kind, created_at)
      VALUES (p_client_id, 'no-credit', UTC_TIMESTAMP(3));
  END IF;
END//

CREATE OR REPLACE TRIGGER client_accounts_after_update AFTER UPDATE ON client_accounts FOR EACH ROW
BEGIN
  DECLARE v_credit_limit DECIMAL(14,4);
  DECLARE v_threshold DECIMAL(14,4);
  -- The clients row is read once, without a lock in the server's READ COMMITTED sessions.
  IF NEW.balance < OLD.balance THEN
    -- SET v = (SELECT ...), never SELECT ... INTO after a write (schema 099).
    SET v_credit_limit = (SELECT IF(end_calls_without_credit = 1, credit_limit, NULL)
                            FROM clients WHERE id = NEW.client_id);
    SET v_threshold = (SELECT low_balance_threshold FROM clients WHERE id = NEW.client_id);
    -- Fell below what the live calls hold: the change log, for clients with
    -- end_calls_without_credit = 1. reseller_charges (164): a reseller's level also
    -- holds its subtree's live charges.
    IF v_credit_limit IS NOT NULL AND NEW.balance + v_credit_limit
       < (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = NEW.client_id AND state = 'live')
         + (SELECT COALESCE(SUM(reserved), 0) FROM call_charges WHERE client_id = NEW.client_id AND live = 1) THEN
      INSERT INTO client_changes (client_id, kind, created_at)
        VALUES (NEW.client_id, 'no-credit', UTC_TIMESTAMP(3));
    END IF;
    -- Fell below the low-balance threshold (135): an alert in the outbox, once per crossing.
    IF v_threshold IS NOT NULL AND OLD.balance >= v_threshold AND NEW.balance < v_threshold THEN
      CALL note_balance_move(NEW.client_id, OLD.balance, NEW.balance);
    END IF;
  END IF;
END//

DELIMITER ;
