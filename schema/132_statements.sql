-- Client statements (issue 24): what moved a client's balance in a month, read from the
-- ledger itself (payments and call charges), never from the balance column, so a statement
-- always reconciles: opening + payments + corrections - usage = closing = the sum of the
-- ledger up to the period's end.
--
-- Periods are calendar months in UTC. A payment belongs to the month of payments.created_at;
-- a call to the month it was settled in (calls.settled_at: when it ended and its cost moved
-- the balance), so a call that starts on 30 November 23:59 and ends on 1 December 00:05 is
-- on December's statement.
--
-- statement_payments and statement_calls are plain one-table views (MariaDB merges them into
-- the query that reads them), so `WHERE client_id = ? AND at >= ? AND at < ?` uses the
-- indexes below: `ictcontact statement` reads them that way. statements sums them per month.

ALTER TABLE payments
  ADD KEY ix_payments_client_created (client_id, created_at);

-- The statement's range scans, covering the opening balance (the sum of everything before
-- the period) so a client with a million calls is read from the index alone.
ALTER TABLE calls
  ADD KEY ix_calls_client_settled (client_id, state, settled_at, cost, answered_seconds);

-- Every payment row: section 'payment' (top-ups and the opening payment) or 'correction'.
CREATE VIEW statement_payments AS
SELECT p.client_id AS client_id,
       p.id AS payment_id,
       p.created_at AS at,
       DATE_FORMAT(p.created_at, '%Y-%m') AS period,
       IF(p.kind = 'correction', 'correction', 'payment') AS section,
       p.kind AS kind,
       p.reference AS reference,
       p.note AS note,
       p.amount AS amount
FROM payments p;

-- Every call on a statement: settled and answered, or charged (an admin may charge a call
-- that was not answered). Emergency calls are here with cost 0. `seconds` is what the
-- statement shows as minutes: the billed seconds, or for an emergency call (never billed)
-- its talk time. The destination's name is the rate's description in the client's plan
-- (`ictcontact statement` joins it per destination line): a column computed here by a
-- subquery would make every read of this view fetch the whole call row, where the
-- opening balance needs only ix_calls_client_settled.
CREATE VIEW statement_calls AS
SELECT k.client_id AS client_id,
       k.id AS call_id,
       k.settled_at AS at,
       DATE_FORMAT(k.settled_at, '%Y-%m') AS period,
       k.direction AS direction,
       k.emergency AS emergency,
       k.prefix AS prefix,
       IF(k.emergency = 1, COALESCE(k.answered_seconds, 0), COALESCE(k.billable_seconds, 0))
         AS seconds,
       COALESCE(k.cost, 0) AS cost
FROM calls k
WHERE k.state = 'settled' AND (k.answered_seconds > 0 OR k.cost <> 0);

-- One row per client and month with any movement (a month without one has no row: its
-- opening and closing balance are the previous row's closing balance).
CREATE VIEW statements AS
WITH moves AS (
  SELECT client_id, period,
         SUM(IF(section = 'payment', amount, 0)) AS payments,
         SUM(IF(section = 'correction', amount, 0)) AS corrections,
         0 AS calls, 0 AS usage_cost
    FROM statement_payments GROUP BY client_id, period
  UNION ALL
  SELECT client_id, period, 0, 0, COUNT(*), SUM(cost)
    FROM statement_calls GROUP BY client_id, period
), months AS (
  SELECT client_id, period, SUM(payments) AS payments, SUM(corrections) AS corrections,
         SUM(calls) AS calls, SUM(usage_cost) AS usage_cost
    FROM moves GROUP BY client_id, period
)
SELECT c.code AS code,
       c.name AS name,
       m.client_id AS client_id,
       m.period AS period,
       SUM(m.payments + m.corrections - m.usage_cost) OVER w
         - (m.payments + m.corrections - m.usage_cost) AS opening_balance,
       m.payments AS payments,
       m.corrections AS corrections,
       m.calls AS calls,
       m.usage_cost AS usage_cost,
       SUM(m.payments + m.corrections - m.usage_cost) OVER w AS closing_balance
FROM months m JOIN clients c ON c.id = m.client_id
WINDOW w AS (PARTITION BY m.client_id ORDER BY m.period ROWS UNBOUNDED PRECEDING);
