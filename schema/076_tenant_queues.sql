-- A client's own call queues (schema 040) in its tenant world: agents read them,
-- supervisors and admins create, rename, retune and delete them. client_id is never
-- offered: the row-owner trigger fills it from the login (before 040's trigger, which
-- derives the Asterisk name from the client), like the other writable tenant views.

DELIMITER //
CREATE TRIGGER queues_tenant_before_insert BEFORE INSERT ON queues FOR EACH ROW
  PRECEDES queues_before_insert
BEGIN
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//
DELIMITER ;

INSERT INTO tenant_views (name, writable, description, definition) VALUES ('queues', 1,
 'Your call queues (Asterisk name <code>-<name>; agents log in with *11)',
 'SELECT id, name, asterisk_name, description, strategy, ring_timeout, retry_seconds, wrapup_seconds, status, created_at, updated_at FROM queues WHERE client_id = (SELECT client_id FROM tenant_session)');

INSERT INTO tenant_privileges (view_name, role, privilege, columns) VALUES
 ('queues', 'agent', 'SELECT', NULL),
 ('queues', 'supervisor', 'INSERT', 'name,description,strategy,ring_timeout,retry_seconds,wrapup_seconds,status'),
 ('queues', 'supervisor', 'UPDATE', 'name,description,strategy,ring_timeout,retry_seconds,wrapup_seconds,status'),
 ('queues', 'supervisor', 'DELETE', NULL);

CALL refresh_tenant_world();
