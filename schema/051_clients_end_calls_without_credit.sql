-- Optional per client: end live calls over AMI when the credit runs out during calls.

ALTER TABLE clients
  ADD COLUMN end_calls_without_credit TINYINT(1) NOT NULL DEFAULT 0
    COMMENT '1: when the balance (plus the postpaid credit limit) no longer covers the credit reserved by live calls, they are hung up over AMI; 0 (default): each call''s own limit ends it'
    AFTER channel_limit,
  ADD CONSTRAINT ck_clients_end_calls_without_credit CHECK (end_calls_without_credit IN (0, 1));
