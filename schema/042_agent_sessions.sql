-- Agent sessions: an agent logged in at an extension, from the phone (`*11`, the
-- agent_login FastAGI script) until it logs out (`*12`) or is logged out. At most one open
-- session per agent and one per extension (unique keys on generated columns). The
-- database itself refuses a session for a suspended client, a disabled agent or a
-- disabled extension, and ends the open sessions when that happens: suspending a client
-- logs all its agents out at once (recorded as ended by suspension); reactivation logs
-- nobody back in. Every login, logout and refusal is kept in agent_login_log.

CREATE TABLE agent_sessions (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Session id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client of the agent and of the extension',
  agent_id INT UNSIGNED NOT NULL COMMENT 'Agent logged in (same client)',
  extension_id INT UNSIGNED NOT NULL COMMENT 'Extension the agent logged in at (same client); queue calls ring it',
  started_at DATETIME NOT NULL COMMENT 'When the agent logged in (UTC)',
  ended_at DATETIME NULL COMMENT 'When the session ended (UTC); NULL while logged in',
  end_reason ENUM('logout','moved','replaced','suspended','agent-disabled','extension-disabled','admin') NULL
    COMMENT 'Why it ended: logout (*12), moved (the agent logged in elsewhere), replaced (another agent logged in here), suspended (client suspended), agent-disabled, extension-disabled, admin (ended by hand)',
  open_agent_id INT UNSIGNED AS (IF(ended_at IS NULL, agent_id, NULL)) STORED
    COMMENT 'agent_id while the session is open, else NULL: one open session per agent',
  open_extension_id INT UNSIGNED AS (IF(ended_at IS NULL, extension_id, NULL)) STORED
    COMMENT 'extension_id while the session is open, else NULL: one open session per extension',
  PRIMARY KEY (id),
  UNIQUE KEY uq_agent_sessions_open_agent (open_agent_id),
  UNIQUE KEY uq_agent_sessions_open_extension (open_extension_id),
  KEY ix_agent_sessions_client_open (client_id, ended_at),
  KEY ix_agent_sessions_agent_client (agent_id, client_id),
  KEY ix_agent_sessions_extension_client (extension_id, client_id),
  CONSTRAINT fk_agent_sessions_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_agent_sessions_agent_same_client FOREIGN KEY (agent_id, client_id) REFERENCES agents (id, client_id),
  CONSTRAINT fk_agent_sessions_extension_same_client FOREIGN KEY (extension_id, client_id) REFERENCES extensions (id, client_id),
  CONSTRAINT ck_agent_sessions_end CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
  CONSTRAINT ck_agent_sessions_order CHECK (ended_at IS NULL OR ended_at >= started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Agent sessions: who was logged in at which extension, from when to when (open: ended_at NULL)';

CREATE TABLE agent_login_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Log row id',
  client_id INT UNSIGNED NULL COMMENT 'Client the attempt was made in; NULL only for an unknown client code',
  client_code VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'Client code as the dialplan passed it',
  event ENUM('login','logout','refused') NOT NULL COMMENT 'login: a session started; logout: a session ended; refused: a login or logout was refused',
  reason ENUM('ok','logout','moved','replaced','suspended','agent-disabled','extension-disabled','admin',
              'unknown-client','client-suspended','foreign-extension','unknown-agent',
              'wrong-pin','locked','no-input','not-logged-in') NOT NULL
    COMMENT 'login: ok; logout: why the session ended (as agent_sessions.end_reason); refused: why (client-suspended, agent-disabled, unknown-agent, wrong-pin, locked, foreign-extension, ...)',
  agent_id INT UNSIGNED NULL COMMENT 'Agent concerned, when known (never revealed to the caller)',
  extension_id INT UNSIGNED NULL COMMENT 'Extension the request came from, when it is the client''s',
  session_id BIGINT UNSIGNED NULL COMMENT 'Session started or ended',
  login_number VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NULL COMMENT 'Agent number as typed (digits only; the PIN is never stored)',
  endpoint VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL COMMENT 'PJSIP endpoint the request came from, as Asterisk passed it',
  at DATETIME NOT NULL COMMENT 'When it happened (UTC)',
  PRIMARY KEY (id),
  KEY ix_agent_login_log_client_at (client_id, at),
  KEY ix_agent_login_log_agent_at (agent_id, at),
  KEY ix_agent_login_log_session (session_id),
  CONSTRAINT fk_agent_login_log_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_agent_login_log_agent FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE SET NULL,
  CONSTRAINT fk_agent_login_log_extension FOREIGN KEY (extension_id) REFERENCES extensions (id) ON DELETE SET NULL,
  CONSTRAINT fk_agent_login_log_session FOREIGN KEY (session_id) REFERENCES agent_sessions (id),
  CONSTRAINT ck_agent_login_log_client_known CHECK (client_id IS NOT NULL OR reason = 'unknown-client'),
  CONSTRAINT ck_agent_login_log_login_number CHECK (login_number IS NULL OR login_number REGEXP '^[0-9]{1,10}$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Every agent login, logout and refusal with its reason, per client';

DELIMITER //

-- The rules hold for hand-written rows too: no session for a suspended client, a
-- disabled agent or a disabled extension.
CREATE TRIGGER agent_sessions_before_insert BEFORE INSERT ON agent_sessions FOR EACH ROW
BEGIN
  IF NEW.ended_at IS NULL THEN
    IF (SELECT status FROM clients WHERE id = NEW.client_id) <> 'active' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its agents cannot log in';
    END IF;
    IF (SELECT status FROM agents WHERE id = NEW.agent_id) <> 'active' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the agent is disabled: it cannot log in';
    END IF;
    IF (SELECT status FROM extensions WHERE id = NEW.extension_id) <> 'active' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the extension is disabled: no agent can log in at it';
    END IF;
  END IF;
END//

CREATE TRIGGER agent_sessions_before_update BEFORE UPDATE ON agent_sessions FOR EACH ROW
BEGIN
  IF NOT (NEW.client_id <=> OLD.client_id AND NEW.agent_id <=> OLD.agent_id
          AND NEW.extension_id <=> OLD.extension_id AND NEW.started_at <=> OLD.started_at) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a session''s agent, extension and start cannot change: end it and start a new one';
  END IF;
  IF OLD.ended_at IS NOT NULL AND NOT (NEW.ended_at <=> OLD.ended_at AND NEW.end_reason <=> OLD.end_reason) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'an ended session cannot be reopened or changed';
  END IF;
  -- Ended by hand (phpMyAdmin: set ended_at only): say so.
  IF NEW.ended_at IS NOT NULL AND NEW.end_reason IS NULL THEN
    SET NEW.end_reason = 'admin';
  END IF;
END//

-- One place that ends open sessions and logs each ending.
CREATE PROCEDURE end_agent_sessions(IN p_client_id INT UNSIGNED, IN p_agent_id INT UNSIGNED,
                                    IN p_extension_id INT UNSIGNED, IN p_reason VARCHAR(32))
  COMMENT 'Internal: ends the open sessions of a client (and, if given, of one agent or one extension), logging each as a logout with p_reason'
BEGIN
  DECLARE v_now DATETIME DEFAULT UTC_TIMESTAMP();
  INSERT INTO agent_login_log (client_id, client_code, event, reason, agent_id, extension_id, session_id, endpoint, at)
    SELECT s.client_id, c.code, 'logout', p_reason, s.agent_id, s.extension_id, s.id, e.sip_username, v_now
    FROM agent_sessions s
    JOIN clients c ON c.id = s.client_id
    JOIN extensions e ON e.id = s.extension_id
    WHERE s.client_id = p_client_id AND s.ended_at IS NULL
      AND (p_agent_id IS NULL OR s.agent_id = p_agent_id)
      AND (p_extension_id IS NULL OR s.extension_id = p_extension_id);
  UPDATE agent_sessions SET ended_at = GREATEST(v_now, started_at), end_reason = p_reason
    WHERE client_id = p_client_id AND ended_at IS NULL
      AND (p_agent_id IS NULL OR agent_id = p_agent_id)
      AND (p_extension_id IS NULL OR extension_id = p_extension_id);
END//

-- Suspension logs every agent of the client out; reactivation logs nobody in.
CREATE TRIGGER clients_after_update_agent_sessions AFTER UPDATE ON clients FOR EACH ROW
  FOLLOWS clients_after_update
BEGIN
  IF NEW.status = 'suspended' AND OLD.status <> 'suspended' THEN
    CALL end_agent_sessions(NEW.id, NULL, NULL, 'suspended');
  END IF;
END//

CREATE TRIGGER agents_after_update_sessions AFTER UPDATE ON agents FOR EACH ROW
BEGIN
  IF NEW.status <> 'active' AND OLD.status = 'active' THEN
    CALL end_agent_sessions(NEW.client_id, NEW.id, NULL, 'agent-disabled');
  END IF;
END//

CREATE TRIGGER extensions_after_update_sessions AFTER UPDATE ON extensions FOR EACH ROW
BEGIN
  IF NEW.status <> 'active' AND OLD.status = 'active' THEN
    CALL end_agent_sessions(NEW.client_id, NULL, NEW.id, 'extension-disabled');
  END IF;
END//

DELIMITER ;

-- Who is logged in now, since when, at which extension, and the queue calls taken in this
-- session (answered Queue() legs whose called channel is the extension's, from the cdr
-- table: Asterisk's CDR times must be UTC, e.g. cdr_adaptive_odbc usegmtime=yes).
CREATE VIEW logged_in_agents AS
SELECT s.id AS session_id, c.code AS client, a.id AS agent_id, a.name AS agent,
       a.login_number, e.exten AS extension, e.sip_username AS endpoint,
       s.started_at AS since,
       (SELECT COUNT(*) FROM cdr r
         WHERE r.accountcode = c.code AND r.lastapp = 'Queue' AND r.disposition = 'ANSWERED'
           AND r.dstchannel LIKE CONCAT('PJSIP/', e.sip_username, '-%')
           AND r.calldate >= s.started_at) AS calls_taken
FROM agent_sessions s
JOIN clients c ON c.id = s.client_id
JOIN agents a ON a.id = s.agent_id
JOIN extensions e ON e.id = s.extension_id
WHERE s.ended_at IS NULL;
