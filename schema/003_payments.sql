-- The payments ledger. Inserting a row moves the client's balance in the same transaction;
-- rows are never updated or deleted: a correction is a new row (negative amounts allowed).

CREATE TABLE payments (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Payment id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client whose balance this payment moves',
  amount DECIMAL(14,4) NOT NULL COMMENT 'USD; positive raises the balance, negative is a correction or refund; never 0',
  kind ENUM('topup','opening','correction') NOT NULL DEFAULT 'topup'
    COMMENT 'topup: money received; opening: opening balance of a new client; correction: fixes an earlier row',
  reference VARCHAR(128) NOT NULL COMMENT 'Receipt, invoice or bank reference; unique per client so a top-up cannot be posted twice',
  note VARCHAR(255) NULL COMMENT 'Free text for admins',
  created_by VARCHAR(128) NULL COMMENT 'Database user who inserted the row; set automatically',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the payment was recorded (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_payments_client_reference (client_id, reference),
  CONSTRAINT fk_payments_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_payments_amount_not_zero CHECK (amount <> 0),
  CONSTRAINT ck_payments_reference_not_blank CHECK (TRIM(reference) <> ''),
  CONSTRAINT ck_payments_kind CHECK (kind IN ('topup', 'opening', 'correction'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Payments ledger: top-ups and corrections; insert-only, each row moves clients.balance';

DELIMITER //

CREATE TRIGGER payments_before_insert BEFORE INSERT ON payments FOR EACH ROW
BEGIN
  SET NEW.created_by = USER();
END//

CREATE TRIGGER payments_after_insert AFTER INSERT ON payments FOR EACH ROW
BEGIN
  -- The opening payment records a balance the client row already holds.
  IF @ict_opening_client <=> NEW.client_id THEN
    SET @ict_opening_client = NULL;
  ELSE
    CALL ledger_move_balance(NEW.client_id, NEW.amount);
  END IF;
END//

CREATE TRIGGER payments_before_update BEFORE UPDATE ON payments FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'payments are never changed: insert a correction row (kind=correction) instead';
END//

CREATE TRIGGER payments_before_delete BEFORE DELETE ON payments FOR EACH ROW
BEGIN
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'payments are never deleted: insert a correction row (kind=correction) instead';
END//

-- A client inserted with a balance gets that balance recorded as its opening payment.
CREATE TRIGGER clients_after_insert AFTER INSERT ON clients FOR EACH ROW
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    SET @ict_opening_client = NULL;
    RESIGNAL;
  END;
  IF NEW.balance <> 0 THEN
    SET @ict_opening_client = NEW.id;
    INSERT INTO payments (client_id, amount, kind, reference)
      VALUES (NEW.id, NEW.balance, 'opening', 'opening balance');
  END IF;
END//

DELIMITER ;
