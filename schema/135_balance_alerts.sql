-- Low-balance, suspension and reactivation alerts (issue 24): an outbox.
--
-- A client's balance falling below its low_balance_threshold, a suspension and a
-- reactivation each write ONE alert_events row in the SAME transaction that made the
-- change (so a rolled-back payment or call leaves no alert, and a committed one always
-- has its alert), plus one alert_deliveries row per destination that wants it. The
-- notifier (`ictcontact notifier`, or `serve --alerts`) claims pending deliveries with
-- SELECT ... FOR UPDATE SKIP LOCKED and a lease, sends them, and marks them delivered;
-- a failure is retried with exponential backoff; nothing is ever dropped.
--
-- Once per crossing: an alert is written when a balance move takes the balance from at or
-- above the threshold to below it (old >= threshold > new), or when the threshold is set
-- or raised above a balance that was not below the old one. Moving back to or above the
-- threshold re-arms it: the next fall below writes the next alert. Nothing else is kept.
--
-- WIRING: the crossing rule is note_balance_move(client, old, new), called from ONE
-- trigger on the table that holds the balance (client_accounts_after_update, schema 147).
-- Suspension, reactivation and threshold changes are note_client_change(...), called by one
-- trigger on clients (clients_after_update, schema 147). Where the balance lives is read in
-- one place: alert_balance_of().

ALTER TABLE clients
  ADD COLUMN low_balance_threshold DECIMAL(14,4) NULL
    COMMENT 'USD: an alert is sent when the balance falls below this (once per crossing; a top-up back to or above it re-arms); NULL = no low-balance alert'
    AFTER credit_limit;

CREATE TABLE alert_destinations (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Destination id',
  client_id INT UNSIGNED NULL COMMENT 'Client whose alerts go here; NULL = the alerts of every client (the operator''s own mailbox or system)',
  kind ENUM('email','webhook') NOT NULL COMMENT 'email: sent over SMTP to address; webhook: JSON POSTed to address, signed with secret',
  address VARCHAR(1024) NOT NULL COMMENT 'E-mail address (email) or http(s) URL (webhook)',
  secret VARCHAR(255) NULL COMMENT 'Webhook only: shared secret of the HMAC-SHA256 signature (16 characters at least); never shown to clients',
  events SET('low-balance','suspended','reactivated') NOT NULL DEFAULT 'low-balance,suspended,reactivated'
    COMMENT 'Which kinds of alert this destination receives',
  enabled TINYINT(1) NOT NULL DEFAULT 1 COMMENT '0: new alerts are not queued for it (queued ones are still sent)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the destination was added (UTC)',
  PRIMARY KEY (id),
  KEY ix_alert_destinations_client (client_id),
  CONSTRAINT fk_alert_destinations_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_alert_destinations_kind CHECK (kind IN ('email', 'webhook')),
  CONSTRAINT ck_alert_destinations_enabled CHECK (enabled IN (0, 1)),
  CONSTRAINT ck_alert_destinations_email CHECK (kind <> 'email' OR address REGEXP '^[^@[:space:]<>,;]+@[^@[:space:]<>,;]+$'),
  CONSTRAINT ck_alert_destinations_url CHECK (kind <> 'webhook' OR address REGEXP '^https?://[^[:space:]]+$'),
  CONSTRAINT ck_alert_destinations_secret CHECK (kind <> 'webhook' OR COALESCE(CHAR_LENGTH(secret), 0) >= 16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Where alerts are sent (operator-only): e-mail addresses and signed webhooks, per client or for all';

CREATE TABLE alert_events (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Event id (order of the outbox)',
  dedupe_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'UUID sent with every delivery of this event: a receiver that gets it twice (at-least-once) keeps one',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client the event is about',
  kind ENUM('low-balance','suspended','reactivated') NOT NULL
    COMMENT 'low-balance: the balance fell below the threshold; suspended / reactivated: the status changed',
  balance DECIMAL(14,4) NULL COMMENT 'USD balance right after the change',
  threshold DECIMAL(14,4) NULL COMMENT 'USD low_balance_threshold at the time (low-balance events)',
  created_at DATETIME(6) NOT NULL COMMENT 'When the change happened (UTC); committed with it',
  PRIMARY KEY (id),
  UNIQUE KEY uq_alert_events_dedupe (dedupe_id),
  KEY ix_alert_events_client (client_id, id),
  CONSTRAINT fk_alert_events_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_alert_events_kind CHECK (kind IN ('low-balance', 'suspended', 'reactivated'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Alert outbox: written in the transaction that moved the balance or the status; insert-only';

CREATE TABLE alert_deliveries (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Delivery id',
  event_id BIGINT UNSIGNED NOT NULL COMMENT 'The event to send',
  destination_id INT UNSIGNED NOT NULL COMMENT 'Where to send it',
  state ENUM('pending','delivered') NOT NULL DEFAULT 'pending'
    COMMENT 'pending: to send (again); delivered: the mail server or webhook accepted it',
  attempts INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'Sends started so far (a notifier killed mid-send counts one)',
  next_attempt_at DATETIME(6) NOT NULL COMMENT 'Not sent before this (UTC): backoff after a failure',
  lease_until DATETIME(6) NULL COMMENT 'A notifier is sending it until then (UTC); after that another may take it',
  leased_by VARCHAR(64) NULL COMMENT 'Name of the notifier holding or last holding the lease',
  delivered_at DATETIME(6) NULL COMMENT 'When it was accepted (UTC)',
  last_error VARCHAR(255) NULL COMMENT 'Why the last send failed, for the operator',
  PRIMARY KEY (id),
  UNIQUE KEY uq_alert_deliveries_event_destination (event_id, destination_id),
  KEY ix_alert_deliveries_due (state, next_attempt_at),
  KEY ix_alert_deliveries_destination (destination_id),
  CONSTRAINT fk_alert_deliveries_event FOREIGN KEY (event_id) REFERENCES alert_events (id),
  CONSTRAINT fk_alert_deliveries_destination FOREIGN KEY (destination_id) REFERENCES alert_destinations (id),
  CONSTRAINT ck_alert_deliveries_state CHECK (state IN ('pending', 'delivered'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='One row per (alert, destination): what the notifier still has to send, and what it sent';

DELIMITER //

CREATE FUNCTION alert_balance_of(p_client_id INT UNSIGNED) RETURNS DECIMAL(14,4)
  READS SQL DATA
  COMMENT 'Internal, for the alert routines: the client''s balance, read where the balance lives'
BEGIN
  -- WHERE THE BALANCE LIVES: retarget this one read if the balance moves to another table.
  RETURN (SELECT balance FROM client_accounts WHERE client_id = p_client_id);
END//

CREATE PROCEDURE alert_event_add(IN p_client_id INT UNSIGNED, IN p_kind VARCHAR(16),
                                 IN p_balance DECIMAL(14,4), IN p_threshold DECIMAL(14,4))
  COMMENT 'Internal, for the alert triggers only: writes one alert and queues it for every destination that wants it'
BEGIN
  DECLARE v_event_id BIGINT UNSIGNED;
  DECLARE v_now DATETIME(6) DEFAULT UTC_TIMESTAMP(6);
  INSERT INTO alert_events (dedupe_id, client_id, kind, balance, threshold, created_at)
    VALUES (UUID(), p_client_id, p_kind, p_balance, p_threshold, v_now);
  SET v_event_id = LAST_INSERT_ID();
  INSERT INTO alert_deliveries (event_id, destination_id, next_attempt_at)
    SELECT v_event_id, d.id, v_now FROM alert_destinations d
     WHERE d.enabled = 1 AND (d.client_id IS NULL OR d.client_id = p_client_id)
       AND FIND_IN_SET(p_kind, d.events) > 0;
END//

CREATE PROCEDURE note_balance_move(IN p_client_id INT UNSIGNED, IN p_old_balance DECIMAL(14,4),
                                   IN p_new_balance DECIMAL(14,4))
  COMMENT 'Internal, for the trigger on the balance: a low-balance alert when this move crosses the threshold downwards'
BEGIN
  DECLARE v_threshold DECIMAL(14,4);
  -- Only a fall can cross downwards; a rise re-arms by itself (the next fall from at or
  -- above the threshold crosses again). Most moves stop here or at the NULL threshold.
  IF p_new_balance < p_old_balance THEN
    SET v_threshold = (SELECT low_balance_threshold FROM clients WHERE id = p_client_id);
    IF v_threshold IS NOT NULL AND p_old_balance >= v_threshold AND p_new_balance < v_threshold THEN
      CALL alert_event_add(p_client_id, 'low-balance', p_new_balance, v_threshold);
    END IF;
  END IF;
END//

CREATE PROCEDURE note_client_change(IN p_client_id INT UNSIGNED,
                                    IN p_old_status VARCHAR(16), IN p_new_status VARCHAR(16),
                                    IN p_old_threshold DECIMAL(14,4), IN p_new_threshold DECIMAL(14,4))
  COMMENT 'Internal, for the trigger on clients: suspension and reactivation alerts; a low-balance alert when the threshold is raised above the balance'
BEGIN
  DECLARE v_balance DECIMAL(14,4);
  IF p_new_status = 'suspended' AND p_old_status <> 'suspended' THEN
    CALL alert_event_add(p_client_id, 'suspended', alert_balance_of(p_client_id), NULL);
  ELSEIF p_new_status = 'active' AND p_old_status = 'suspended' THEN
    CALL alert_event_add(p_client_id, 'reactivated', alert_balance_of(p_client_id), NULL);
  END IF;
  IF p_new_threshold IS NOT NULL AND NOT (p_new_threshold <=> p_old_threshold) THEN
    SET v_balance = alert_balance_of(p_client_id);
    -- below the new threshold and not below the old one (or none): that is a crossing too
    IF v_balance < p_new_threshold AND (p_old_threshold IS NULL OR v_balance >= p_old_threshold) THEN
      CALL alert_event_add(p_client_id, 'low-balance', v_balance, p_new_threshold);
    END IF;
  END IF;
END//

-- A destination that could never work is refused in words (the CHECKs stay as a backstop).
CREATE PROCEDURE alert_destination_check(IN p_kind VARCHAR(16), IN p_address VARCHAR(1024),
                                         IN p_secret VARCHAR(255))
  COMMENT 'Internal, for the alert_destinations triggers: refuses an address or secret that cannot work'
BEGIN
  IF p_kind = 'email' AND NOT (p_address REGEXP '^[^@[:space:]<>,;]+@[^@[:space:]<>,;]+$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'an email destination needs one plain address (name@example.net) in address: no display name, no list';
  END IF;
  IF p_kind = 'webhook' AND NOT (p_address REGEXP '^https?://[^[:space:]]+$') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a webhook destination needs an http:// or https:// URL in address';
  END IF;
  IF p_kind = 'webhook' AND COALESCE(CHAR_LENGTH(p_secret), 0) < 16 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a webhook destination needs a shared secret of 16 characters or more in secret (the receiver checks the signature with it)';
  END IF;
END//

CREATE TRIGGER alert_destinations_before_insert BEFORE INSERT ON alert_destinations FOR EACH ROW
BEGIN
  CALL alert_destination_check(NEW.kind, NEW.address, NEW.secret);
END//

CREATE TRIGGER alert_destinations_before_update BEFORE UPDATE ON alert_destinations FOR EACH ROW
BEGIN
  CALL alert_destination_check(NEW.kind, NEW.address, NEW.secret);
END//

-- WIRING: the calls of note_balance_move (from client_accounts' AFTER UPDATE, where every
-- balance move ends) and of note_client_change (from clients' AFTER UPDATE), and the
-- exactness of low_balance_threshold (clients' BEFORE INSERT / UPDATE), are blocks of the
-- one trigger per slot that 147 makes for those tables.

DELIMITER ;

-- Clients see their own alerts (never the destinations, nor another client's alerts).
INSERT INTO tenant_views (name, writable, description, definition) VALUES ('alerts', 0,
 'Your alerts: low balance, suspension, reactivation, and whether each was delivered',
 'SELECT e.dedupe_id, e.kind, e.balance, e.threshold, e.created_at, (SELECT COUNT(*) FROM alert_deliveries d WHERE d.event_id = e.id AND d.state = ''pending'') AS pending_deliveries FROM alert_events e WHERE e.client_id = (SELECT client_id FROM tenant_session)');

INSERT INTO tenant_privileges (view_name, role, privilege, columns) VALUES
 ('alerts', 'agent', 'SELECT', NULL);

CALL refresh_tenant_world();
