-- Operator views over calls: what is live now, what needs review, what was refused.

CREATE VIEW live_calls AS
SELECT k.id AS call_id, c.code AS client, k.direction, k.number, k.prefix, k.rate_per_min,
       k.max_seconds, k.reserved, k.emergency, k.server, k.channel, k.authorized_at, k.expires_at
FROM calls k JOIN clients c ON c.id = k.client_id
WHERE k.state = 'live';

CREATE VIEW calls_for_review AS
SELECT k.id AS call_id, c.code AS client, k.state, k.direction, k.number, k.prefix,
       k.max_seconds, k.reserved, k.server, k.channel, k.uniqueid, k.authorized_at,
       k.expires_at, k.settled_at, k.answered_seconds, k.cost, k.review_note
FROM calls k JOIN clients c ON c.id = k.client_id
WHERE k.state = 'stale' OR k.review_note IS NOT NULL;

CREATE VIEW call_rejections AS
SELECT k.id AS call_id, k.client_code AS client, k.direction, k.number, k.reason,
       k.server, k.channel, k.authorized_at
FROM calls k
WHERE k.state = 'rejected';
