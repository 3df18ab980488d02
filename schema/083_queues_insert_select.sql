-- INSERT ... SELECT into queues (naming the client by its code, as docs/asterisk.md does)
-- failed with "Field 'asterisk_name' doesn't have a default value": in strict mode
-- MariaDB checks the defaults of an INSERT ... SELECT before the BEFORE INSERT trigger
-- fills the column (the same trap as extensions.sip_username, 031). An empty default lets
-- the statement through; the trigger still sets <client code>-<name> on every row, and
-- the CHECK refuses a row that somehow kept the placeholder.

ALTER TABLE queues
  MODIFY asterisk_name VARCHAR(65) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT ''
    COMMENT 'The queue''s name in Asterisk: <client code>-<name>; set automatically',
  ADD CONSTRAINT ck_queues_asterisk_name_set CHECK (asterisk_name <> '');
