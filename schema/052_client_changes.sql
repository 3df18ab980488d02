-- A change log of the client changes that must end live calls, written by a trigger so
-- that any session and any tool (plain SQL, a procedure, phpMyAdmin) is seen. Servers
-- with AMI poll it with one indexed range read (id > last id seen) per second.

CREATE TABLE client_changes (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Position in the log; each server remembers the last id it has acted on',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client whose live calls must end',
  kind ENUM('suspended','no-credit') NOT NULL
    COMMENT 'suspended: the status became suspended; no-credit: the balance no longer covers the credit reserved by live calls (clients with end_calls_without_credit = 1)',
  created_at DATETIME(3) NOT NULL COMMENT 'When the change was committed (UTC); rows older than a day are pruned',
  PRIMARY KEY (id),
  KEY ix_client_changes_created (created_at),
  CONSTRAINT fk_client_changes_client FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Log of suspensions and credit exhaustion, read by the servers that end live calls over AMI';

DELIMITER //

CREATE TRIGGER clients_after_update_changes AFTER UPDATE ON clients FOR EACH ROW
BEGIN
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    INSERT INTO client_changes (client_id, kind, created_at)
      VALUES (NEW.id, 'suspended', UTC_TIMESTAMP(3));
  ELSEIF NEW.end_calls_without_credit = 1
     AND (NEW.balance < OLD.balance OR OLD.end_calls_without_credit = 0)
     AND NEW.balance + NEW.credit_limit < (SELECT COALESCE(SUM(reserved), 0) FROM calls
                                           WHERE client_id = NEW.id AND state = 'live') THEN
    INSERT INTO client_changes (client_id, kind, created_at)
      VALUES (NEW.id, 'no-credit', UTC_TIMESTAMP(3));
  END IF;
END//

DELIMITER ;
