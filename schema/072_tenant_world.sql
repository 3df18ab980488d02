-- What a client's login sees: views with the names it expects (campaigns, contacts, ...)
-- in the tenant database `<this database>_tenant`, each filtered on the session's client
-- (tenant_session), and which role may change which columns. build_tenant_world (073)
-- turns these rows into views and grants; add a row and CALL refresh_tenant_world() to
-- offer a new table (see docs/tenant-logins.md, "Adding a table").

CREATE TABLE tenant_views (
  name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'View name in the tenant database, [a-z_]',
  definition TEXT NOT NULL
    COMMENT 'SELECT over this database; must keep only rows WHERE client_id = (SELECT client_id FROM tenant_session)',
  writable TINYINT(1) NOT NULL DEFAULT 0
    COMMENT '1: created WITH CASCADED CHECK OPTION, so a write that leaves the view is refused',
  description VARCHAR(255) NOT NULL COMMENT 'What the client finds in the view',
  PRIMARY KEY (name),
  CONSTRAINT ck_tenant_views_name CHECK (name REGEXP '^[a-z][a-z_]{0,63}$'),
  CONSTRAINT ck_tenant_views_filtered CHECK (definition LIKE '%FROM tenant_session%'),
  CONSTRAINT ck_tenant_views_writable CHECK (writable IN (0, 1))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Views of the tenant database (operator-only): each shows one client''s rows to its logins';

CREATE TABLE tenant_privileges (
  view_name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Tenant view',
  role ENUM('admin','supervisor','agent') NOT NULL
    COMMENT 'Tenant role granted it; admin has all of supervisor, supervisor all of agent',
  privilege ENUM('SELECT','INSERT','UPDATE','DELETE') NOT NULL COMMENT 'What the role may do',
  columns VARCHAR(1000) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Comma list of the only columns it may write (INSERT, UPDATE); NULL = the whole view',
  PRIMARY KEY (view_name, role, privilege),
  CONSTRAINT fk_tenant_privileges_view FOREIGN KEY (view_name) REFERENCES tenant_views (name)
    ON UPDATE CASCADE ON DELETE CASCADE,
  CONSTRAINT ck_tenant_privileges_columns CHECK (columns IS NULL OR columns REGEXP '^[a-z_]+(,[a-z_]+)*$'),
  CONSTRAINT ck_tenant_privileges_role CHECK (role IN ('admin', 'supervisor', 'agent')),
  CONSTRAINT ck_tenant_privileges_privilege CHECK (privilege IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Grants of the tenant roles on the tenant views (operator-only)';

INSERT INTO tenant_views (name, writable, description, definition) VALUES
('campaigns', 1, 'Your campaigns',
 'SELECT id, name, status, paused_by_suspension, caller_id, max_channels, created_at, updated_at
  FROM campaigns WHERE client_id = (SELECT client_id FROM tenant_session)'),
('contacts', 1, 'Your contacts, in a campaign or in your address book (campaign_id NULL)',
 'SELECT id, campaign_id, phone, first_name, last_name, email, status, attempts, last_attempt_at,
         created_at, updated_at
  FROM contacts WHERE client_id = (SELECT client_id FROM tenant_session)'),
('agents', 1, 'Your call-centre agents',
 'SELECT id, name, status, created_at, updated_at
  FROM agents WHERE client_id = (SELECT client_id FROM tenant_session)'),
('extensions', 1, 'Your SIP extensions; sip_password is write-only',
 'SELECT id, agent_id, exten, sip_username, sip_password, callerid, max_contacts, status,
         created_at, updated_at
  FROM extensions WHERE client_id = (SELECT client_id FROM tenant_session)'),
('users', 1, 'Your user logins and their roles; database logins are given by the operator',
 'SELECT id, agent_id, username, role, status, last_login_at, created_at, updated_at
  FROM users WHERE client_id = (SELECT client_id FROM tenant_session)'),
('db_logins', 0, 'Which of your users have a database login, and whether it is locked',
 'SELECT l.user_id, l.account, l.host, l.locked, l.created_at
  FROM db_logins l WHERE l.client_id = (SELECT client_id FROM tenant_session)'),
('dids', 0, 'Your inbound numbers and the extension each rings',
 'SELECT id, did, exten, description, created_at, updated_at
  FROM dids WHERE client_id = (SELECT client_id FROM tenant_session)'),
('calls', 0, 'Your calls: live, settled, stale and refused',
 'SELECT id, direction, number, state, reason, emergency, prefix, rate_per_min, connection_fee,
         initial_increment, subsequent_increment, max_seconds, reserved, authorized_at,
         settled_at, answered_seconds, dial_status, billable_seconds, cost
  FROM calls WHERE client_id = (SELECT client_id FROM tenant_session)'),
('payments', 0, 'Your payments ledger',
 'SELECT id, amount, kind, reference, note, created_at
  FROM payments WHERE client_id = (SELECT client_id FROM tenant_session)'),
('rates', 0, 'The rates of your plan',
 'SELECT r.prefix, r.description, r.rate_per_min, r.connection_fee, r.initial_increment,
         r.subsequent_increment
  FROM rates r JOIN clients c ON c.rate_plan_id = r.rate_plan_id
  WHERE c.id = (SELECT client_id FROM tenant_session)'),
('client_list', 0, 'Your account: balance, plan, channels, status',
 'SELECT code, name, balance, plan, channels, status, live_calls, available_credit
  FROM client_list WHERE id = (SELECT client_id FROM tenant_session)');

-- agent reads everything; supervisor runs campaigns, contacts and agents; admin also
-- extensions and users. Nothing writes money, plan, limits or status.
INSERT INTO tenant_privileges (view_name, role, privilege, columns)
SELECT name, 'agent', 'SELECT', NULL FROM tenant_views;

INSERT INTO tenant_privileges (view_name, role, privilege, columns) VALUES
('campaigns', 'supervisor', 'INSERT', 'name,status,caller_id,max_channels'),
('campaigns', 'supervisor', 'UPDATE', 'name,status,caller_id,max_channels'),
('campaigns', 'supervisor', 'DELETE', NULL),
('contacts', 'supervisor', 'INSERT', 'campaign_id,phone,first_name,last_name,email,status'),
('contacts', 'supervisor', 'UPDATE', 'campaign_id,phone,first_name,last_name,email,status'),
('contacts', 'supervisor', 'DELETE', NULL),
('agents', 'supervisor', 'INSERT', 'name,status'),
('agents', 'supervisor', 'UPDATE', 'name,status'),
('agents', 'supervisor', 'DELETE', NULL),
('extensions', 'admin', 'INSERT', 'agent_id,exten,sip_password,callerid,max_contacts,status'),
('extensions', 'admin', 'UPDATE', 'agent_id,exten,sip_password,callerid,max_contacts,status'),
('extensions', 'admin', 'DELETE', NULL),
('users', 'admin', 'INSERT', 'agent_id,username,role,status'),
('users', 'admin', 'UPDATE', 'agent_id,username,role,status'),
('users', 'admin', 'DELETE', NULL);
