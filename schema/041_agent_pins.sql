-- Agent login from the phone: a login number (unique inside the client) and a PIN stored
-- only as a salted hash. The PIN is written through the write-only `pin` column, exactly
-- like users.password (004): the trigger hashes it into pin_hash with password_hash_of()
-- and clears the column. Wrong PINs are counted; after agent_login_policy.max_pin_failures
-- in a row the agent is locked for lockout_minutes (brute force over the phone is real).
-- Setting a new PIN, or `UPDATE agents SET locked_until = NULL`, unlocks.
-- The agent <-> extension link is extensions.agent_id (004): the agent's usual phone; an
-- agent may log in from any active extension of its own client (hot desking).

ALTER TABLE extensions
  ADD UNIQUE KEY uq_extensions_id_client (id, client_id);

ALTER TABLE agents
  ADD COLUMN login_number VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Agent number typed on the phone to log in, 2-10 digits, unique inside the client; NULL = cannot log in by phone'
    AFTER name,
  ADD COLUMN pin VARCHAR(32) NULL
    COMMENT 'Write-only: a PIN (4-10 digits) written here is hashed into pin_hash and this column is cleared'
    AFTER login_number,
  ADD COLUMN pin_hash VARCHAR(255) NULL
    COMMENT 'Salted hash of the PIN: sha512$<salt>$<hex>; never the PIN itself'
    AFTER pin,
  ADD COLUMN pin_failures INT NOT NULL DEFAULT 0
    COMMENT 'Wrong PINs in a row since the last good login or lockout'
    AFTER pin_hash,
  ADD COLUMN locked_until DATETIME NULL
    COMMENT 'Phone login refused until then (UTC) after too many wrong PINs; NULL = not locked'
    AFTER pin_failures,
  ADD UNIQUE KEY uq_agents_client_login_number (client_id, login_number),
  ADD CONSTRAINT ck_agents_login_number CHECK (login_number IS NULL OR login_number REGEXP '^[0-9]{2,10}$'),
  ADD CONSTRAINT ck_agents_pin_cleared CHECK (pin IS NULL),
  ADD CONSTRAINT ck_agents_pin_hash_format CHECK (pin_hash IS NULL OR pin_hash REGEXP '^sha512\\$[0-9a-f]{32}\\$[0-9a-f]{128}$'),
  ADD CONSTRAINT ck_agents_pin_failures CHECK (pin_failures >= 0);

CREATE TABLE agent_login_policy (
  id TINYINT UNSIGNED NOT NULL DEFAULT 1 COMMENT 'Always 1: this table has one row',
  max_pin_failures INT NOT NULL DEFAULT 5 COMMENT 'Wrong PINs in a row that lock an agent',
  lockout_minutes INT NOT NULL DEFAULT 15 COMMENT 'How long a locked agent is refused',
  tries_per_call INT NOT NULL DEFAULT 3 COMMENT 'Agent number + PIN entries one phone call may make before it is hung up',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  CONSTRAINT ck_agent_login_policy_one_row CHECK (id = 1),
  CONSTRAINT ck_agent_login_policy_failures CHECK (max_pin_failures BETWEEN 1 AND 100),
  CONSTRAINT ck_agent_login_policy_minutes CHECK (lockout_minutes BETWEEN 1 AND 10080),
  CONSTRAINT ck_agent_login_policy_tries CHECK (tries_per_call BETWEEN 1 AND 10)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Phone login rules for every agent (one row): PIN lockout and tries per call';

INSERT INTO agent_login_policy (id) VALUES (1);

DELIMITER //

CREATE TRIGGER agents_pin_before_insert BEFORE INSERT ON agents FOR EACH ROW
BEGIN
  IF NEW.pin IS NOT NULL THEN
    IF NEW.pin NOT REGEXP '^[0-9]{4,10}$' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'agents.pin must be 4-10 digits (it is typed on a phone keypad)';
    END IF;
    SET NEW.pin_hash = password_hash_of(NEW.pin), NEW.pin = NULL;
  END IF;
END//

CREATE TRIGGER agents_pin_before_update BEFORE UPDATE ON agents FOR EACH ROW
BEGIN
  IF NEW.pin IS NOT NULL THEN
    IF NEW.pin NOT REGEXP '^[0-9]{4,10}$' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'agents.pin must be 4-10 digits (it is typed on a phone keypad)';
    END IF;
    -- A new PIN is a fresh start: no failures, no lock.
    SET NEW.pin_hash = password_hash_of(NEW.pin), NEW.pin = NULL,
        NEW.pin_failures = 0, NEW.locked_until = NULL;
  END IF;
END//

DELIMITER ;
