-- INSERT ... SELECT into extensions (the natural way to name a client by its code, as
-- docs/asterisk.md does) failed with "Field 'sip_username' doesn't have a default value":
-- in strict mode MariaDB checks the defaults of an INSERT ... SELECT before the BEFORE
-- INSERT trigger fills the column. An empty default lets the statement through; the
-- trigger still sets <client code>-<exten> on every row, and the CHECK refuses a row that
-- somehow kept the placeholder.

ALTER TABLE extensions
  MODIFY sip_username VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT ''
    COMMENT 'PJSIP endpoint/auth/aor id and SIP username: <client code>-<exten>; set automatically',
  ADD CONSTRAINT ck_extensions_sip_username_set CHECK (sip_username <> '');
