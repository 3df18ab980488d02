-- Call detail records written by Asterisk's cdr_adaptive_odbc (asterisk-conf/
-- cdr_adaptive_odbc.conf maps the CDR variable `start` to `calldate`). The module reads
-- this table's columns at load and fills each one whose name is a CDR variable; empty
-- date values are left out of the INSERT, so answer/end are NULL for unanswered calls.
-- accountcode is the tenant's client code (set by the endpoint and the dialplan).

CREATE TABLE cdr (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Row id',
  calldate DATETIME NOT NULL COMMENT 'When the call started (CDR start), Asterisk local time',
  answer DATETIME NULL COMMENT 'When it was answered; NULL if never',
  end DATETIME NULL COMMENT 'When it ended',
  clid VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Caller ID as "name" <number>',
  src VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Caller number',
  dst VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Destination extension',
  dcontext VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Destination context (client-<code>, ict-*)',
  channel VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Calling channel',
  dstchannel VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Called channel',
  lastapp VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Last dialplan application',
  lastdata VARCHAR(255) NOT NULL DEFAULT '' COMMENT 'Its arguments',
  duration INT NOT NULL DEFAULT 0 COMMENT 'Seconds from start to end',
  billsec INT NOT NULL DEFAULT 0 COMMENT 'Seconds from answer to end (hangup handlers excluded: endbeforehexten=yes)',
  disposition VARCHAR(45) NOT NULL DEFAULT '' COMMENT 'ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION',
  amaflags VARCHAR(20) NOT NULL DEFAULT '' COMMENT 'AMA flags: OMIT, BILLING, DOCUMENTATION',
  accountcode VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Tenant: the client code',
  uniqueid VARCHAR(150) NOT NULL DEFAULT '' COMMENT 'Channel unique id',
  linkedid VARCHAR(150) NOT NULL DEFAULT '' COMMENT 'Unique id of the first channel of the call',
  peeraccount VARCHAR(80) NOT NULL DEFAULT '' COMMENT 'Account code of the peer channel',
  sequence INT NOT NULL DEFAULT 0 COMMENT 'CDR sequence number',
  userfield VARCHAR(255) NOT NULL DEFAULT '' COMMENT 'Free field set by the dialplan (CDR(userfield))',
  PRIMARY KEY (id),
  KEY ix_cdr_calldate (calldate),
  KEY ix_cdr_accountcode_calldate (accountcode, calldate),
  KEY ix_cdr_uniqueid (uniqueid),
  KEY ix_cdr_linkedid (linkedid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Asterisk call detail records (cdr_adaptive_odbc), one row per call leg';
