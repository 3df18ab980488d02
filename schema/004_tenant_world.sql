-- Each tenant's own world: agents, user logins, SIP extensions, campaigns, contacts.
-- Every row belongs to exactly one client; composite foreign keys make a row that links
-- two of them (an extension's agent, a contact's campaign) belong to the same client.

CREATE TABLE agents (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Agent id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client the agent works for',
  name VARCHAR(128) NOT NULL COMMENT 'Agent display name',
  status ENUM('active','disabled') NOT NULL DEFAULT 'active' COMMENT 'disabled agents cannot log in or take calls',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the agent was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_agents_client_name (client_id, name),
  UNIQUE KEY uq_agents_id_client (id, client_id),
  CONSTRAINT fk_agents_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_agents_name_not_blank CHECK (TRIM(name) <> '')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Call-centre agents of a client';

CREATE TABLE users (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'User id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client the login belongs to',
  agent_id INT UNSIGNED NULL COMMENT 'Agent this login is for, if any (same client)',
  username VARCHAR(64) NOT NULL COMMENT 'Login name, unique across all clients',
  password VARCHAR(255) NULL
    COMMENT 'Write-only: a plain password written here is hashed into password_hash and this column is cleared',
  password_hash VARCHAR(255) NULL
    COMMENT 'Salted hash: sha512$<salt>$<hex>; never a plain-text password',
  role ENUM('admin','supervisor','agent') NOT NULL DEFAULT 'agent' COMMENT 'What the login may do in the client''s account',
  status ENUM('active','disabled') NOT NULL DEFAULT 'active' COMMENT 'disabled logins are refused',
  last_login_at DATETIME NULL COMMENT 'Last successful login (UTC)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the login was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_users_username (username),
  KEY ix_users_client (client_id),
  KEY ix_users_agent_client (agent_id, client_id),
  CONSTRAINT fk_users_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_users_agent_same_client FOREIGN KEY (agent_id, client_id) REFERENCES agents (id, client_id),
  CONSTRAINT ck_users_password_cleared CHECK (password IS NULL),
  CONSTRAINT ck_users_hash_format CHECK (password_hash IS NULL OR password_hash REGEXP '^sha512\\$[0-9a-f]{32}\\$[0-9a-f]{128}$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='User logins of a client (web/agent logins); passwords stored only as salted hashes';

CREATE TABLE extensions (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Extension id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client owning the extension',
  agent_id INT UNSIGNED NULL COMMENT 'Agent using the extension, if any (same client)',
  exten VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Extension number inside the client, digits (e.g. 1001)',
  sip_username VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'PJSIP endpoint/auth/aor id and SIP username: <client code>-<exten>; set automatically',
  sip_password VARCHAR(128) NULL
    COMMENT 'Write-only: a SIP password written here becomes md5_cred and this column is cleared',
  md5_cred CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'MD5 of <sip_username>:asterisk:<password> (PJSIP md5 auth, realm asterisk)',
  callerid VARCHAR(128) NULL COMMENT 'Caller ID presented for this extension, e.g. "Alice" <1001>',
  max_contacts INT NOT NULL DEFAULT 1 COMMENT 'Devices that may register to this extension at once',
  status ENUM('active','disabled') NOT NULL DEFAULT 'active' COMMENT 'disabled extensions cannot register or call',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the extension was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_extensions_client_exten (client_id, exten),
  UNIQUE KEY uq_extensions_sip_username (sip_username),
  KEY ix_extensions_agent_client (agent_id, client_id),
  CONSTRAINT fk_extensions_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_extensions_agent_same_client FOREIGN KEY (agent_id, client_id) REFERENCES agents (id, client_id),
  CONSTRAINT ck_extensions_exten_digits CHECK (exten REGEXP '^[0-9]{2,20}$'),
  CONSTRAINT ck_extensions_password_cleared CHECK (sip_password IS NULL),
  CONSTRAINT ck_extensions_max_contacts CHECK (max_contacts BETWEEN 1 AND 20)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='SIP extensions of a client; Asterisk reads them through the ps_* realtime views';

CREATE TABLE campaigns (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Campaign id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client running the campaign',
  name VARCHAR(128) NOT NULL COMMENT 'Campaign name, unique per client',
  status ENUM('draft','running','paused','finished') NOT NULL DEFAULT 'draft'
    COMMENT 'Only running campaigns dial; a suspended client cannot have running campaigns',
  paused_by_suspension TINYINT(1) NOT NULL DEFAULT 0
    COMMENT '1: paused because the client was suspended; reactivation sets it running again',
  caller_id VARCHAR(64) NULL COMMENT 'Caller ID the campaign presents',
  max_channels INT NULL COMMENT 'Most simultaneous campaign calls (within the client channel limit); NULL = no extra cap',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the campaign was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_campaigns_client_name (client_id, name),
  UNIQUE KEY uq_campaigns_id_client (id, client_id),
  CONSTRAINT fk_campaigns_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_campaigns_paused_flag CHECK (paused_by_suspension IN (0, 1)),
  CONSTRAINT ck_campaigns_max_channels CHECK (max_channels IS NULL OR max_channels >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Outbound dialling campaigns of a client';

CREATE TABLE contacts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Contact id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client owning the contact',
  campaign_id INT UNSIGNED NULL COMMENT 'Campaign the contact is in (same client); NULL = client address book',
  phone VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Number to dial, digits with optional leading +',
  first_name VARCHAR(64) NULL COMMENT 'First name',
  last_name VARCHAR(64) NULL COMMENT 'Last name',
  email VARCHAR(254) NULL COMMENT 'E-mail',
  status ENUM('new','dialing','answered','failed','done','do-not-call') NOT NULL DEFAULT 'new'
    COMMENT 'Dialling state of the contact',
  attempts INT NOT NULL DEFAULT 0 COMMENT 'Dial attempts so far',
  last_attempt_at DATETIME NULL COMMENT 'Last dial attempt (UTC)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the contact was added (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  KEY ix_contacts_client (client_id),
  KEY ix_contacts_campaign_client (campaign_id, client_id, status),
  CONSTRAINT fk_contacts_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_contacts_campaign_same_client FOREIGN KEY (campaign_id, client_id) REFERENCES campaigns (id, client_id),
  CONSTRAINT ck_contacts_phone CHECK (phone REGEXP '^[+]?[0-9]{2,31}$'),
  CONSTRAINT ck_contacts_attempts CHECK (attempts >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Contacts of a client, in a campaign or in the client address book';

DELIMITER //

-- A password written into the write-only `password` column is stored only as a salted hash.
CREATE FUNCTION password_hash_of(p_plain VARCHAR(255)) RETURNS VARCHAR(255)
  NOT DETERMINISTIC NO SQL
  COMMENT 'sha512$<salt>$<hex> of a plain password with a fresh random salt'
BEGIN
  DECLARE salt CHAR(32) DEFAULT MD5(CONCAT(RAND(), UUID()));
  RETURN CONCAT('sha512$', salt, '$', SHA2(CONCAT(salt, p_plain), 512));
END//

CREATE TRIGGER users_before_insert BEFORE INSERT ON users FOR EACH ROW
BEGIN
  IF NEW.password IS NOT NULL THEN
    SET NEW.password_hash = password_hash_of(NEW.password), NEW.password = NULL;
  END IF;
END//

CREATE TRIGGER users_before_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
  IF NEW.password IS NOT NULL THEN
    SET NEW.password_hash = password_hash_of(NEW.password), NEW.password = NULL;
  END IF;
END//

CREATE TRIGGER extensions_before_insert BEFORE INSERT ON extensions FOR EACH ROW
BEGIN
  -- Without this the error for an unknown client would be "sip_username cannot be null".
  IF NOT EXISTS (SELECT 1 FROM clients WHERE id = NEW.client_id) THEN
    SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'extensions.client_id names no client', MYSQL_ERRNO = 1452;
  END IF;
  SET NEW.sip_username = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.exten);
  IF NEW.sip_password IS NOT NULL THEN
    SET NEW.md5_cred = MD5(CONCAT(NEW.sip_username, ':asterisk:', NEW.sip_password));
    SET NEW.sip_password = NULL;
  END IF;
END//

CREATE TRIGGER extensions_before_update BEFORE UPDATE ON extensions FOR EACH ROW
BEGIN
  IF NOT (NEW.client_id <=> OLD.client_id) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'an extension cannot move to another client: create a new one';
  END IF;
  SET NEW.sip_username = CONCAT((SELECT code FROM clients WHERE id = NEW.client_id), '-', NEW.exten);
  IF NEW.sip_password IS NOT NULL THEN
    SET NEW.md5_cred = MD5(CONCAT(NEW.sip_username, ':asterisk:', NEW.sip_password));
    SET NEW.sip_password = NULL;
  ELSEIF NOT (NEW.exten <=> OLD.exten) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'changing exten changes the SIP username: set sip_password in the same UPDATE';
  END IF;
END//

-- A suspended client cannot start campaigns.
CREATE TRIGGER campaigns_before_insert BEFORE INSERT ON campaigns FOR EACH ROW
BEGIN
  IF NEW.status = 'running' AND (SELECT status FROM clients WHERE id = NEW.client_id) = 'suspended' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its campaigns cannot run';
  END IF;
END//

CREATE TRIGGER campaigns_before_update BEFORE UPDATE ON campaigns FOR EACH ROW
BEGIN
  IF NEW.status = 'running' AND OLD.status <> 'running'
     AND (SELECT status FROM clients WHERE id = NEW.client_id) = 'suspended' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its campaigns cannot run';
  END IF;
  IF NEW.status <> 'paused' THEN
    SET NEW.paused_by_suspension = 0;
  END IF;
END//

-- Suspension pauses running campaigns; reactivation resumes exactly those.
CREATE TRIGGER clients_after_update AFTER UPDATE ON clients FOR EACH ROW
BEGIN
  IF NEW.status = 'suspended' AND OLD.status = 'active' THEN
    UPDATE campaigns SET status = 'paused', paused_by_suspension = 1
      WHERE client_id = NEW.id AND status = 'running';
  ELSEIF NEW.status = 'active' AND OLD.status = 'suspended' THEN
    UPDATE campaigns SET status = 'running', paused_by_suspension = 0
      WHERE client_id = NEW.id AND paused_by_suspension = 1;
  END IF;
END//

DELIMITER ;
