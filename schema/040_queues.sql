-- Call queues of a client and the agents in them. A queue belongs to exactly one client,
-- and so does each of its members: the composite foreign keys make a member's queue and
-- its agent rows of the SAME client. Asterisk reads them through the ast_queues and
-- ast_queue_members realtime views (043_queue_realtime.sql) under the name
-- `<client code>-<queue name>`, unique across the whole Asterisk.

CREATE TABLE queues (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Queue id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client owning the queue',
  name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Queue name inside the client, [a-z0-9_] (no dash: <code>-<name> must split one way), e.g. sales',
  asterisk_name VARCHAR(65) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'The queue''s name in Asterisk: <client code>-<name>; set automatically',
  description VARCHAR(128) NULL COMMENT 'Free text, e.g. "Sales line, weekdays"',
  strategy ENUM('ringall','leastrecent','fewestcalls','random','rrmemory','rrordered','linear','wrandom')
    NOT NULL DEFAULT 'ringall' COMMENT 'How app_queue picks the agent to ring (queues.conf strategy)',
  ring_timeout INT NOT NULL DEFAULT 15 COMMENT 'Seconds an agent''s phone rings before the next try (app_queue timeout)',
  retry_seconds INT NOT NULL DEFAULT 5 COMMENT 'Seconds between two rounds of ringing (app_queue retry); logouts are seen from the next round',
  wrapup_seconds INT NOT NULL DEFAULT 0 COMMENT 'Seconds an agent rests after a call before the queue rings it again (app_queue wrapuptime)',
  status ENUM('active','disabled') NOT NULL DEFAULT 'active' COMMENT 'disabled queues are hidden from Asterisk: calls to them are not queued',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the queue was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_queues_client_name (client_id, name),
  UNIQUE KEY uq_queues_asterisk_name (asterisk_name),
  UNIQUE KEY uq_queues_id_client (id, client_id),
  CONSTRAINT fk_queues_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_queues_name CHECK (name REGEXP '^[a-z0-9_]{1,32}$'),
  CONSTRAINT ck_queues_strategy CHECK (strategy IN ('ringall','leastrecent','fewestcalls','random','rrmemory','rrordered','linear','wrandom')),
  CONSTRAINT ck_queues_status CHECK (status IN ('active', 'disabled')),
  CONSTRAINT ck_queues_ring_timeout CHECK (ring_timeout BETWEEN 1 AND 600),
  CONSTRAINT ck_queues_retry CHECK (retry_seconds BETWEEN 1 AND 600),
  CONSTRAINT ck_queues_wrapup CHECK (wrapup_seconds BETWEEN 0 AND 3600)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Call queues of a client: inbound calls wait here for the client''s logged-in agents';

CREATE TABLE queue_members (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Membership id (Asterisk''s realtime uniqueid of the member)',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client owning the queue and the agent',
  queue_id INT UNSIGNED NOT NULL COMMENT 'Queue (same client)',
  agent_id INT UNSIGNED NOT NULL COMMENT 'Agent (same client); rung only while logged in',
  penalty INT NOT NULL DEFAULT 0 COMMENT 'app_queue penalty: agents with a lower penalty are rung first',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the agent was put in the queue (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_queue_members_queue_agent (queue_id, agent_id),
  KEY ix_queue_members_queue_client (queue_id, client_id),
  KEY ix_queue_members_agent_client (agent_id, client_id),
  KEY ix_queue_members_client (client_id),
  CONSTRAINT fk_queue_members_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_queue_members_queue_same_client FOREIGN KEY (queue_id, client_id)
    REFERENCES queues (id, client_id) ON DELETE CASCADE,
  CONSTRAINT fk_queue_members_agent_same_client FOREIGN KEY (agent_id, client_id)
    REFERENCES agents (id, client_id) ON DELETE CASCADE,
  CONSTRAINT ck_queue_members_penalty CHECK (penalty BETWEEN 0 AND 1000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Agents in a client''s queues (both of the same client)';

DELIMITER //

CREATE TRIGGER queues_before_insert BEFORE INSERT ON queues FOR EACH ROW
BEGIN
  -- Without this the error for an unknown client would be "asterisk_name cannot be null".
  IF NOT EXISTS (SELECT 1 FROM clients WHERE id = NEW.client_id) THEN
    SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'queues.client_id names no client', MYSQL_ERRNO = 1452;
  END IF;
  SET NEW.asterisk_name = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.name);
END//

CREATE TRIGGER queues_before_update BEFORE UPDATE ON queues FOR EACH ROW
BEGIN
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a queue cannot move to another client: create a new one';
  END IF;
  SET NEW.asterisk_name = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.name);
END//

CREATE TRIGGER queue_members_before_update BEFORE UPDATE ON queue_members FOR EACH ROW
BEGIN
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a queue member cannot move to another client';
  END IF;
END//

DELIMITER ;
