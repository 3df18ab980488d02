-- Carrier trunks and their buy rates (issue 22). A trunk is a carrier reached through one
-- PJSIP endpoint of asterisk-conf/pjsip.conf; trunk_rates is that carrier's rate deck, what
-- the operator pays per minute, by destination prefix (longest match), loaded with
-- `ictcontact rates import --trunk NAME deck.csv` (docs/admin-sql.md, "Rate decks").
-- Routing by authorize and the dialplan's failover come with the next steps of issue 22:
-- these tables only hold the operator's configuration for now.
-- Touches no table of an earlier file, so it gives the same result before or after 100-103/140.

CREATE TABLE trunks (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Trunk id',
  name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Unique trunk name, [a-z0-9_-], e.g. carrier1; `rates import --trunk NAME` uses it',
  endpoint VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'PJSIP endpoint of pjsip.conf the call is dialled through (PJSIP/<number>@<endpoint>)',
  status ENUM('active','disabled') NOT NULL DEFAULT 'active'
    COMMENT 'active: calls may be routed to it; disabled: skipped by every route',
  capacity INT NOT NULL DEFAULT 30 COMMENT 'Most simultaneous calls on this trunk, 0-10000 (0: none)',
  calls_per_second DECIMAL(6,2) NULL COMMENT 'Most new calls a second on this trunk; NULL: no limit',
  comments VARCHAR(255) NULL COMMENT 'Free text for admins (account number, support contact)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the trunk was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_trunks_name (name),
  CONSTRAINT ck_trunks_name_slug CHECK (name REGEXP '^[a-z0-9_-]{1,64}$'),
  CONSTRAINT ck_trunks_endpoint_name CHECK (endpoint REGEXP '^[A-Za-z0-9_.-]{1,64}$'),
  CONSTRAINT ck_trunks_status CHECK (status IN ('active', 'disabled')),
  CONSTRAINT ck_trunks_capacity_0_to_10000 CHECK (capacity BETWEEN 0 AND 10000),
  CONSTRAINT ck_trunks_calls_per_second_positive CHECK (calls_per_second IS NULL OR calls_per_second > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Carrier trunks: a PJSIP endpoint with a capacity; routes send calls to them';

CREATE TABLE trunk_rates (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Buy rate id',
  trunk_id INT UNSIGNED NOT NULL COMMENT 'Trunk (carrier) charging this rate',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Destination prefix, digits only; the longest matching prefix wins',
  description VARCHAR(128) NULL COMMENT 'Destination name as the carrier gives it',
  rate_per_min DECIMAL(12,6) NOT NULL COMMENT 'USD per minute the carrier charges',
  connection_fee DECIMAL(12,6) NOT NULL DEFAULT 0 COMMENT 'USD the carrier charges once per answered call',
  initial_increment INT NOT NULL DEFAULT 60 COMMENT 'Seconds the carrier bills first (e.g. 30 in 30/6)',
  subsequent_increment INT NOT NULL DEFAULT 60 COMMENT 'Seconds of each further carrier billing step (e.g. 6 in 30/6)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the rate was added (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
    COMMENT 'Last change (UTC): since then this rate is in effect',
  PRIMARY KEY (id),
  UNIQUE KEY uq_trunk_rates_trunk_prefix (trunk_id, prefix),
  CONSTRAINT fk_trunk_rates_trunk FOREIGN KEY (trunk_id) REFERENCES trunks (id) ON DELETE CASCADE,
  CONSTRAINT ck_trunk_rates_prefix_digits CHECK (prefix REGEXP '^[0-9]{1,32}$'),
  CONSTRAINT ck_trunk_rates_rate_not_negative CHECK (rate_per_min >= 0),
  CONSTRAINT ck_trunk_rates_fee_not_negative CHECK (connection_fee >= 0),
  CONSTRAINT ck_trunk_rates_initial_increment CHECK (initial_increment BETWEEN 1 AND 3600),
  CONSTRAINT ck_trunk_rates_subsequent_increment CHECK (subsequent_increment BETWEEN 1 AND 3600)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Buy rates: what each trunk''s carrier charges per minute by destination prefix';

DELIMITER //

CREATE FUNCTION trunk_refusal(p_name VARCHAR(64), p_endpoint VARCHAR(64), p_capacity INT,
                              p_cps DECIMAL(6,2)) RETURNS VARCHAR(255)
  DETERMINISTIC NO SQL
  COMMENT 'The refusal in words of a trunk row that breaks a rule, or NULL'
BEGIN
  IF p_name IS NULL OR p_name NOT REGEXP '^[a-z0-9_-]{1,64}$' THEN
    RETURN 'trunks.name is 1-64 characters of a-z, 0-9, _ and -: e.g. carrier1';
  ELSEIF p_endpoint IS NULL OR p_endpoint NOT REGEXP '^[A-Za-z0-9_.-]{1,64}$' THEN
    RETURN 'trunks.endpoint is the name of a PJSIP endpoint of pjsip.conf (letters, digits, _ . -), not a dial string: e.g. carrier1, not PJSIP/carrier1';
  ELSEIF p_capacity IS NULL OR p_capacity NOT BETWEEN 0 AND 10000 THEN
    RETURN 'trunks.capacity is the most simultaneous calls on the trunk, 0-10000 (0 takes no calls): give a number in that range';
  ELSEIF p_cps IS NOT NULL AND p_cps <= 0 THEN
    RETURN 'trunks.calls_per_second must be above 0: give the carrier''s limit, or NULL for no limit';
  END IF;
  RETURN NULL;
END//

CREATE TRIGGER trunks_before_insert BEFORE INSERT ON trunks FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT trunk_refusal(NEW.name, NEW.endpoint, NEW.capacity, NEW.calls_per_second);
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER trunks_before_update BEFORE UPDATE ON trunks FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT trunk_refusal(NEW.name, NEW.endpoint, NEW.capacity, NEW.calls_per_second);
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE FUNCTION deck_rate_refusal(p_table VARCHAR(32), p_prefix VARCHAR(64), p_rate DECIMAL(12,6),
                                  p_fee DECIMAL(12,6), p_initial INT, p_subsequent INT)
  RETURNS VARCHAR(255)
  DETERMINISTIC NO SQL
  COMMENT 'The refusal in words of a deck row (prefix, money, increments) that breaks a rule, or NULL'
BEGIN
  IF p_prefix IS NULL OR p_prefix NOT REGEXP '^[0-9]{1,32}$' THEN
    RETURN CONCAT(p_table, '.prefix is 1-32 digits, no + or spaces: e.g. 4420');
  ELSEIF p_rate IS NULL OR p_rate < 0 THEN
    RETURN CONCAT(p_table, '.rate_per_min is USD per minute, 0 or more: give e.g. 0.0120');
  ELSEIF p_fee IS NULL OR p_fee < 0 THEN
    RETURN CONCAT(p_table, '.connection_fee is USD once per answered call, 0 or more: give 0 for none');
  ELSEIF p_initial IS NULL OR p_initial NOT BETWEEN 1 AND 3600
         OR p_subsequent IS NULL OR p_subsequent NOT BETWEEN 1 AND 3600 THEN
    RETURN CONCAT(p_table, ' increments are 1-3600 seconds each: e.g. initial_increment 30, subsequent_increment 6');
  END IF;
  RETURN NULL;
END//

-- Buy rates are money: exact or refused, as rates (090_money_exact.sql).
CREATE TRIGGER trunk_rates_before_insert BEFORE INSERT ON trunk_rates FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('rate_per_min'), 1, 'trunk_rates.rate_per_min', 6),
    inexact_money_refusal(input_changed_by_server('connection_fee'), 1, 'trunk_rates.connection_fee', 6),
    deck_rate_refusal('trunk_rates', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                      NEW.initial_increment, NEW.subsequent_increment));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

CREATE TRIGGER trunk_rates_before_update BEFORE UPDATE ON trunk_rates FOR EACH ROW
BEGIN
  DECLARE refusal VARCHAR(255) DEFAULT COALESCE(
    inexact_money_refusal(input_changed_by_server('rate_per_min'),
                          NOT (NEW.rate_per_min <=> OLD.rate_per_min), 'trunk_rates.rate_per_min', 6),
    inexact_money_refusal(input_changed_by_server('connection_fee'),
                          NOT (NEW.connection_fee <=> OLD.connection_fee), 'trunk_rates.connection_fee', 6),
    deck_rate_refusal('trunk_rates', NEW.prefix, NEW.rate_per_min, NEW.connection_fee,
                      NEW.initial_increment, NEW.subsequent_increment));
  IF refusal IS NOT NULL THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
  END IF;
END//

DELIMITER ;
