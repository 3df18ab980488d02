-- The operator's view of the reseller tree (issue 23), with move_client (127). A new view,
-- kept in this file (not 127) because it reads client_accounts (093): a database that got
-- 100-140 before 093/094 (tests/schema/test_upgrade_from_083.py) must not meet it first.

-- The tree: each client with its parent, depth below master, path of codes from master,
-- its subtree (clients below it, their live calls) and its balance. `blocked_by` names
-- the nearest suspended reseller above (then the client is stopped though its own status
-- is active). Correlated reads of client_tree's two indexes per row: a WHERE code = ...
-- reads one client's handful of rows.
CREATE VIEW reseller_tree AS
SELECT
  c.id AS client_id,
  c.code AS code,
  c.name AS name,
  p.code AS parent,
  (SELECT COUNT(*) - 1 FROM client_tree t WHERE t.client_id = c.id) AS depth,
  (SELECT GROUP_CONCAT(a.code ORDER BY t.depth DESC SEPARATOR '/')
     FROM client_tree t JOIN clients a ON a.id = t.ancestor_id
    WHERE t.client_id = c.id) AS path,
  (SELECT COUNT(*) - 1 FROM client_tree t WHERE t.ancestor_id = c.id) AS subtree_clients,
  (SELECT COUNT(*) FROM client_tree t
     JOIN calls k ON k.client_id = t.client_id AND k.state = 'live'
    WHERE t.ancestor_id = c.id) AS subtree_live_calls,
  a.balance AS balance,
  c.credit_limit AS credit_limit,
  c.status AS status,
  (SELECT b.code FROM client_tree t JOIN clients b ON b.id = t.ancestor_id
    WHERE t.client_id = c.id AND t.depth > 0 AND b.status = 'suspended'
      AND b.parent_id IS NOT NULL
    ORDER BY t.depth LIMIT 1) AS blocked_by
FROM clients c
JOIN client_accounts a ON a.client_id = c.id
LEFT JOIN clients p ON p.id = c.parent_id;

