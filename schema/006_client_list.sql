-- The admin's overview of clients: the seed's columns plus live calls and spendable credit.

CREATE VIEW client_list AS
SELECT
  c.id AS id,
  c.code AS code,
  c.name AS name,
  c.balance AS balance,
  p.name AS plan,
  c.channel_limit AS channels,
  c.status AS status,
  (SELECT COUNT(*) FROM calls k WHERE k.client_id = c.id AND k.state = 'live') AS live_calls,
  c.balance + c.credit_limit
    - (SELECT COALESCE(SUM(k.reserved), 0) FROM calls k WHERE k.client_id = c.id AND k.state = 'live')
    AS available_credit
FROM clients c
JOIN rate_plans p ON p.id = c.rate_plan_id;
