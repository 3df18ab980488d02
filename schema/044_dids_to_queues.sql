-- A DID now rings either one extension (exten) or one queue (queue_id) of its own client,
-- never both, never another client's: the composite foreign key makes the queue the
-- SAME client's, as fk_dids_extension_same_client (022) does for the extension.
-- A queue call is authorized and billed like any inbound call (see ict-inbound-queue).

ALTER TABLE dids
  MODIFY exten VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'Extension of the same client that the number rings (extensions.exten); NULL when it rings a queue',
  ADD COLUMN queue_id INT UNSIGNED NULL
    COMMENT 'Queue of the same client that the number rings (queues.id); NULL when it rings an extension'
    AFTER exten,
  ADD KEY ix_dids_queue_client (queue_id, client_id),
  ADD CONSTRAINT fk_dids_queue_same_client FOREIGN KEY (queue_id, client_id) REFERENCES queues (id, client_id);

ALTER TABLE dids COMMENT = 'Inbound numbers (DIDs) of a client and the extension or queue each one rings';

-- Exactly one target. A trigger, not a CHECK: MariaDB refuses a CHECK on exten because
-- fk_dids_extension_same_client cascades updates into it.
DELIMITER //

CREATE TRIGGER dids_target_before_insert BEFORE INSERT ON dids FOR EACH ROW
BEGIN
  IF (NEW.exten IS NULL) = (NEW.queue_id IS NULL) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a DID rings exactly one target: set exten or queue_id, not both';
  END IF;
END//

CREATE TRIGGER dids_target_before_update BEFORE UPDATE ON dids FOR EACH ROW
BEGIN
  IF (NEW.exten IS NULL) = (NEW.queue_id IS NULL) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a DID rings exactly one target: set exten or queue_id, not both';
  END IF;
END//

DELIMITER ;
