-- The payment floor check without a SELECT ... INTO: an admin's correction during call load
-- froze a Galera cluster (issue 19).
-- On a Galera node, a session with wsrep_sync_wait = 1 (the product's own sessions, and
-- DBAs who follow docs/galera.md) makes every SELECT *statement* run outside an open
-- transaction wait until its node has applied everything committed before it (a causal
-- read). In an autocommitted statement (a tool's INSERT, or each statement of a CALL made
-- with autocommit on, as Adminer, phpMyAdmin and the mariadb client do) that includes a
-- trigger's `SELECT ... INTO`, and 090's floor check ran one right after the balance moved,
-- holding the client's row lock. A replicated write of the same client (an admission or a
-- settle from another node) then waits for that lock in the applier, the causal read waits
-- for the applier, and nothing moves until the read gives up: flow control stops every
-- node (tests/faults/test_galera_admin.py saw settles stop for 13 s, servers answer
-- `unavailable` and an admin's CALL hang 11 s). A subquery inside IF (...) or SET is no
-- statement of its own and makes no causal wait.
-- The rule for every trigger, and for a procedure's statements after its first write:
-- read with IF (SELECT ...) or SET v = (SELECT ...), never SELECT ... INTO.

DELIMITER //

CREATE OR REPLACE TRIGGER payments_after_insert_floor AFTER INSERT ON payments FOR EACH ROW
  FOLLOWS payments_after_insert
BEGIN
  -- Checked after the balance moved: that UPDATE holds the client's row, so no other
  -- transaction moves it in between.
  IF NEW.amount < 0 AND NEW.allow_below_floor = 0
     AND (SELECT a.balance + c.credit_limit FROM client_accounts a JOIN clients c ON c.id = a.client_id
           WHERE a.client_id = NEW.client_id) < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this payment would take the balance below its floor (-credit_limit): correct by less, or set allow_below_floor = 1 to allow it';
  END IF;
END//

DELIMITER ;

-- add_payment and set_client_status (suspend_client, activate_client) again, as in 091,
-- with two changes for Galera:
-- * Called with autocommit on (as the tools call them), each statement of a procedure is a
--   transaction of its own, and the one that writes the client may lose certification to
--   an admission or a settle of the same client committed on another node meanwhile
--   (error 1213, "Deadlock found"; nothing of it was applied). The procedure then runs the
--   lookup and the write again, up to 10 times with a growing pause (10-100 ms), instead
--   of handing the admin an error to repeat by hand. Inside the caller's own transaction
--   (autocommit off, or after BEGIN) a 1213 has rolled back the caller's earlier work too,
--   so it is passed on unchanged: the caller repeats the whole transaction.
-- * The code lookup is a plain read (SELECT ... INTO, before the first write, so its
--   causal wait holds no lock), not client_id_of() in a SET, which share-locks the
--   client's row: a replicated write of that client had to abort the statement to pass.

DROP PROCEDURE add_payment;
DROP PROCEDURE set_client_status;

DELIMITER //

CREATE PROCEDURE add_payment(IN p_code VARCHAR(32),
                             IN p_amount DECIMAL(65,30),
                             IN p_reference VARCHAR(128))
  COMMENT 'add_payment(client code, amount USD, reference): a top-up (negative: a correction, never below the balance floor)'
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT inexact_money_refusal(
    input_changed_by_server('p_amount'), 1, 'payments.amount', 4);
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  DECLARE may_retry TINYINT DEFAULT @@SESSION.autocommit = 1 AND @@SESSION.in_transaction = 0;
  DECLARE tries INT DEFAULT 0;
  DECLARE done TINYINT DEFAULT 0;
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
  WHILE NOT done DO
    BEGIN
      DECLARE EXIT HANDLER FOR 1213
      BEGIN
        SET tries = tries + 1;
        IF NOT may_retry OR tries >= 10 THEN
          RESIGNAL;
        END IF;
        DO SLEEP(0.01 * tries);
      END;
      -- A plain read, not client_id_of() in a SET (which share-locks the row: a replicated
      -- write of this client would have to abort this statement to get past it).
      SET cid = NULL;
      SELECT id INTO cid FROM clients WHERE code = CONVERT(p_code USING ascii) COLLATE ascii_bin;
      IF cid IS NULL THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code: see SELECT code FROM clients';
      END IF;
      INSERT INTO payments (client_id, amount, kind, reference)
        VALUES (cid, p_amount, IF(p_amount < 0, 'correction', 'topup'), p_reference);
      SET done = 1;
    END;
  END WHILE;
  SELECT * FROM client_list WHERE id = cid;
END//

CREATE PROCEDURE set_client_status(IN p_code VARCHAR(32),
                                   IN p_status VARCHAR(16))
  COMMENT 'set_client_status(client code, active|suspended): the same as UPDATE clients SET status'
BEGIN
  DECLARE cid INT UNSIGNED DEFAULT NULL;
  DECLARE may_retry TINYINT DEFAULT @@SESSION.autocommit = 1 AND @@SESSION.in_transaction = 0;
  DECLARE tries INT DEFAULT 0;
  DECLARE done TINYINT DEFAULT 0;
  WHILE NOT done DO
    BEGIN
      DECLARE EXIT HANDLER FOR 1213
      BEGIN
        SET tries = tries + 1;
        IF NOT may_retry OR tries >= 10 THEN
          RESIGNAL;
        END IF;
        DO SLEEP(0.01 * tries);
      END;
      -- A plain read, not client_id_of() in a SET (which share-locks the row: a replicated
      -- write of this client would have to abort this statement to get past it).
      SET cid = NULL;
      SELECT id INTO cid FROM clients WHERE code = CONVERT(p_code USING ascii) COLLATE ascii_bin;
      IF cid IS NULL THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no client with that code: see SELECT code FROM clients';
      END IF;
      UPDATE clients SET status = p_status WHERE id = cid;
      SET done = 1;
    END;
  END WHILE;
  SELECT * FROM client_list WHERE id = cid;
END//

DELIMITER ;
