-- A row a client's database login inserts belongs to that client. The tenant views do not
-- offer client_id (nor may a login write it: column privileges), so such a row arrives
-- without one and these triggers give it the session's client; were another client's id
-- ever written, the view's CHECK OPTION would refuse the row. Operators write a client_id
-- and skip the lookup; an operator's row without one fails as before.

DELIMITER //

CREATE FUNCTION tenant_insert_client(p_written INT UNSIGNED) RETURNS INT UNSIGNED
  NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
  COMMENT 'Client id a new row gets: the session tenant''s for a client login (refused while locked), else p_written'
BEGIN
  DECLARE v_client INT UNSIGNED DEFAULT NULL;
  IF NOT EXISTS (SELECT 1 FROM db_logins WHERE account = SUBSTRING_INDEX(USER(), '@', 1)) THEN
    RETURN p_written;
  END IF;
  SET v_client = (SELECT client_id FROM tenant_session);
  IF v_client IS NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this login is locked: the client is suspended or the user or agent is disabled';
  END IF;
  RETURN v_client;
END//

CREATE TRIGGER agents_tenant_before_insert BEFORE INSERT ON agents FOR EACH ROW
BEGIN
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//

CREATE TRIGGER users_tenant_before_insert BEFORE INSERT ON users FOR EACH ROW
  PRECEDES users_before_insert
BEGIN
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//

CREATE TRIGGER extensions_tenant_before_insert BEFORE INSERT ON extensions FOR EACH ROW
  PRECEDES extensions_before_insert
BEGIN
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//

CREATE TRIGGER campaigns_tenant_before_insert BEFORE INSERT ON campaigns FOR EACH ROW
  PRECEDES campaigns_before_insert
BEGIN
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//

CREATE TRIGGER contacts_tenant_before_insert BEFORE INSERT ON contacts FOR EACH ROW
BEGIN
  IF NEW.client_id IS NULL OR NEW.client_id = 0 THEN
    SET NEW.client_id = tenant_insert_client(NEW.client_id);
  END IF;
END//

DELIMITER ;
