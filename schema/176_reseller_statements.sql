-- Statements for resellers (157): re-creates 132's statement_payments and statements.
--
-- statement_payments: a reseller's transfer to a client (transfer_to_client, schema/124)
-- is a payments row of kind 'correction' on the reseller's side; on a statement it is
-- money the reseller gave a client, not a correction of a mistake, so it gets a section
-- of its own, 'transfer' (the client's side, kind 'topup', stays a payment it received).
-- The join reads transfers through its foreign key's index on from_payment_id.
--
-- statements: the monthly totals gain the transfers and, for a reseller, its charges for
-- its clients' calls (statement_charges, 157), so closing_balance is still the ledger's
-- balance at the month's end: opening + payments + transfers + corrections - usage_cost
-- - client_charges. The columns 132 had keep their names and meaning.

CREATE OR REPLACE VIEW statement_payments AS
SELECT p.client_id AS client_id,
       p.id AS payment_id,
       p.created_at AS at,
       DATE_FORMAT(p.created_at, '%Y-%m') AS period,
       CASE WHEN t.id IS NOT NULL THEN 'transfer'
            WHEN p.kind = 'correction' THEN 'correction'
            ELSE 'payment' END AS section,
       p.kind AS kind,
       p.reference AS reference,
       p.note AS note,
       p.amount AS amount
FROM payments p
LEFT JOIN transfers t ON t.from_payment_id = p.id;

-- One row per client and month with any movement (a month without one has no row: its
-- opening and closing balance are the previous row's closing balance).
CREATE OR REPLACE VIEW statements AS
WITH moves AS (
  SELECT client_id, period,
         SUM(IF(section = 'payment', amount, 0)) AS payments,
         SUM(IF(section = 'transfer', amount, 0)) AS transfers,
         SUM(IF(section = 'correction', amount, 0)) AS corrections,
         0 AS calls, 0 AS usage_cost, 0 AS client_calls, 0 AS client_charges
    FROM statement_payments GROUP BY client_id, period
  UNION ALL
  SELECT client_id, period, 0, 0, 0, COUNT(*), SUM(cost), 0, 0
    FROM statement_calls GROUP BY client_id, period
  UNION ALL
  SELECT client_id, period, 0, 0, 0, 0, 0, COUNT(*), SUM(cost)
    FROM statement_charges GROUP BY client_id, period
), months AS (
  SELECT client_id, period, SUM(payments) AS payments, SUM(transfers) AS transfers,
         SUM(corrections) AS corrections, SUM(calls) AS calls, SUM(usage_cost) AS usage_cost,
         SUM(client_calls) AS client_calls, SUM(client_charges) AS client_charges
    FROM moves GROUP BY client_id, period
)
SELECT c.code AS code,
       c.name AS name,
       m.client_id AS client_id,
       m.period AS period,
       SUM(m.payments + m.transfers + m.corrections - m.usage_cost - m.client_charges) OVER w
         - (m.payments + m.transfers + m.corrections - m.usage_cost - m.client_charges)
         AS opening_balance,
       m.payments AS payments,
       m.transfers AS transfers,
       m.corrections AS corrections,
       m.calls AS calls,
       m.usage_cost AS usage_cost,
       m.client_calls AS client_calls,
       m.client_charges AS client_charges,
       SUM(m.payments + m.transfers + m.corrections - m.usage_cost - m.client_charges) OVER w
         AS closing_balance
FROM months m JOIN clients c ON c.id = m.client_id
WINDOW w AS (PARTITION BY m.client_id ORDER BY m.period ROWS UNBOUNDED PRECEDING);
