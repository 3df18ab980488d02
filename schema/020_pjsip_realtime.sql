-- PJSIP realtime for Asterisk (sorcery.conf: endpoint/auth/aor/contact = realtime).
-- Endpoints, auths and aors are VIEWs over `extensions`: Asterisk runs a fresh
-- SELECT ... WHERE id=? for each SIP request, so an extension (or a whole client) that is
-- disabled/suspended disappears at once (REGISTER and INVITE refused, calls to it fail)
-- and comes back at once on reactivation. Nothing is copied, so nothing can go stale.
-- ps_contacts is a TABLE because Asterisk writes registrations into it.
-- The one PJSIP id of an extension is extensions.sip_username = '<client code>-<exten>'.

CREATE VIEW ps_endpoints AS
SELECT
  e.sip_username            AS id,
  'transport-udp'           AS transport,      -- a transport defined in pjsip.conf
  e.sip_username            AS aors,
  e.sip_username            AS auth,
  CONCAT('client-', c.code) AS context,        -- the tenant context: calls start here
  'all'                     AS disallow,
  'ulaw,alaw,g722'          AS allow,
  e.callerid                AS callerid,
  c.code                    AS accountcode,    -- CDRs carry the tenant
  CAST(NULL AS CHAR(80))    AS mailboxes,      -- res_pjsip_mwi reads it at start
  'no'                      AS direct_media,   -- media through Asterisk: Dial L() warnings, recording
  'yes'                     AS rtp_symmetric,  -- phones behind NAT
  'yes'                     AS force_rport,
  'yes'                     AS rewrite_contact,
  'rfc4733'                 AS dtmf_mode,
  'no'                      AS trust_id_inbound, -- caller-supplied identity headers are ignored
  'username'                AS identify_by
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL;

CREATE VIEW ps_auths AS
SELECT
  e.sip_username AS id,
  'md5'          AS auth_type,
  e.sip_username AS username,
  e.md5_cred     AS md5_cred,   -- MD5('<username>:asterisk:<password>'), set by a trigger
  'asterisk'     AS realm       -- must be the realm md5_cred was computed with
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL;

CREATE VIEW ps_aors AS
SELECT
  e.sip_username AS id,
  e.max_contacts AS max_contacts,
  'yes'          AS remove_existing,   -- a re-registering phone replaces its old contact
  3600           AS default_expiration,
  60             AS qualify_frequency
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL;

-- Column set of Asterisk's own alembic scripts (contrib/ast-db-manage) for ps_contacts:
-- Asterisk INSERTs every field it knows, so each must exist.
CREATE TABLE ps_contacts (
  id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Contact id: <aor>;@<hash>, written by Asterisk',
  uri VARCHAR(511) NULL COMMENT 'Contact URI the device registered',
  expiration_time BIGINT NULL COMMENT 'Expiry, seconds since the epoch',
  qualify_frequency INT NULL COMMENT 'OPTIONS interval in seconds (0 = off)',
  outbound_proxy VARCHAR(255) NULL COMMENT 'Outbound proxy for requests to this contact',
  path TEXT NULL COMMENT 'Path header values received at registration',
  user_agent VARCHAR(255) NULL COMMENT 'User-Agent of the registering device',
  qualify_timeout FLOAT NULL COMMENT 'Seconds to wait for an OPTIONS reply',
  reg_server VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Asterisk server (system name) holding the registration',
  authenticate_qualify ENUM('yes','no') NULL COMMENT 'Authenticate OPTIONS qualifies',
  via_addr VARCHAR(40) NULL COMMENT 'Via address of the REGISTER',
  via_port INT NULL COMMENT 'Via port of the REGISTER',
  call_id VARCHAR(255) NULL COMMENT 'Call-ID of the REGISTER',
  endpoint VARCHAR(255) NULL COMMENT 'Endpoint (extensions.sip_username) that registered',
  prune_on_boot ENUM('yes','no') NULL COMMENT 'Delete this contact when Asterisk starts',
  qualify_2xx_only ENUM('0','1','off','on','false','true','no','yes') NULL
    COMMENT 'Only a 2xx answer to OPTIONS counts as reachable (newer Asterisk)',
  PRIMARY KEY (id),
  UNIQUE KEY ps_contacts_uq (id, reg_server),
  KEY ps_contacts_qualifyfreq_exp (qualify_frequency, expiration_time),
  KEY ix_ps_contacts_endpoint (endpoint)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='PJSIP registrations written by Asterisk (realtime contact); rows expire on their own';
