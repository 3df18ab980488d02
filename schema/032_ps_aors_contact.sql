-- Asterisk's `pjsip show contacts` asks every aor family for its static contacts
-- (res_pjsip/location.c: retrieve aor WHERE contact != ''), and the realtime view had no
-- `contact` column: the CLI logged "Unknown column 'contact'" on every listing (seen on a
-- real Asterisk 22). Tenant aors have no static contact (phones register), so the column
-- is always NULL; everything else is as in 020.

CREATE OR REPLACE VIEW ps_aors AS
SELECT
  e.sip_username AS id,
  e.max_contacts AS max_contacts,
  'yes'          AS remove_existing,   -- a re-registering phone replaces its old contact
  3600           AS default_expiration,
  60             AS qualify_frequency,
  CAST(NULL AS CHAR(255)) AS contact   -- no static contact: phones register
FROM extensions e
JOIN clients c ON c.id = e.client_id
WHERE e.status = 'active' AND c.status = 'active'
  AND e.md5_cred IS NOT NULL;
