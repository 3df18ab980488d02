-- A campaign of a client whose reseller (or one above it) is suspended cannot be started,
-- as one of a suspended client cannot (004, 150): it would not dial anyway (the dialer
-- skips the subtree, 163) and the refusal says why. A campaign left running through the
-- suspension is not a start: it dials again on the reseller's reactivation.
--
-- Re-creates the campaigns BEFORE UPDATE slot with 150's body plus the labelled block
-- `reseller_suspended`. Runs after 147-150 (and 120) on every database.

DELIMITER //

CREATE OR REPLACE TRIGGER campaigns_before_update BEFORE UPDATE ON campaigns FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  DECLARE v_empty VARCHAR(64) DEFAULT NULL;
  DECLARE v_blocked_by VARCHAR(32) DEFAULT NULL;
  -- input limits (090): refused only when changed, so a full-row save of an older row
  -- goes through.
  IF NEW.max_channels > 10000 AND NOT (NEW.max_channels <=> OLD.max_channels) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
  -- suspension (004, 150): a suspended client's campaign cannot be started; one left
  -- running stays running (the dialer skips it until reactivation).
  IF NEW.status = 'running' AND OLD.status <> 'running'
     AND (SELECT status FROM clients WHERE id = NEW.client_id) = 'suspended' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its campaigns cannot run';
  END IF;
  reseller_suspended: BEGIN
    -- resellers (165): nor one of a client below a suspended reseller.
    IF NEW.status = 'running' AND OLD.status <> 'running' THEN
      SET v_blocked_by = (SELECT b.code FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
                           WHERE t.client_id = NEW.client_id AND t.depth > 0
                             AND b.status = 'suspended' AND b.parent_id IS NOT NULL
                           ORDER BY t.depth LIMIT 1);
      IF v_blocked_by IS NOT NULL THEN
        SET refusal = CONCAT('the client''s reseller ', v_blocked_by,
                             ' is suspended: its campaigns cannot run until it is reactivated');
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
      END IF;
      SET refusal = NULL;
    END IF;
  END reseller_suspended;
  -- dialable (060): checked when a campaign is started or its caller ID changes.
  IF NEW.status = 'running'
     AND (OLD.status <> 'running' OR NOT (NEW.caller_id <=> OLD.caller_id)) THEN
    SET refusal = campaign_run_refusal(NEW.caller_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  -- tenant guard (100): the routine runs only when it may have to refuse (a check off,
  -- an ENUM stored as '', client_id changed, a forged clock or skipped replication).
  SET v_empty = CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.mode = '' THEN 'mode' END;
  IF v_empty IS NOT NULL OR NOT (NEW.client_id <=> OLD.client_id)
     OR @@SESSION.foreign_key_checks = 0 OR @@SESSION.unique_checks = 0
     OR @@SESSION.check_constraint_checks = 0 OR @@SESSION.skip_replication <> 0
     OR ABS(@@SESSION.timestamp - UNIX_TIMESTAMP(SYSDATE())) > 300 THEN
    CALL guard_tenant_row('campaigns', 'UPDATE', OLD.client_id, NEW.client_id, v_empty);
  END IF;
END//

DELIMITER ;
