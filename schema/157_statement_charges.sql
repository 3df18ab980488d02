-- A reseller's statement (issue 24's statements, for resellers): besides its own calls, a
-- reseller pays for every call of its subtree (call_charges, schema/120: one row per call
-- per reseller level, its cost at its own rate), and that cost moves its balance (the
-- call_charges AFTER UPDATE trigger, through the ledger). So its statement has a section
-- of its own for them; without it opening + payments - usage would not be its balance.
--
-- One row per billed charge, dated when it was billed (call_charges.settled_at, the same
-- instant as its call's settled_at), so it belongs to the same month as the call on the
-- client's own statement. Kept a plain one-table view, as statement_calls (132): a
-- `WHERE client_id = ? AND at >= ? AND at < ?` is merged into the reading query and read
-- through ix_call_charges_margin (127), which covers the opening balance (client_id,
-- settled_at, billable_seconds, cost).
--
-- Which client of the reseller's own a charge is for: the call's charge one level down
-- (call_charges of the same call at depth - 1) names it, or at depth 1 the call's own
-- client (calls.client_id). Both were written when the call was made, so a client moved to
-- another reseller later (move_client) stays on the bills it was on. `ictcontact statement`
-- groups the charges that way, one line per client of its own:
--
--   SELECT COALESCE(b.client_id, k.client_id) AS client_of_its_own,
--          COUNT(*) AS calls, SUM(s.seconds) AS seconds, SUM(s.cost) AS cost
--     FROM statement_charges s JOIN calls k ON k.id = s.call_id
--     LEFT JOIN call_charges b ON b.call_id = s.call_id AND b.depth = s.depth - 1
--    WHERE s.client_id = 7 AND s.at >= '2026-11-01' AND s.at < '2026-12-01'
--    GROUP BY client_of_its_own;

-- Every charge on a reseller's statement: billed, and with talk time or a cost (an
-- unanswered or emergency call costs the reseller nothing and is left off). `seconds`: what
-- the reseller's own rate billed it for; `sold`: what the level below paid for the call;
-- `cost`: what the reseller paid, the figure that moved its balance.
CREATE VIEW statement_charges AS
SELECT g.client_id AS client_id,
       g.call_id AS call_id,
       g.depth AS depth,
       g.settled_at AS at,
       DATE_FORMAT(g.settled_at, '%Y-%m') AS period,
       COALESCE(g.billable_seconds, 0) AS seconds,
       COALESCE(g.sell, 0) AS sold,
       COALESCE(g.cost, 0) AS cost
FROM call_charges g
WHERE g.settled_at IS NOT NULL AND (g.billable_seconds > 0 OR g.cost <> 0);
