-- Rate plans and their per-prefix rates. A client is rated by the longest prefix of the
-- dialled number found in its plan.

CREATE TABLE rate_plans (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Rate plan id',
  name VARCHAR(64) NOT NULL COMMENT 'Unique plan name shown to admins',
  description VARCHAR(255) NULL COMMENT 'Free text for admins',
  is_default TINYINT(1) NOT NULL DEFAULT 0 COMMENT '1 on the one plan a client gets when created without a plan',
  default_marker TINYINT GENERATED ALWAYS AS (IF(is_default = 1, 1, NULL)) STORED
    COMMENT 'Derived from is_default (1 or NULL): its unique key allows only one default plan',
  dial_template VARCHAR(255) NULL
    COMMENT 'Dial target with {number}, e.g. PJSIP/{number}@carrier2; NULL uses serve --dial-template',
  rate_inbound TINYINT(1) NOT NULL DEFAULT 0 COMMENT '1: inbound calls are rated with this plan too; 0: inbound calls are free',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the plan was created (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_rate_plans_name (name),
  UNIQUE KEY uq_rate_plans_default (default_marker),
  CONSTRAINT ck_rate_plans_is_default CHECK (is_default IN (0, 1)),
  CONSTRAINT ck_rate_plans_rate_inbound CHECK (rate_inbound IN (0, 1)),
  CONSTRAINT ck_rate_plans_dial_template CHECK (dial_template IS NULL OR dial_template LIKE '%{number}%')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Rate plans: per-minute rates by destination prefix; clients point at one';

CREATE TABLE rates (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Rate id',
  rate_plan_id INT UNSIGNED NOT NULL COMMENT 'Plan this rate belongs to',
  prefix VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Destination prefix, digits only (e.g. 4420); the longest matching prefix wins',
  description VARCHAR(128) NULL COMMENT 'Destination name, e.g. United Kingdom - London',
  rate_per_min DECIMAL(12,6) NOT NULL COMMENT 'USD per minute of billable time',
  connection_fee DECIMAL(12,6) NOT NULL DEFAULT 0 COMMENT 'USD charged once when the call is answered',
  initial_increment INT NOT NULL DEFAULT 60 COMMENT 'Seconds billed first, however short the answered call (e.g. 30 in 30/6)',
  subsequent_increment INT NOT NULL DEFAULT 60 COMMENT 'Seconds of each further billing step, rounded up (e.g. 6 in 30/6)',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When the rate was added (UTC)',
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'Last change (UTC)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_rates_plan_prefix (rate_plan_id, prefix),
  CONSTRAINT fk_rates_rate_plan FOREIGN KEY (rate_plan_id) REFERENCES rate_plans (id) ON DELETE CASCADE,
  CONSTRAINT ck_rates_prefix_digits CHECK (prefix REGEXP '^[0-9]{1,32}$'),
  CONSTRAINT ck_rates_rate_not_negative CHECK (rate_per_min >= 0),
  CONSTRAINT ck_rates_fee_not_negative CHECK (connection_fee >= 0),
  CONSTRAINT ck_rates_initial_increment CHECK (initial_increment BETWEEN 1 AND 3600),
  CONSTRAINT ck_rates_subsequent_increment CHECK (subsequent_increment BETWEEN 1 AND 3600)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Per-minute rates by destination prefix, one prefix once per plan';
