-- Inbound numbers (DIDs): which client a number from the carrier belongs to and which of
-- that client's extensions it rings. `ictcontact dialplan sync` turns each row into an
-- extension of the [ict-from-carrier] context. The composite foreign key makes the target
-- an extension of the SAME client, so a DID can never ring another tenant.

CREATE TABLE dids (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'DID id',
  client_id INT UNSIGNED NOT NULL COMMENT 'Client the number belongs to',
  did VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'The number as the carrier sends it, digits only (a leading + is also accepted by the dialplan)',
  exten VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Extension of the same client that the number rings (extensions.exten)',
  description VARCHAR(128) NULL COMMENT 'Free text, e.g. "London sales line"',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the DID was added (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_dids_did (did),
  KEY ix_dids_client_exten (client_id, exten),
  CONSTRAINT fk_dids_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT fk_dids_extension_same_client FOREIGN KEY (client_id, exten)
    REFERENCES extensions (client_id, exten) ON UPDATE CASCADE,
  CONSTRAINT ck_dids_did_digits CHECK (did REGEXP '^[0-9]{3,20}$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Inbound numbers (DIDs) of a client and the extension each one rings';
