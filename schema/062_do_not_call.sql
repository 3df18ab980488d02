-- Do-not-call lists: one per client, and the operator's (client_id NULL) applied to every
-- client. A number on either is never dialled: a contact inserted with it is marked
-- do-not-call at once, and the dialer checks again when it claims a contact.

CREATE TABLE do_not_call (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Entry id',
  client_id INT UNSIGNED NULL COMMENT 'Client whose list this is; NULL: the operator''s list, for every client',
  phone VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'Number never to dial, digits with optional leading +',
  digits VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin AS (TRIM(LEADING '+' FROM phone)) STORED
    COMMENT 'The number without its + (what is compared); set automatically',
  scope INT UNSIGNED AS (COALESCE(client_id, 0)) STORED COMMENT '0 for the operator''s list, else client_id; set automatically',
  note VARCHAR(255) NULL COMMENT 'Why (request, regulator list, ...)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the number was added (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_do_not_call_scope_digits (scope, digits),
  KEY ix_do_not_call_digits (digits),
  CONSTRAINT fk_do_not_call_client FOREIGN KEY (client_id) REFERENCES clients (id),
  CONSTRAINT ck_do_not_call_phone CHECK (phone REGEXP '^[+]?[0-9]{2,31}$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Numbers never dialled: per client, or for every client when client_id is NULL';

DELIMITER //

CREATE FUNCTION on_do_not_call(p_client INT UNSIGNED, p_phone VARCHAR(32)) RETURNS TINYINT
  READS SQL DATA
  COMMENT 'on_do_not_call(client id, number): 1 if the client''s or the operator''s list has the number'
BEGIN
  RETURN EXISTS (SELECT 1 FROM do_not_call
                 WHERE digits = TRIM(LEADING '+' FROM p_phone) AND scope IN (0, p_client));
END//

-- `ictcontact contacts import` has checked the lists already for its whole batch and sets
-- @ict_contacts_dnc_checked in its session to spare this per-row lookup. Whoever sets it,
-- nothing on a list is dialled: the dialer checks again at every claim.
CREATE TRIGGER contacts_before_insert_dnc BEFORE INSERT ON contacts FOR EACH ROW
BEGIN
  IF @ict_contacts_dnc_checked IS NULL AND NEW.campaign_id IS NOT NULL
     AND NEW.status IN ('new', 'retry') AND on_do_not_call(NEW.client_id, NEW.phone) THEN
    SET NEW.status = 'do-not-call', NEW.last_reason = 'on a do-not-call list';
  END IF;
END//

DELIMITER ;
