-- One trigger per slot on campaigns (and campaign_runs, which has none: only the dialer
-- writes it). Until here a campaigns slot held up to five triggers stacked across files
-- (004, 060, 071, 090, 095, 100) and ordered by FOLLOWS / PRECEDES, so what a write to
-- campaigns runs could only be read by putting the files together. Each slot now has one
-- trigger, named after its slot, whose body runs the concerns in the order they fired
-- before (each marked). This file runs after 100-103 and 140 on every database, so the
-- end state is the same whatever order the earlier files ran in: every earlier trigger
-- of these slots is dropped by name and the slot's single trigger is created.
--
--   BEFORE INSERT  campaigns_before_insert  owner, input limits, suspension, dialable, tenant guard
--   BEFORE UPDATE  campaigns_before_update  input limits, suspension, dialable, tenant guard
--   BEFORE DELETE  campaigns_before_delete  tenant guard
--   AFTER INSERT   campaigns_after_insert   the campaign's campaign_runs row (095, unchanged)

DROP TRIGGER IF EXISTS campaigns_tenant_before_insert;
DROP TRIGGER IF EXISTS campaigns_before_insert_limits;
DROP TRIGGER IF EXISTS campaigns_before_insert;
DROP TRIGGER IF EXISTS campaigns_before_insert_dialable;
DROP TRIGGER IF EXISTS campaigns_tenant_guard_insert;
DROP TRIGGER IF EXISTS campaigns_before_update_input;
DROP TRIGGER IF EXISTS campaigns_before_update;
DROP TRIGGER IF EXISTS campaigns_before_update_dialable;
DROP TRIGGER IF EXISTS campaigns_tenant_guard_update;
DROP TRIGGER IF EXISTS campaigns_tenant_guard_delete;

DELIMITER //

CREATE TRIGGER campaigns_before_insert BEFORE INSERT ON campaigns FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  DECLARE v_empty VARCHAR(64) DEFAULT NULL;
  -- owner (071): a client login's row arrives without client_id and gets the session's
  -- client (refused while the login is locked or a check is off); operators give theirs.
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
  -- input limits (090): a channel cap a server can honour.
  IF NEW.max_channels > 10000 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
  IF NEW.status = 'running' THEN
    -- suspension (004): a suspended client cannot start campaigns.
    IF (SELECT status FROM clients WHERE id = NEW.client_id) = 'suspended' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its campaigns cannot run';
    END IF;
    -- dialable (060): a campaign runs only with a dialable caller ID.
    SET refusal = campaign_run_refusal(NEW.caller_id);
    IF refusal IS NOT NULL THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
    END IF;
  END IF;
  -- tenant guard (100): an ENUM stored as '' (INSERT IGNORE, non-strict sql_mode).
  SET v_empty = CASE WHEN NEW.status = '' THEN 'status' WHEN NEW.mode = '' THEN 'mode' END;
  IF v_empty IS NOT NULL THEN
    CALL guard_tenant_row('campaigns', 'INSERT', NEW.client_id, NEW.client_id, v_empty);
  END IF;
END//

CREATE TRIGGER campaigns_before_update BEFORE UPDATE ON campaigns FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(128) DEFAULT NULL;
  DECLARE v_empty VARCHAR(64) DEFAULT NULL;
  -- input limits (090): refused only when changed, so a full-row save of an older row
  -- goes through.
  IF NEW.max_channels > 10000 AND NOT (NEW.max_channels <=> OLD.max_channels) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'campaigns.max_channels is at most 10000 simultaneous calls: give 0-10000, or NULL for no extra cap';
  END IF;
  -- suspension (004): a suspended client cannot start campaigns; a campaign that is not
  -- paused is no longer paused by the suspension.
  IF NEW.status = 'running' AND OLD.status <> 'running'
     AND (SELECT status FROM clients WHERE id = NEW.client_id) = 'suspended' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the client is suspended: its campaigns cannot run';
  END IF;
  IF NEW.status <> 'paused' THEN
    SET NEW.paused_by_suspension = 0;
  END IF;
  -- dialable (060): checked when a campaign is started or its caller ID changes, not
  -- when reactivating the client resumes it (the dialer skips a bad one with a note).
  IF NEW.status = 'running' AND OLD.paused_by_suspension = 0
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

CREATE TRIGGER campaigns_before_delete BEFORE DELETE ON campaigns FOR EACH ROW
BEGIN
  -- tenant guard (100): REPLACE deletes whatever row holds the key; a client login may
  -- delete only its own.
  IF EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    CALL guard_tenant_row('campaigns', 'DELETE', OLD.client_id, OLD.client_id, NULL);
  END IF;
END//

DELIMITER ;
